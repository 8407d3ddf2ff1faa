"""Which records an Entra CSV can hold, and why not the others. Pure.

The portal's CSV has no hash or digits column: Entra reads every row as SHA-1 with 6 digits. A
token with SHA-256, 8 digits or a 45-second interval would be uploaded "successfully" and then
never sign anyone in, so the export leaves it out and says why (Graph takes SHA-256:
``oathdesk export graph-json``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from typing import cast

from oathdesk.formats.cells import safe_cell, starts_like_formula
from oathdesk.formats.entra_header import COLUMNS
from oathdesk.formats.entra_rules import MAX_SECRET_CHARS, check_upn
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import SeedRecord
from oathdesk.seed import encode_base32
from oathdesk.upn import MAX_PLAIN_UPN_CHARS, PLAIN_UPN

INTERVALS = (30, 60)
# The longest secret whose base32 fits MAX_SECRET_CHARS (5 bytes are 8 characters).
MAX_SECRET_BYTES = MAX_SECRET_CHARS * 5 // 8


def plainly_fit(
    upns: Sequence[str | None],
    serials: Sequence[str],
    manufacturers: Sequence[str],
    models: Sequence[str],
    kinds: set[tuple[str, int, int]],
    max_secret_bytes: int,
) -> bool:
    """Whether every one of these tokens (columns; ``kinds`` the set of their algorithm, digits
    and interval) can be a row of an Entra CSV, by conditions narrower than
    ``entra_csv_problems`` (which finds nothing wrong with such tokens): an export of 100,000
    tokens asks this of them all at once, and the full checks only when it says no."""
    if not kinds <= {("sha1", 6, period) for period in INTERVALS}:
        return False
    if max_secret_bytes > MAX_SECRET_BYTES:
        return False
    if not all(_plain_start(first) for first in _firsts((serials,), (manufacturers, models))):
        return False
    if None in upns:
        return False
    present = cast("Sequence[str]", upns)  # no None (above)
    if max(map(len, present), default=0) > MAX_PLAIN_UPN_CHARS:
        return False
    # The regular expression mapped over the column: no Python call of ours per UPN.
    return all(map(PLAIN_UPN.fullmatch, present))


def entra_csv_header(header_spelling: str) -> str:
    """The first line of an Entra CSV (CRLF), with either spelling of the interval column."""
    return ",".join([*COLUMNS[:3], header_spelling, *COLUMNS[4:]]) + "\r\n"


def entra_csv_rows(
    upns: Sequence[str | None],
    serials: Sequence[str],
    secrets: Sequence[bytes],
    periods: Sequence[int],
    manufacturers: Sequence[str],
    models: Sequence[str],
    *,
    first_position: int = 1,
) -> str:
    """Tokens given by columns as Entra CSV lines, the way ``entra_csv.write_entra_csv`` writes
    them (a chunk of a streamed export); a value that starts like a formula is refused
    (ValueError naming the token's position, never the value)."""
    texts = base32_many(secrets)
    named = [upn or "" for upn in upns] if None in upns else cast("Sequence[str]", upns)
    periods_text = list(map(str, periods))
    columns = (named, serials, texts, periods_text, manufacturers, models)
    # Joined whole, then checked whole: when no value holds a comma, quote or line break and
    # each starts with an ASCII letter or digit, this is what the csv module writes, without a
    # list per row and the module's pass over every value. (The base32 text starts with a
    # letter or digit, or is empty, which the csv module writes as nothing too.)
    text = "\r\n".join(map(",".join, zip(*columns, strict=True))) + "\r\n" if texts else ""
    count = len(texts)
    firsts = _firsts((named, serials), (manufacturers, models))
    if (
        text.count(",") == 5 * count
        and text.count("\n") == count
        and text.count("\r") == count
        and '"' not in text
        and all(_plain_start(first) for first in firsts)
        and all(_plain_start(first) for first in {value[:1] for value in periods_text})
    ):
        return text
    lines = [list(line) for line in zip(*columns, strict=True)]
    for position, line in enumerate(lines, start=first_position):
        if any(starts_like_formula(value) for value in line):
            raise ValueError(
                f"token at position {position} has a value that starts like a spreadsheet "
                "formula; it cannot be written unchanged"
            )
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [[safe_cell(value) for value in line] for line in lines]
    )
    return buffer.getvalue()


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _table(bits: Callable[[int], int]) -> bytes:
    return bytes(bits(byte) for byte in range(256))


