"""Which records an Entra CSV can hold, and why not the others. Pure.

The portal's CSV has no hash or digits column: Entra reads every row as SHA-1 with 6 digits. A
token with SHA-256, 8 digits or a 45-second interval would be uploaded "successfully" and then
never sign anyone in, so the export leaves it out and says why (Graph takes SHA-256:
``oathdesk export graph-json``).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Sequence

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
    for column in (serials, manufacturers, models):
        if not all(_plain_start(first) for first in {value[:1] for value in column}):
            return False
    plain_upn = PLAIN_UPN.fullmatch
    return all(
        upn is not None and len(upn) <= MAX_PLAIN_UPN_CHARS and plain_upn(upn) for upn in upns
    )


def entra_csv_header(header_spelling: str) -> str:
    """The first line of an Entra CSV (CRLF), with either spelling of the interval column."""
    return ",".join([*COLUMNS[:3], header_spelling, *COLUMNS[4:]]) + "\r\n"


def entra_csv_rows(
    rows: Sequence[tuple[str, str, bytes, int, str, str]], *, first_position: int = 1
) -> str:
    """(upn, serial, secret, period, manufacturer, model) rows as Entra CSV lines, the way
    ``entra_csv.write_entra_csv`` writes them (a chunk of a streamed export); a value that
    starts like a formula is refused (ValueError naming the row's position, never the value)."""
    texts = _base32_many([secret for _, _, secret, _, _, _ in rows])
    lines = [
        [upn, serial, text, str(period), manufacturer, model]
        for (upn, serial, _, period, manufacturer, model), text in zip(rows, texts, strict=True)
    ]
    # The base32 text and the interval start with a letter or digit; the other values are
    # looked at one by one only when some first character is not an ASCII letter or digit.
    firsts = {value[:1] for line in lines for value in (line[0], line[1], line[4], line[5])}
    if not all(_plain_start(first) for first in firsts):
        for position, line in enumerate(lines, start=first_position):
            if any(starts_like_formula(value) for value in line):
                raise ValueError(
                    f"token at position {position} has a value that starts like a spreadsheet "
                    "formula; it cannot be written unchanged"
                )
        lines = [[safe_cell(value) for value in line] for line in lines]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue()


def _base32_many(secrets: list[bytes]) -> list[str]:
    """``encode_base32`` of each secret; those of whole 5-byte groups (the usual 20 bytes) in
    one call of the stdlib's encoder, which is a Python loop per call in this version."""
    whole = [secret for secret in secrets if len(secret) % 5 == 0]
    joined = base64.b32encode(b"".join(whole)).decode("ascii")
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


def _plain_start(value: str) -> bool:
    """An ASCII letter or digit first: such a value never starts like a formula."""
    return value[:1].isascii() and value[:1].isalnum()
