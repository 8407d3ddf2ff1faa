"""Seeds (shared secrets): parse what an operator pastes or scans, convert, generate, build URIs.

Pure functions, no I/O (QR images live in ``oathdesk.qr``). The parser accepts what helpdesks
really paste: Entra's base32 ("Can't scan image?" shows it in groups with spaces), hex from
vendor sheets, and ``otpauth://totp`` URIs from a QR code. It refuses, with a one-line hint, the
mistakes Token2's burner apps see every day: the Microsoft Authenticator push QR, Google
Authenticator exports, passkey QR codes, HOTP URIs and serial numbers typed as secrets.

Form detection: ``hex:`` / ``base32:`` prefixes force a form. Otherwise input made only of
0-9 and a-f that contains a 0, 1, 8 or 9 (digits base32 does not have), or that starts with 0x, is
hex; everything else is treated as base32.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import NamedTuple

from oathdesk.errors import SeedError

# No dataclasses, re, secrets or urllib at import time: `oathdesk code` must start fast.

MIN_SECRET_BYTES = 10  # 80 bits; RFC 4226 requires at least 128 and recommends 160
# The most any token takes and `generate_secret` makes: HMAC-SHA512's block; a longer HMAC key
# is hashed down, so a longer "seed" is a wrong value (or a crafted file), never a token's.
MAX_SECRET_BYTES = 128
DEFAULT_SECRET_BYTES = {"sha1": 20, "sha256": 32, "sha512": 64}
SUPPORTED_DIGITS = range(6, 11)

_BASE32_ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_BASE32_HINTS = {
    "0": "0 is not base32; did you mean O?",
    "1": "1 is not base32; did you mean I or L?",
    "8": "8 is not base32; did you mean B?",
    "9": "9 is not base32; did you mean g?",
}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX_ONLY_DIGITS = set("0189")
_SEPARATORS = str.maketrans("", "", " \t\r\n-")


class SeedForm(StrEnum):
    BASE32 = "base32"
    HEX = "hex"
    OTPAUTH_URI = "otpauth-uri"


def _is_hex(text: str) -> bool:
    return bool(text) and all(char in _HEX_DIGITS for char in text)


class ParsedSeed(NamedTuple):
    """A parsed secret and what came with it. The secret never appears in repr or str."""

    secret: bytes
    form: SeedForm
    algorithm: str | None = None
    digits: int | None = None
    period: int | None = None
    issuer: str | None = None
    account: str | None = None

    @property
    def size_bits(self) -> int:
        return len(self.secret) * 8

    def __repr__(self) -> str:
        return (
            f"ParsedSeed(secret=<{len(self.secret)} bytes hidden>, form={self.form.value!r}, "
            f"algorithm={self.algorithm!r}, digits={self.digits!r}, period={self.period!r}, "
            f"issuer={self.issuer!r}, account={self.account!r})"
        )


def encode_base32(secret: bytes) -> str:
    """Upper-case base32 without padding, the way Entra and the tokens' apps print it."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def _strip_separators(text: str) -> str:
    return text.translate(_SEPARATORS)


def _decode_base32(text: str) -> bytes:
    cleaned = _strip_separators(text).upper()
    if not cleaned:
        raise SeedError("the secret is empty; paste the base32 key Entra shows under 'Can't scan?'")
    body = cleaned.rstrip("=")
    padding = len(cleaned) - len(body)
    for char in body:
        if char not in _BASE32_ALPHABET:
            hint = _BASE32_HINTS.get(char)
            if hint:
                raise SeedError(f"{hint} Base32 uses only A-Z and 2-7")
            if char == "=":
                raise SeedError("'=' padding may only appear at the end of a base32 secret")
            raise SeedError(
                "the secret contains characters that are neither base32 (A-Z, 2-7) nor hex; "
                "copy it again from the source"
            )
    if len(body) % 8 in (1, 3, 6):
        raise SeedError(
            f"a base32 secret cannot be {len(body)} characters long; "
            "a character is missing or extra"
        )
    if padding and (len(body) + padding) % 8:
        raise SeedError("the base32 padding ('=') is wrong; remove the '=' characters")
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8))
    except binascii.Error:
        raise SeedError("the secret is not valid base32; copy it again from the source") from None


def normalize_base32(text: str) -> str:
    """Canonical base32 (upper case, no spaces, dashes or padding); raises SeedError."""
    return encode_base32(_decode_base32(text))


def _decode_hex(text: str) -> bytes:
    cleaned = _strip_separators(text).removeprefix("0x").removeprefix("0X")
    if not _is_hex(cleaned):
        raise SeedError("the secret is not valid hex (0-9, a-f); copy it again from the source")
    if len(cleaned) % 2:
        raise SeedError(
            f"a hex secret needs an even number of digits, this one has {len(cleaned)}; "
            "a digit is missing or extra"
        )
    return bytes.fromhex(cleaned)


def base32_to_hex(text: str) -> str:
    return _decode_base32(text).hex()


def hex_to_base32(text: str) -> str:
    return encode_base32(_decode_hex(text))


def generate_secret(algorithm: str = "sha1", size: int | None = None) -> bytes:
    """A new random secret from the OS CSPRNG, sized for the hash (RFC 4226 section 4)."""
    if size is None:
        if algorithm not in DEFAULT_SECRET_BYTES:
            raise SeedError(f"unknown algorithm {algorithm!r}; use sha1, sha256 or sha512")
        size = DEFAULT_SECRET_BYTES[algorithm]
    if not MIN_SECRET_BYTES <= size <= 128:
        raise SeedError(f"a secret must be {MIN_SECRET_BYTES} to 128 bytes, not {size}")
    import secrets

    return secrets.token_bytes(size)


