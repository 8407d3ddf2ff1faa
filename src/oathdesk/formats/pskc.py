"""Vendor seed files in PSKC (RFC 6030), through python-pskc: plain, protected with a password
(PBKDF2) or encrypted with a pre-shared key. Pure: the file comes in as bytes.

python-pskc parses with lxml when it is installed (it is not here) and otherwise with defusedxml,
whose defaults still allow a DTD, and it deep-copies the tree it built, recursing in C. So the
bytes are checked first, streaming (``limits.check_xml``): no DTD, entities or external
references (a PSKC file never needs them), and bounded depth and size, so XML bombs, external
entities and nesting deep enough to overflow the C stack never reach a parser.

Every refusal names its true reason: a protection oathdesk cannot open (RSA key transport, an
unknown algorithm, an incomplete or hostile PBKDF2 setup) is told before any key is asked for,
a failed integrity check (MAC) after the right key is not called a wrong key, and a value
python-pskc cannot convert is named with its element and line (``pskc_values``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from oathdesk.formats.checks import (
    Columns,
    RowFacts,
    cross_row_problems,
    user_and_field_problems,
)
from oathdesk.formats.limits import RefusalKind, check_xml
from oathdesk.formats.problems import Code, Problem, one_line
from oathdesk.formats.pskc_values import find_bad_value
from oathdesk.formats.records import ParsedFile, SeedRecord, SkippedKey

FORMAT = "pskc"
TOTP_URN = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
HOTP_URN = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
# AlgorithmParameters/Suite, with everything but letters and digits removed.
HASHES = {"hmacsha1": "sha1", "sha1": "sha1", "hmacsha256": "sha256", "sha256": "sha256"}
HASHES |= {"hmacsha512": "sha512", "sha512": "sha512"}
COLUMNS = Columns(serial="SerialNo", seed="Secret", user="UserId")
# PBKDF2 as vendors use it: 1,000 to some 100,000 iterations, and a 16 to 32-byte AES key. A
# file asking for more is hostile (a password derivation that runs for hours, or a key of
# gigabytes) and is refused before anything is derived.
MAX_PBKDF2_ITERATIONS = 10_000_000
PBKDF2_KEY_LENGTHS = (16, 24, 32)
# python-pskc's text for a value whose MAC differs (pinned version; a test reads a file of its
# own whose MAC was altered, so a change of the text shows).
_MAC_MISMATCH = "MAC value does not match"
_NEW_COPY = "ask the vendor for a new copy of the file"


def looks_like_pskc(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and b"KeyContainer" in head


def parse_pskc(
    data: bytes,
    *,
    password: str | None = None,
    psk: bytes | None = None,
    skip_hotp: bool = False,
) -> ParsedFile:
    """Records and every problem; never raises. Give ``password`` or ``psk`` for protected files.

    HOTP keys are problems of their key, or with ``skip_hotp`` left out and listed in
    ``skipped`` (a vendor's file may mix them with the TOTP keys Entra takes)."""
    refused = refuse_unsafe_xml(data)
    if refused is not None:
        return ParsedFile(FORMAT, [], [refused])
    import pskc

    try:
        container = pskc.PSKC(io.BytesIO(data))
    except ValueError:  # a number, boolean, date or base64 value python-pskc cannot convert
        return ParsedFile(FORMAT, [], [_bad_value_problem(data)])
    except Exception as exc:  # python-pskc raises ParseError, ...: all mean "not PSKC"
        return ParsedFile(FORMAT, [], [_not_pskc(data, container_version(exc))])
    encrypted = _needs_key(container.encryption)
    unusable = _unusable_protection(container) if encrypted else None
    if unusable is not None:
        return ParsedFile(FORMAT, [], [unusable])
    locked = _unlock(container.encryption, password, psk) if encrypted else None
    if locked is not None:
        return ParsedFile(FORMAT, [], [locked])
    keys = list(container.keys)
    if not keys:
        return _failed("the file holds no keys", "ask the vendor for the seed file", Code.NOT_PSKC)
    lines = key_lines(data, len(keys))
    readings = [_read_key(key, line) for key, line in zip(keys, lines, strict=True)]
    # A MAC that differs after its value decrypted (padding and all) means the file was
    # altered, unless no key decrypted at all and some failed otherwise: then the key is the
    # likelier fault, and that is what is said.
    key_opens = any(not (r.undecryptable or r.mac_mismatch) for r in readings)
    if encrypted and not key_opens and any(r.undecryptable for r in readings):
        what = "pre-shared key" if psk is not None else "password"
        return _failed(
            f"the {what} does not open this file",
            f"check the {what} the vendor sent (it usually comes separately from the file)",
            Code.WRONG_PASSWORD,
        )
    skipped = [SkippedKey(r.facts.line, r.label) for r in readings if r.hotp] if skip_hotp else []
    if skip_hotp:
        readings = [r for r in readings if not r.hotp]
    problems = [p for r in readings for p in r.problems]
    problems += cross_row_problems([r.facts for r in readings], COLUMNS)
    records = [r.record for r in readings if r.record is not None]
    return ParsedFile.checked(FORMAT, records, problems, columns=COLUMNS, skipped=skipped)


def refuse_unsafe_xml(data: bytes) -> Problem | None:
    """A problem when the XML is malformed, declares a DTD, entities or external references, or
    nests deeper or holds more than any PSKC file needs (``limits``)."""
    refusal = check_xml(data)
    if refusal is None:
        return None
    if refusal.kind is RefusalKind.UNSAFE:
        return Problem(
            0,
            "",
            "the file declares a DTD or entities (an XML bomb or external entity?), so it was "
            "not parsed",
            fix="ask the vendor for a plain PSKC file",
            code=Code.UNSAFE_XML,
        )
    if refusal.kind is RefusalKind.MALFORMED:
        return Problem(
            0,
            "",
            "the file is not well-formed XML",
            fix="download it again; it may have been cut short",
            code=Code.NOT_PSKC,
        )
    return Problem(
        refusal.line,
        "",
        f"{refusal.message}, far more than a PSKC file needs (a crafted file?), so it was not "
        "parsed",
        fix="ask the vendor for the PSKC file as their tool exports it; split a very large order",
        code=Code.TOO_LARGE,
    )


def container_version(exc: Exception) -> str | None:
    """The container's version when python-pskc refused it for that (from ParseError's text)."""
    text = str(exc)
    prefix = "Unsupported version "
    return text[len(prefix) :].strip("'\"") if text.startswith(prefix) else None


def _not_pskc(data: bytes, version: str | None) -> Problem:
    if version is not None:
        return Problem(
            _root_line(data),
            "Version",
            f"the file is a PSKC container of version {one_line(version, limit=20)}",
            fix="oathdesk reads version 1.0 (RFC 6030): ask the vendor for that version",
            code=Code.NOT_PSKC,
        )
    return Problem(
        0,
        "",
        "the file is XML but not a PSKC (RFC 6030) key container",
        fix="ask the vendor for the PSKC seed file, or give --format",
        code=Code.NOT_PSKC,
    )


class _Found(Exception):
    pass


def _root_line(data: bytes) -> int:
    from xml.parsers import expat

    parser = expat.ParserCreate()
    lines: list[int] = []

    def start(_name: str, _attributes: object) -> None:
        lines.append(parser.CurrentLineNumber)
        raise _Found  # the root element is all that is wanted

    parser.StartElementHandler = start
    with contextlib.suppress(Exception):  # _Found, or nothing to point at
        parser.Parse(data, True)
    return lines[0] if lines else 0


def _bad_value_problem(data: bytes) -> Problem:
    bad = find_bad_value(data)
    if bad is None:
        return _not_pskc(data, None)
    return Problem(
        bad.line,
        bad.name,
        one_line(bad.message),
        fix="the file is damaged or not as RFC 6030 describes: ask the vendor for a corrected file",
        code=Code.VALUE_INVALID,
    )


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


def _unusable_protection(container: Any) -> Problem | None:
    """Why the file's protection cannot be opened whatever key is given, or None.

    Told before a key or password is asked for: an operator asked for a key would look for one
    that cannot help.
    """
    from pskc.encryption import algorithm_key_lengths
    from pskc.exceptions import PSKCError
    from pskc.mac import mac

    algorithm = container.encryption.algorithm
    if algorithm is None:
        return _protection_problem(
            "the file is encrypted but does not say with which algorithm (its EncryptionMethod "
            "has none)",
            _NEW_COPY,
            Code.ENCRYPTION_UNSUPPORTED,
        )
    if "rsa" in algorithm.lower():
        return _protection_problem(
            "the seeds are encrypted to a certificate (RSA key transport, RFC 6030 section "
            "6.3), which oathdesk does not support",
            "ask the vendor for a file protected with a pre-shared key or a password, or "
            "decrypt it with the vendor's tool first",
            Code.ENCRYPTION_UNSUPPORTED,
        )
    try:
        algorithm_key_lengths(algorithm)
    except PSKCError:
        return _protection_problem(
            f"the seeds are encrypted with an algorithm oathdesk does not know "
            f"({one_line(algorithm)})",
            "ask the vendor for a file encrypted with AES-128-CBC (RFC 6030), or decrypt it "
            "with the vendor's tool first",
            Code.ENCRYPTION_UNSUPPORTED,
        )
    mac_algorithm = container.mac.algorithm
    if mac_algorithm is not None:
        try:
            mac(mac_algorithm, b"probe", b"")
        except PSKCError:
            return _protection_problem(
                f"the file's integrity check uses a MAC algorithm oathdesk does not know "
                f"({one_line(mac_algorithm)})",
                "ask the vendor for a file with HMAC-SHA1 or HMAC-SHA256 (RFC 6030)",
                Code.ENCRYPTION_UNSUPPORTED,
            )
    return _derivation_problem(container.encryption.derivation)


def _derivation_problem(derivation: Any) -> Problem | None:
    """Why a password-protected file's key derivation cannot be run, or None (no password)."""
    algorithm = derivation.algorithm
    if algorithm is None:
        return None
    if not algorithm.endswith("#pbkdf2") and algorithm != "pbkdf2":
        return _protection_problem(
            f"the file's password is turned into a key with an algorithm oathdesk does not "
            f"know ({one_line(algorithm)})",
            "ask the vendor for a file protected with PBKDF2 (RFC 6030) or a pre-shared key",
            Code.ENCRYPTION_UNSUPPORTED,
        )
    iterations = derivation.pbkdf2_iterations
    length = derivation.pbkdf2_key_length
    if not derivation.pbkdf2_salt or not iterations or not length:
        return _protection_problem(
            "the file's password protection (PBKDF2) is incomplete: it lacks the salt, the "
            "iteration count or the key length",
            _NEW_COPY,
            Code.PROTECTION_INVALID,
        )
    if iterations > MAX_PBKDF2_ITERATIONS or length not in PBKDF2_KEY_LENGTHS:
        return _protection_problem(
            f"the file's password protection (PBKDF2) asks for {iterations:,} iterations and a "
            f"{length:,}-byte key; vendors use at most {MAX_PBKDF2_ITERATIONS:,} and 16 to 32 "
            "bytes, so it was not run",
            _NEW_COPY,
            Code.PROTECTION_INVALID,
        )
    try:
        from pskc.algorithms import normalise_algorithm

        prf = normalise_algorithm(derivation.pbkdf2_prf) or "hmac-sha1"
        hashlib.new(prf.rsplit("hmac-", 1)[-1])
    except ValueError:
        return _protection_problem(
            f"the file's password protection (PBKDF2) uses a function oathdesk does not know "
            f"({one_line(str(derivation.pbkdf2_prf))})",
            "ask the vendor for a file with PBKDF2 and HMAC-SHA1 or HMAC-SHA256",
            Code.ENCRYPTION_UNSUPPORTED,
        )
    return None


def _protection_problem(message: str, fix: str, code: Code) -> Problem:
    return Problem(0, "", message, fix=fix, code=code)


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
    mac_mismatch: bool = False
    hotp: bool = False  # the key is HOTP (left out with skip_hotp, whatever else is wrong)
    label: str = ""  # the key's serial, or its id


def _read_key(key: Any, line: int) -> _KeyReading:
    serial = str(key.serial).strip() if key.serial else None
    label = f"key {serial or key.id or '(no serial)'}"
    try:
        secret = key.secret
        period = key.time_interval
    except Exception as exc:  # DecryptionError (wrong key, MAC mismatch, padding), a bad value
        if str(exc) == _MAC_MISMATCH:
            altered = Problem(
                line,
                "Secret",
                f"{label}: the value decrypts but fails the file's integrity check (MAC): the "
                "file was altered or corrupted",
                fix=f"{_NEW_COPY}, and do not use this one",
                code=Code.MAC_MISMATCH,
            )
            facts = RowFacts(line, serial, None, None)
            return _KeyReading(None, [altered], facts, mac_mismatch=True)
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
    hotp = (key.algorithm or "").lower().endswith("hotp")
    name = serial or str(key.id or "(no serial)")
    if problems or not secret or algorithm is None:
        return _KeyReading(None, problems, facts, hotp=hotp, label=name)
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