# Base32 takes 5 bytes to 8 characters. With the bytes of whole 5-byte groups laid out as five
# columns (every group's first byte, every second byte, ...), each character of every group
# comes out of one or two columns at once: bytes.translate picks a byte's bits, a big integer's
# OR merges two columns' bits, and the alphabet is one more translate.
_LETTER = _table(lambda value: _ALPHABET[value & 31])
_ONE = (  # (column, bits of its byte) for the characters made from one column
    (0, 0, _table(lambda b: _ALPHABET[b >> 3])),
    (2, 1, _table(lambda b: _ALPHABET[(b >> 1) & 31])),
    (5, 3, _table(lambda b: _ALPHABET[(b >> 2) & 31])),
    (7, 4, _table(lambda b: _ALPHABET[b & 31])),
)
_TWO = (  # (character, high column, its bits, low column, its bits) for the others
    (1, 0, _table(lambda b: (b & 7) << 2), 1, _table(lambda b: b >> 6)),
    (3, 1, _table(lambda b: (b & 1) << 4), 2, _table(lambda b: b >> 4)),
    (4, 2, _table(lambda b: (b & 15) << 1), 3, _table(lambda b: b >> 7)),
    (6, 3, _table(lambda b: (b & 3) << 3), 4, _table(lambda b: b >> 5)),
)


def _base32_groups(data: bytes) -> str:
    """``base64.b32encode`` of ``data`` (a whole number of 5-byte groups), column-wise."""
    groups = len(data) // 5
    columns = [data[offset::5] for offset in range(5)]
    out = bytearray(groups * 8)
    for character, column, table in _ONE:
        out[character::8] = columns[column].translate(table)
    for character, high, high_bits, low, low_bits in _TWO:
        merged = int.from_bytes(columns[high].translate(high_bits)) | int.from_bytes(
            columns[low].translate(low_bits)
        )
        out[character::8] = merged.to_bytes(groups).translate(_LETTER)
    return out.decode("ascii")


def base32_many(secrets: Sequence[bytes]) -> list[str]:
    """``encode_base32`` of each secret; those of whole 5-byte groups (the usual 20 bytes)
    encoded together (``_base32_groups``): the stdlib's encoder is a Python loop per 5 bytes
    in this version."""
    lengths = set(map(len, secrets))
    if len(lengths) == 1 and (length := lengths.pop()) % 5 == 0 and length:
        # All of one length (an export's usual case): cut at fixed steps.
        joined = _base32_groups(b"".join(secrets))
        size = length * 8 // 5
        return [joined[offset : offset + size] for offset in range(0, len(joined), size)]
    whole = [secret for secret in secrets if len(secret) % 5 == 0]
    joined = _base32_groups(b"".join(whole))
    texts = []
    offset = 0
    for secret in secrets:
        if len(secret) % 5:
            texts.append(encode_base32(secret))
            continue
        size = len(secret) * 8 // 5
        texts.append(joined[offset : offset + size])
        offset += size
    return texts


def entra_csv_problems(records: Iterable[SeedRecord]) -> list[Problem]:
    """Why some records cannot be rows of an Entra CSV (one problem per reason, naming the
    token by its serial; never the secret)."""
    found = []
    for index, record in enumerate(records, start=1):
        where = f"token {record.serial or index}"

        def refuse(message: str, column: str, record: SeedRecord = record) -> None:
            found.append(
                Problem(
                    record.line,
                    column,
                    message,
                    fix="leave this token out of the Entra CSV",
                    code=Code.NOT_FOR_ENTRA_CSV,
                )
            )

        if record.algorithm != "sha1":
            refuse(
                f"{where} uses {record.algorithm.upper()}; the Entra CSV means SHA-1 "
                "(use `oathdesk export graph-json` for SHA-256)",
                "",
            )
        if record.digits != 6:
            refuse(f"{where} shows {record.digits} digits; Entra needs 6", "")
        if record.period not in INTERVALS:
            refuse(f"{where} has a {record.period}-second interval; Entra takes 30 or 60", "")
        for problem in check_upn(record.line, "upn", record.upn or ""):
            refuse(f"{where}: {problem.message}", "upn")
        for column, value in (
            ("serial number", record.serial or ""),
            ("manufacturer", record.manufacturer or ""),
            ("model", record.model or ""),
        ):
            if not value.strip():
                refuse(f"{where} has no {column}", column)
            elif starts_like_formula(value):
                refuse(f"{where}: the {column} starts like a spreadsheet formula", column)
        if len(encode_base32(record.secret)) > MAX_SECRET_CHARS:
            refuse(
                f"{where}: its secret is over {MAX_SECRET_CHARS} base32 characters, "
                "which Entra refuses",
                "secret key",
            )
    return found


def _firsts(distinct: Iterable[Sequence[str]], repeating: Iterable[Sequence[str]]) -> set[str]:
    """The first characters of the values of these columns; those of the ``repeating`` ones
    (makers, models: a few values many times) taken from the set of their values, which is
    found at C speed."""
    firsts = {value[:1] for column in distinct for value in column}
    firsts.update(value[:1] for column in repeating for value in set(column))
    return firsts


def _plain_start(value: str) -> bool:
    """An ASCII letter or digit first: such a value never starts like a formula."""
    return value[:1].isascii() and value[:1].isalnum()