def build_otpauth_uri(
    secret: bytes,
    *,
    account: str,
    issuer: str | None = None,
    algorithm: str = "sha1",
    digits: int = 6,
    period: int = 30,
) -> str:
    """An ``otpauth://totp/`` URI (Google Authenticator key-URI format)."""
    from urllib.parse import quote

    label = quote(f"{issuer}:{account}" if issuer else account, safe="@:")
    params = [f"secret={encode_base32(secret)}"]
    if issuer:
        params.append(f"issuer={quote(issuer, safe='')}")
    params += [f"algorithm={algorithm.upper()}", f"digits={digits}", f"period={period}"]
    return f"otpauth://totp/{label}?{'&'.join(params)}"


_WRONG_SCHEMES = {
    "phonefactor": (
        "this is the Microsoft Authenticator QR code, which tokens cannot use; on "
        "aka.ms/mfasetup choose 'I want to use a different authenticator app' to get a TOTP one"
    ),
    "otpauth-migration": (
        "this is a Google Authenticator export holding several accounts; export or show "
        "the single account instead"
    ),
    "fido": "this is a passkey (FIDO) QR code, not a TOTP secret; use the authenticator-app QR",
}


def _parse_otpauth(text: str) -> ParsedSeed:
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(text)
    kind = parts.netloc.lower()
    if kind == "hotp":
        raise SeedError(
            "this is an HOTP (counter-based) secret; Entra and Token2 TOTP tokens need a "
            "time-based (otpauth://totp) one"
        )
    if kind != "totp":
        raise SeedError("this otpauth URI is not otpauth://totp/...; copy the QR code again")
    query = parse_qs(parts.query, keep_blank_values=True)

    def single(name: str) -> str | None:
        values = query.get(name)
        return values[0].strip() if values else None

    raw_secret = single("secret")
    if not raw_secret:
        raise SeedError("the otpauth URI has no secret= parameter; copy the QR code again")
    secret = _decode_base32(raw_secret)
    label = unquote(parts.path.lstrip("/"))
    label_issuer, _, account = label.rpartition(":")
    issuer = single("issuer") or label_issuer.strip() or None
    algorithm = None
    if (raw_algorithm := single("algorithm")) is not None:
        algorithm = raw_algorithm.lower().replace("-", "")
        if algorithm not in DEFAULT_SECRET_BYTES:
            raise SeedError(
                f"the URI asks for algorithm {raw_algorithm!r}; only SHA1, SHA256 and SHA512 exist"
            )
    digits = _int_param(single("digits"), "digits")
    if digits is not None and digits not in SUPPORTED_DIGITS:
        raise SeedError(f"the URI asks for {digits} digits; oathdesk supports 6 to 10")
    period = _int_param(single("period"), "period")
    if period is not None and period < 1:
        raise SeedError("the URI's period must be a positive number of seconds")
    return ParsedSeed(
        secret=_checked_length(secret),
        form=SeedForm.OTPAUTH_URI,
        algorithm=algorithm,
        digits=digits,
        period=period,
        issuer=issuer,
        account=account.strip() or None,
    )


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    # isdigit() alone accepts other scripts' digits ('٣٠'), which int() would read as 30.
    if not (value.isascii() and value.isdigit()):
        raise SeedError(f"the URI's {name} parameter must be a whole number")
    return int(value)


def _checked_length(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise SeedError(
            f"the secret is only {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed, "
            "so part of it is probably missing"
        )
    if len(secret) > MAX_SECRET_BYTES:
        raise SeedError(
            f"the secret is {len(secret):,} bytes; tokens take at most {MAX_SECRET_BYTES}, so "
            "this is not a token's seed (a wrong column or a damaged value?)"
        )
    return secret


def _looks_like_hex(text: str) -> bool:
    if text[:2] in ("0x", "0X"):
        return True
    return _is_hex(text) and any(char in _HEX_ONLY_DIGITS for char in text)


def parse_seed(text: str) -> ParsedSeed:
    """Parse a pasted or scanned secret; SeedError gives a one-line hint, never the secret."""
    stripped = text.strip()
    if not stripped:
        raise SeedError("the secret is empty; paste the base32 key Entra shows under 'Can't scan?'")
    lowered = stripped.lower()
    if lowered.startswith("otpauth://"):
        return _parse_otpauth(stripped)
    scheme, sep, _ = lowered.partition(":")
    if sep and scheme in _WRONG_SCHEMES:
        raise SeedError(_WRONG_SCHEMES[scheme])
    if scheme == "hex" and sep:
        return ParsedSeed(_checked_length(_decode_hex(stripped[4:])), SeedForm.HEX)
    if scheme == "base32" and sep:
        return ParsedSeed(_checked_length(_decode_base32(stripped[7:])), SeedForm.BASE32)
    if "://" in stripped or lowered.startswith(("http:", "https:", "www.")):
        raise SeedError(
            "this is a web address, not a secret; paste the secret key or the otpauth:// QR text"
        )
    compact = _strip_separators(stripped)
    if compact.isdigit():
        raise SeedError(
            "the input is all digits, which is usually the token's serial number; paste the "
            "secret key (base32 letters A-Z and digits 2-7) instead"
        )
    if _looks_like_hex(compact):
        return ParsedSeed(_checked_length(_decode_hex(compact)), SeedForm.HEX)
    return ParsedSeed(_checked_length(_decode_base32(compact)), SeedForm.BASE32)
