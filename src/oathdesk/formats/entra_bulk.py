"""A clean Entra CSV read in bulk: column-wise set and pattern checks instead of row by row. Pure.

A vendor's file of 100,000 tokens is almost always clean, and checking it one row at a time
(a ``Row`` per record, a problem list per cell) cost most of an import. ``read_clean`` checks
whole columns at once against conditions narrower than the per-row rules of ``entra_rules`` and
``checks``: a file that meets them has no problem, form problem or warning there, so its tokens
are exactly what the row-by-row reader would give. Anything else (quotes, blanks, an empty UPN,
lower-case or hex-looking secrets, duplicates, a user over the limit, a serial that lost its
leading zeros ...) returns None and the row-by-row reader reports it precisely, with its line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from oathdesk.formats.entra_rules import decode_base32_groups
from oathdesk.upn import MAX_PLAIN_UPN_CHARS, PLAIN_UPN

__all__ = ["CleanRows", "read_clean"]

_HEADERS = (
    ["upn", "serial number", "secret key", "time interval", "manufacturer", "model"],
    ["upn", "serial number", "secret key", "timeinterval", "manufacturer", "model"],
)
# A serial without '+', '.' or ',' cannot be Excel's scientific notation.
_PLAIN_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Line breaks of str.splitlines() that the csv module does not break lines at.
_OTHER_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ASCII_OTHER_LINE_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e")
_BASE32_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# A secret made only of hex digits may be hex (a warning): left to the row-by-row reader.
_HEX_ONLY = re.compile(r"^[A-F2-7]+$", re.MULTILINE)


class CleanRows:
    """The columns of a clean file, row i at index i (line i + 2), secrets decoded."""

    __slots__ = ("manufacturers", "models", "periods", "secrets", "serials", "spelling", "upns")

    def __init__(
        self,
        spelling: str,
        upns: list[str],
        serials: list[str],
        secrets: list[bytes],
        periods: list[int],
        manufacturers: list[str],
        models: list[str],
    ) -> None:
        self.spelling = spelling
        self.upns = upns  # lower case
        self.serials = serials
        self.secrets = secrets
        self.periods = periods
        self.manufacturers = manufacturers
        self.models = models

    def __repr__(self) -> str:
        return f"CleanRows({len(self.serials)} rows)"


def read_clean(text: str, *, max_per_user: int) -> CleanRows | None:
    """The rows of ``text`` (comma-separated, decoded) if every check passes in bulk; None
    when anything needs the row-by-row reader (which then says what, and where)."""
    if '"' in text:  # quoted values: a record may span lines, line numbers need the reader
        return None
    # Without quotes a record is a line and its values are split by commas, as the csv module
    # reads them, once the line breaks are only the ones csv knows (splitlines knows more).
    if _has_other_line_break(text):
        return None
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].split(",") not in _HEADERS:
        return None
    rows = lines[1:]
    # Five commas on every line: no empty line, no Excel trailing column, no short row. Then
    # the values of all rows, split at once, are the columns taken every sixth.
    if {line.count(",") for line in rows} != {5}:
        return None
    cells = ",".join(rows).split(",")
    upns, serials, secret_texts, periods, manufacturers, models = (
        cells[column::6] for column in range(6)
    )
    if not _plain(upns, serials, manufacturers, models):
        return None
    if not set(periods) <= {"30", "60"}:
        return None
    if not _base32_secrets(secret_texts):
        return None
    lowered = [upn.lower() for upn in upns]
    if not _unique(serials, secret_texts, lowered, max_per_user):
        return None
    if not _serial_lengths_agree(serials, manufacturers, models):
        return None
    secrets = decode_base32_groups(secret_texts)
    return CleanRows(
        lines[0].split(",")[3],  # the header's spelling of the interval column
        lowered,
        serials,
        secrets,
        [int(period) for period in periods],
        manufacturers,
        models,
    )


def _has_other_line_break(text: str) -> bool:
    if text.isascii():  # nearly every file: five substring scans in C instead of a regex
        return any(brk in text for brk in _ASCII_OTHER_LINE_BREAKS)
    return _OTHER_LINE_BREAKS.search(text) is not None


def _plain(
    upns: list[str], serials: list[str], manufacturers: list[str], models: list[str]
) -> bool:
    """UPNs Entra takes, serials that are plain, and no cell that is empty, has blanks around
    it or starts like a spreadsheet formula (every first character an ASCII letter or digit,
    no last character a blank)."""
    # The UPN and serial patterns start with an ASCII letter or digit and hold no blank; a
    # vendor's file has a handful of manufacturers and models, looked at once each.
    for column in (set(manufacturers), set(models)):
        firsts = {cell[:1] for cell in column}
        if not all(first.isascii() and first.isalnum() for first in firsts):
            return False
        if any(last.isspace() for last in {cell[-1:] for cell in column}):
            return False
    if max(map(len, upns)) > MAX_PLAIN_UPN_CHARS:
        return False
    plain_upn, plain_serial = PLAIN_UPN.fullmatch, _PLAIN_SERIAL.fullmatch
    return all(map(plain_upn, upns)) and all(map(plain_serial, serials))


def _base32_secrets(texts: list[str]) -> bool:
    """Upper-case base32 of whole 5-byte groups, 16 to 128 characters (entra_rules' usual
    case, which decodes without padding), none made only of hex digits (a warning)."""
    if not all(length % 8 == 0 and 16 <= length <= 128 for length in set(map(len, texts))):
        return False
    joined = "\n".join(texts)
    # Deleting the alphabet from the bytes leaves nothing but the line breaks: one C pass.
    rest = joined.encode("utf-8").translate(None, _BASE32_ALPHABET)
    return rest == b"\n" * (len(texts) - 1) and _HEX_ONLY.search(joined) is None


def _unique(serials: list[str], secrets: list[str], upns: list[str], max_per_user: int) -> bool:
    """No serial (case-blind) or secret twice, and no user over the limit."""
    count = len(serials)
    if len({serial.upper() for serial in serials}) != count or len(set(secrets)) != count:
        return False
    if len(set(upns)) == count:
        return True
    return max(Counter(upns).values()) <= max_per_user


def _serial_lengths_agree(
    serials: Sequence[str], manufacturers: Sequence[str], models: Sequence[str]
) -> bool:
    """All-digit serials of one manufacturer and model have one length (else one may have lost
    its leading zeros: the row-by-row reader says which)."""
    lengths = {
        (manufacturer, model, len(serial))
        for serial, manufacturer, model in zip(serials, manufacturers, models, strict=True)
        if serial.isdigit()
    }
    groups = {(m.lower(), d.lower(), n) for m, d, n in lengths}
    return len({(m, d) for m, d, _ in groups}) == len(groups)
