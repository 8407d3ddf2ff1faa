"""Vendor seed files in PSKC (RFC 6030), through python-pskc: plain, PBKDF2 password-protected,
or encrypted with a pre-shared key. Entity declarations and DTDs are refused before parsing, so
XML bombs and external entities never reach the parser."""

from __future__ import annotations

import io

from oathdesk.formats.problems import Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.upn import is_valid_upn

TOTP_URN = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
HOTP_URN = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
HASHES = {"sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}


def looks_like_pskc(data: bytes) -> bool:
    head = data.lstrip()[:2000]
    return head.startswith(b"<") and b"KeyContainer" in head


def _refuse_dangerous_xml(data: bytes) -> Problem | None:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        return Problem(
            0,
            "",
            "the file declares a DTD or entities (an XML bomb or external "
            "entity?); it was not parsed: ask the vendor for a plain PSKC file",
        )
    except Exception:
        return Problem(0, "", "the file is not well-formed XML; download it again")
    return None


def parse_pskc(data: bytes, *, password: str | None = None, psk: bytes | None = None) -> ParsedFile:
    danger = _refuse_dangerous_xml(data)
    if danger is not None:
        return ParsedFile("pskc", [], [danger])
    import pskc

    try:
        container = pskc.PSKC(io.BytesIO(data))
    except Exception:
        return ParsedFile("pskc", [], [Problem(0, "", "not a valid PSKC (RFC 6030) file")])
    problems: list[Problem] = []
    if container.encryption.is_encrypted:
        try:
            if psk is not None:
                container.encryption.key = psk
            elif password is not None:
                container.encryption.derive_key(password)
            else:
                return ParsedFile(
                    "pskc",
                    [],
                    [
                        Problem(
                            0,
                            "",
                            "the file is encrypted; give its "
                            "password (--password-stdin) or pre-shared key (--psk-file)",
                        )
                    ],
                )
        except Exception:
            return ParsedFile(
                "pskc",
                [],
                [
                    Problem(
                        0, "", "the password or key does not fit this file's protection; check it"
                    )
                ],
            )
    records = []
    for index, key in enumerate(container.keys, start=1):
        label = f"key {key.serial or key.id or index}"
        try:
            secret = key.secret
        except Exception:
            problems.append(
                Problem(index, "", f"{label}: the password or key does not decrypt it; check it")
            )
            continue
        if key.algorithm == HOTP_URN:
            problems.append(
                Problem(index, "", f"{label} is HOTP (counter-based); Entra needs TOTP")
            )
            continue
        if not secret:
            problems.append(Problem(index, "", f"{label} has no secret"))
            continue
        if not key.serial:
            problems.append(Problem(index, "", f"{label} has no serial number"))
            continue
        user = key.key_userid or key.device_userid
        upn = user.lower() if user and is_valid_upn(user) else None
        algorithm = (key.algorithm_suite or "sha1").lower().replace("-", "")
        records.append(
            SeedRecord(
                index,
                secret,
                upn,
                key.serial,
                key.manufacturer,
                key.model,
                HASHES.get(algorithm, "sha1"),
                key.response_length or 6,
                key.time_interval or 30,
            )
        )
    return ParsedFile("pskc", records, problems)
