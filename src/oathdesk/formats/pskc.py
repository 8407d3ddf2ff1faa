"""Vendor seed files in PSKC (RFC 6030), through python-pskc: plain, protected with a password
(PBKDF2) or encrypted with a pre-shared key. Pure: the file comes in as bytes.

python-pskc parses with lxml when it is installed (it is not here) and otherwise with defusedxml,
whose defaults still allow a DTD. So the bytes are checked first with defusedxml forbidding DTDs,
entities and external references: a PSKC file never needs them, and XML bombs and external
entities never reach a parser that might expand them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from oathdesk.formats.checks import (
    Columns,
    RowFacts,
    cross_row_problems,
    user_and_field_problems,
)
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import ParsedFile, SeedRecord

FORMAT = "pskc"
TOTP_URN = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
HOTP_URN = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
# AlgorithmParameters/Suite, with everything but letters and digits removed.
HASHES = {"hmacsha1": "sha1", "sha1": "sha1", "hmacsha256": "sha256", "sha256": "sha256"}
HASHES |= {"hmacsha512": "sha512", "sha512": "sha512"}
COLUMNS = Columns(serial="SerialNo", seed="Secret", user="UserId")


def looks_like_pskc(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"KeyContainer" in head


def parse_pskc(data: bytes, *, password: str | None = None, psk: bytes | None = None) -> ParsedFile:
    """Records and every problem; never raises. Give ``password`` or ``psk`` for protected files."""
    refused = refuse_unsafe_xml(data)
    if refused is not None:
        return ParsedFile(FORMAT, [], [refused])
    import pskc

    try:
        container = pskc.PSKC(io.BytesIO(data))
    except Exception:  # python-pskc raises ParseError, ValueError, ...: all mean "not PSKC"
        return _failed(
            "the file is XML but not a PSKC (RFC 6030) key container",
            "ask the vendor for the PSKC seed file, or give --format",
            Code.NOT_PSKC,
        )
    encrypted = _needs_key(container.encryption)
    locked = _unlock(container.encryption, password, psk) if encrypted else None
    if locked is not None:
        return ParsedFile(FORMAT, [], [locked])
    keys = list(container.keys)
    if not keys:
        return _failed("the file holds no keys", "ask the vendor for the seed file", Code.NOT_PSKC)
    lines = key_lines(data, len(keys))
    readings = [_read_key(key, line) for key, line in zip(keys, lines, strict=True)]
    if encrypted and all(r.undecryptable for r in readings):
        what = "pre-shared key" if psk is not None else "password"
        return _failed(
            f"the {what} does not open this file",
            f"check the {what} the vendor sent (it usually comes separately from the file)",
            Code.WRONG_PASSWORD,
        )
    problems = [p for r in readings for p in r.problems]
    problems += cross_row_problems([r.facts for r in readings], COLUMNS)
    records = [r.record for r in readings if r.record is not None]
    return ParsedFile.checked(FORMAT, records, problems, columns=COLUMNS)


def refuse_unsafe_xml(data: bytes) -> Problem | None:
    """A problem when the XML is malformed or declares a DTD, entities or external references."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        return Problem(
            0,
            "",
            "the file declares a DTD or entities (an XML bomb or external entity?), so it was "
            "not parsed",
            fix="ask the vendor for a plain PSKC file",
            code=Code.UNSAFE_XML,
        )
    except Exception:  # ParseError, LookupError (a damaged encoding name), ...: not usable XML
        return Problem(
            0,
            "",
            "the file is not well-formed XML",
            fix="download it again; it may have been cut short",
            code=Code.NOT_PSKC,
        )
    return None


def key_lines(data: bytes, count: int) -> list[int]:
    """The line of each <Key> in document order (0s when they cannot be told).

    python-pskc keeps no line numbers; expat does. Only called once the document is known to
    have no DTD, so expat has nothing to expand.
    """
    from xml.parsers import expat

    parser = expat.ParserCreate(namespace_separator="}")
    depth = 0
    lines: list[int] = []

    def start(name: str, _attributes: object) -> None:
        nonlocal depth
        # KeyContainer > KeyPackage (or Device, in pre-RFC files) > Key
        if depth == 2 and name.rsplit("}", 1)[-1] == "Key":
            lines.append(parser.CurrentLineNumber)
        depth += 1

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, LookupError, ValueError):
        return [0] * count
    return lines if len(lines) == count else [0] * count


