"""The Entra portal's rules for the values of one OATH CSV row. Pure.

Secret keys are base32 only (a-z, A-Z, 2-7), at most 128 characters; hex is the most common
mistake (an old Microsoft example was hex). Time intervals are 30 or 60. Hardware tokens go to
member accounts only, never to guests.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from oathdesk.errors import SeedError
from oathdesk.formats.problems import Code, Problem
from oathdesk.seed import MIN_SECRET_BYTES, parse_seed
from oathdesk.upn import upn_problem

MAX_SECRET_CHARS = 128
INTERVALS = ("30", "60")
ENABLED_VALUES = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}

# Regular expressions rather than per-character loops: a vendor file can hold 100,000 rows.
_BASE32 = re.compile(r"[A-Za-z2-7]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_NOT_BASE32_DIGIT = re.compile(r"[0189]")
_HEX_LETTER = re.compile(r"[A-Fa-f]")
_DIGIT = re.compile(r"[0-9]")
_SEPARATORS = str.maketrans("", "", " -\t")
# Base32 of random bytes made only of hex digits is vanishingly rare from this length on
# ((12/32)**16 < 2e-7), so such a secret was most probably written in hex.
_MAYBE_HEX_MIN_CHARS = 16
# The base32 length of the shortest secret oathdesk.seed accepts (16 characters, 10 bytes).
_MIN_FAST_CHARS = -(-MIN_SECRET_BYTES * 8 // 5)

FIX_WITH_LINT = "`oathdesk entra-csv lint FILE --fix NEW.csv` writes a corrected copy"


@dataclass(frozen=True)
class SecretCheck:
    """What the checks found about one secret key cell.

    ``problems`` stop the row; ``form_problems`` (spaces, dashes, padding) are read past by an
    import but refused by the portal; ``warnings`` are worth a look.
    """

    problems: list[Problem]
    form_problems: list[Problem]
    warnings: list[Problem]
    secret: bytes | None = field(repr=False)  # decoded, when it is valid
    fingerprint: bytes | str | None = field(repr=False)  # to find one secret on two rows


def is_hex_text(text: str) -> bool:
    return _HEX.fullmatch(text) is not None


def looks_like_hex(text: str) -> bool:
    """Hex digits only, with at least one digit base32 does not have (0, 1, 8, 9)."""
    return is_hex_text(text) and _NOT_BASE32_DIGIT.search(text) is not None


def maybe_hex(text: str) -> bool:
    """Valid base32 that is probably hex: only hex digits, both letters and digits, long."""
    return (
        len(text) >= _MAYBE_HEX_MIN_CHARS
        and len(text) % 2 == 0
        and is_hex_text(text)
        and _HEX_LETTER.search(text) is not None
        and _DIGIT.search(text) is not None
    )


def compact_secret(text: str) -> str:
    """The secret without the spaces, dashes and '=' padding people add; case kept."""
    return text.translate(_SEPARATORS).rstrip("=")


def check_secret(line: int, column: str, text: str) -> SecretCheck:
    """Every rule of the portal for a secret key; messages never quote it."""
    compact = compact_secret(text)
    fingerprint = _fingerprint(compact)
    found = _secret_problem(compact)
    if found is not None:
        code, message, fix = found
        problem = Problem(line, column, message, fix=fix, code=code)
        return SecretCheck([problem], [], [], None, fingerprint)
    if len(compact) % 8 == 0 and len(compact) >= _MIN_FAST_CHARS:
        # The usual case (32 characters), already checked to be base32: decoding cannot fail,
        # and skipping oathdesk.seed's general parser halves the time of a big file.
        secret = base64.b32decode(compact.upper())
    else:
        try:
            secret = parse_seed("base32:" + compact).secret
        except SeedError as error:
            problem = Problem(
                line,
                column,
                error.message,
                fix="copy it again from the vendor's file",
                code=Code.SECRET_INVALID,
            )
            return SecretCheck([problem], [], [], None, fingerprint)
    form_problems = []
    if compact != text:
        form_problems.append(
            Problem(
                line,
                column,
                "the secret key has spaces, dashes or '=' padding, which are not base32",
                fix=f"remove them; {FIX_WITH_LINT}",
                code=Code.SECRET_SEPARATORS,
            )
        )
    warnings = []
    if maybe_hex(compact):
        warnings.append(
            Problem(
                line,
                column,
                "the secret key is valid base32 but made only of hex digits, so it may be hex "
                "(Entra would read it as base32 and every code would be wrong)",
                fix="if the vendor's file says it is hex, convert it to base32 before the upload",
                code=Code.SECRET_MAYBE_HEX,
            )
        )
    return SecretCheck([], form_problems, warnings, secret, secret)


# A secret the portal takes as it is, with nothing to warn about: upper-case base32 in whole
# 8-character groups, 16 to 128 characters, not made only of hex digits (see maybe_hex).
_CLEAN_SECRET = re.compile(r"(?:[A-Z2-7]{8}){2,16}")
_HEX_DIGITS_ONLY = re.compile(r"[A-F2-7]+")
# RFC 4648's base32 alphabet to the digits int() reads in base 32 (0-9, A-V), value for value.
_TO_INT_DIGITS = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV"
)


def decode_base32_groups(texts: Sequence[str]) -> list[bytes]:
    """Decode upper-case RFC 4648 base32 texts made of whole 8-character groups (no padding),
    which the caller has checked; one C call for the whole column.

    Whole 8-character groups decode to whole 5-byte groups, so the joined texts decode to the
    joined secrets, cut back apart by their lengths. int() reads base 32 in C, in linear time
    (a power of two, so no digit limit applies), where base64.b32decode loops in Python.
    """
    joined = "".join(texts)
    if not joined:
        return [b"" for _ in texts]
    decoded = int(joined.translate(_TO_INT_DIGITS), 32).to_bytes(len(joined) * 5 // 8, "big")
    sizes = {len(text) for text in texts}
    if len(sizes) == 1:  # a vendor's file: every secret as long as the others
        size = sizes.pop() * 5 // 8
        return [decoded[start : start + size] for start in range(0, len(decoded), size)]
    ends = list(accumulate(len(text) * 5 // 8 for text in texts))
    return [decoded[end - len(text) * 5 // 8 : end] for end, text in zip(ends, texts, strict=True)]


def check_secrets(lines: Sequence[int], column: str, texts: Sequence[str]) -> list[SecretCheck]:
    """``check_secret`` for a whole column: the clean secrets (nearly all of a vendor's file)
    are decoded in one call (``decode_base32_groups``), the others checked one by one."""
    clean = [
        _CLEAN_SECRET.fullmatch(text) is not None and _HEX_DIGITS_ONLY.fullmatch(text) is None
        for text in texts
    ]
    decoded = iter(decode_base32_groups([t for t, ok in zip(texts, clean, strict=True) if ok]))
    checks = []
    for line, text, ok in zip(lines, texts, clean, strict=True):
        if not ok:
            checks.append(check_secret(line, column, text))
            continue
        secret = next(decoded)
        checks.append(SecretCheck([], [], [], secret, secret))
    return checks


def _secret_problem(compact: str) -> tuple[Code, str, str] | None:
    if not compact:
        return Code.SECRET_EMPTY, "the secret key is empty", "copy it from the vendor's seed file"
    if len(compact) > MAX_SECRET_CHARS:
        return (
            Code.SECRET_TOO_LONG,
            f"the secret key has {len(compact)} characters; Entra accepts at most "
            f"{MAX_SECRET_CHARS}",
            "check that two values were not joined, and copy it again from the vendor's file",
        )
    if looks_like_hex(compact):
        if len(compact) % 2:
            return (
                Code.SECRET_HEX,
                f"the secret key looks like hex ({len(compact)} digits, an odd number), "
                "which Entra rejects",
                "a digit is missing or extra: copy it again from the vendor's file, "
                "then convert it to base32",
            )
        return (
            Code.SECRET_HEX,
            f"the secret key looks like hex ({len(compact)} digits, {len(compact) // 2} bytes), "
            "which Entra rejects: it accepts base32 only",
            f"convert it to base32: {FIX_WITH_LINT}",
        )
    if _BASE32.fullmatch(compact) is None:
        if _NOT_BASE32_DIGIT.search(compact) is not None:
            return (
                Code.SECRET_NOT_BASE32,
                "the secret key has 0, 1, 8 or 9, which base32 does not use",
                "copy it again from the vendor's file (O, I, L and B are easily misread)",
            )
        return (
            Code.SECRET_NOT_BASE32,
            "the secret key has characters that are not base32 (A-Z, 2-7)",
            "copy it again from the vendor's file",
        )
    return None


def _fingerprint(compact: str) -> bytes | str | None:
    # The same seed written once in hex and once in base32 is still the same seed.
    if looks_like_hex(compact) and len(compact) % 2 == 0:
        return bytes.fromhex(compact)
    return compact.upper() or None


def check_stock_upn(line: int, column: str, text: str) -> list[Problem]:
    """An empty UPN: a token in stock. ``oathdesk import`` takes it; the portal does not.

    The portal's upload assigns each token to the user on its row (Microsoft's CSV page lists
    the UPN among what the file must include); unassigned tokens for self-service exist only in
    Graph's inventory, which tokens uploaded by CSV are not part of. So this is a form problem:
    the import reads past it, the lint fails and says which way such tokens take to Entra.
    """
    if text:
        return []
    return [
        Problem(
            line,
            column,
            "the UPN is empty: a token in stock, which `oathdesk import` takes but the portal's "
            "CSV upload does not (it assigns every token to the user on its row)",
            fix="fill in the user's UPN to upload the file, or import it and upload the tokens "
            "unassigned for self-service with `oathdesk entra push --stock`",
            code=Code.UPN_EMPTY,
        )
    ]


def check_upn(line: int, column: str, text: str) -> list[Problem]:
    if not text:
        return [
            Problem(
                line,
                column,
                "the UPN is empty",
                fix="fill in the user's UPN (name@contoso.com)",
                code=Code.UPN_INVALID,
            )
        ]
    if "#EXT#" in text.upper():
        return [
            Problem(
                line,
                column,
                "this is a guest account (#EXT#); Entra gives hardware tokens to members only",
                fix="give the token to the user's account in their home organisation",
                code=Code.UPN_INVALID,
            )
        ]
    reason = upn_problem(text)
    if reason is not None:
        return [
            Problem(
                line,
                column,
                f"not a valid UPN: {reason}",
                fix="correct it as Entra shows it under Users, without display name or quotes",
                code=Code.UPN_INVALID,
            )
        ]
    return []


def check_interval(line: int, column: str, text: str) -> list[Problem]:
    if text in INTERVALS:
        return []
    return [
        Problem(
            line,
            column,
            "the time interval must be 30 or 60 (seconds)",
            fix="use the value from the vendor's file (most tokens: 30)",
            code=Code.INTERVAL_INVALID,
        )
    ]


def check_enabled(line: int, column: str, text: str) -> list[Problem]:
    if not text or text.lower() in ENABLED_VALUES:
        return []
    return [
        Problem(
            line,
            column,
            "Enabled must be true or false",
            fix="write true or false, or leave it empty (true)",
            code=Code.ENABLED_INVALID,
        )
    ]


def check_filled(line: int, column: str, text: str, what: str) -> list[Problem]:
    if text:
        return []
    code = Code.SERIAL_EMPTY if column == "serial number" else Code.VALUE_EMPTY
    return [
        Problem(
            line,
            column,
            f"the {what} is empty",
            fix=f"fill in the {what} from the vendor's file or the back of the token",
            code=code,
        )
    ]