def _needs_key(encryption: Any) -> bool:
    # python-pskc's is_encrypted tries to decrypt every value and only expects DecryptionError;
    # a damaged file can raise others (e.g. a bad IV length), and that file needs a key too.
    try:
        return bool(encryption.is_encrypted)
    except Exception:
        return True


def _unlock(encryption: Any, password: str | None, psk: bytes | None) -> Problem | None:
    uses_password = encryption.derivation.algorithm is not None
    if uses_password and password is None:
        return Problem(
            0,
            "",
            "the file is protected with a password",
            fix="give the password the vendor sent (--password-stdin)",
            code=Code.ENCRYPTED,
        )
    if not uses_password and psk is None:
        return Problem(
            0,
            "",
            "the file is encrypted with a pre-shared key",
            fix="give the key the vendor sent, in hex (--psk-file)",
            code=Code.ENCRYPTED,
        )
    try:
        if uses_password:
            encryption.derive_key(password)
        else:
            encryption.key = psk
    except Exception:  # KeyDerivationError and friends: the file's protection is unusable
        return Problem(
            0,
            "",
            "the file's protection cannot be opened with what was given",
            fix="check the password or key, and ask the vendor which one protects the file",
            code=Code.WRONG_PASSWORD,
        )
    return None


@dataclass(frozen=True)
class _KeyReading:
    record: SeedRecord | None
    problems: list[Problem]
    facts: RowFacts
    undecryptable: bool = False


def _read_key(key: Any, line: int) -> _KeyReading:
    serial = str(key.serial).strip() if key.serial else None
    label = f"key {serial or key.id or '(no serial)'}"
    try:
        secret = key.secret
        period = key.time_interval
    except Exception:  # DecryptionError (wrong key, MAC mismatch, padding) or a broken value
        problem = Problem(
            line,
            "Secret",
            f"{label} cannot be decrypted",
            fix="check the password or key the vendor sent",
            code=Code.WRONG_PASSWORD,
        )
        return _KeyReading(None, [problem], RowFacts(line, serial, None, None), True)
    user = key.key_userid or key.device_userid
    facts = RowFacts(line, serial, secret or None, user, (key.manufacturer, key.model))
    problems: list[Problem] = []
    not_totp = _algorithm_problem(key.algorithm, period)
    if not_totp is not None:
        problems.append(
            Problem(
                line,
                "Algorithm",
                f"{label} {not_totp}",
                fix="Entra and oathdesk take TOTP tokens only: ask the vendor for TOTP seeds",
                code=Code.NOT_TOTP,
            )
        )
    algorithm = _hash(key.algorithm_suite)
    if algorithm is None:
        problems.append(
            Problem(
                line,
                "Suite",
                f"{label}: the hash function is not SHA-1, SHA-256 or SHA-512",
                fix="ask the vendor which hash the token uses",
                code=Code.HASH_UNSUPPORTED,
            )
        )
    if not secret:
        problems.append(
            Problem(
                line,
                "Secret",
                f"{label} has no secret",
                fix="ask the vendor for the seed file that holds the secrets",
                code=Code.SECRET_EMPTY,
            )
        )
    if not serial:
        problems.append(
            Problem(
                line,
                "SerialNo",
                f"{label} has no serial number",
                fix="ask the vendor for a seed file with serial numbers",
                code=Code.SERIAL_EMPTY,
            )
        )
    problems += user_and_field_problems(
        line, user, {"SerialNo": serial, "Manufacturer": key.manufacturer, "Model": key.model}
    )
    if problems or not secret or algorithm is None:
        return _KeyReading(None, problems, facts)
    record = SeedRecord(
        line,
        bytes(secret),
        upn=user.strip().lower() if user else None,
        serial=serial,
        manufacturer=key.manufacturer,
        model=key.model,
        algorithm=algorithm,
        digits=key.response_length or 6,
        period=period or 30,
    )
    return _KeyReading(record, [], facts)


def _algorithm_problem(algorithm: str | None, period: int | None) -> str | None:
    name = (algorithm or "").lower()
    if name.endswith("totp"):
        return None
    if name.endswith("hotp"):
        return "is HOTP (counter-based), not TOTP"
    if not name:
        return None if period else "does not say it is TOTP and has no time interval"
    return "uses an algorithm other than TOTP"


def _hash(suite: str | None) -> str | None:
    if not suite:
        return "sha1"  # RFC 6238's default
    return HASHES.get("".join(char for char in suite.lower() if char.isalnum()))


def _failed(message: str, fix: str, code: Code) -> ParsedFile:
    return ParsedFile(FORMAT, [], [Problem(0, "", message, fix=fix, code=code)])
