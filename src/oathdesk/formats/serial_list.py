"""A vendor's plain ``serial,secret`` list, with or without a header row. Pure.

Two columns: the token's serial number and its seed, read by the spreadsheet's rule for a secret
column (``seed_cell.read_secret_cell``: base32, or hex when the header says so or the value is a
long all-digit one). The tokens have no user: they are stock. Without a header the serial comes
first; with one (``Serial,Secret``, ``SN,Seed (hex)``, ...) the columns may be in either order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from oathdesk.formats.checks import Columns, RowFacts, cross_row_problems, formula_problems
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.seed_cell import read_secret_cell
from oathdesk.formats.spreadsheet import HEX_SECRET_NAMES, SECRET_NAMES, SERIAL_NAMES, header_key
from oathdesk.formats.text import Row, decode, read_rows, sniff_delimiter

FORMAT = "serial-list"
# What a serial number looks like when there is no header to say so: letters, digits and a few
# separators, never a blank or an @ (a UPN), at most 64 characters.
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
_SAMPLE_ROWS = 10
_HEAD_CHARS = 16 * 1024


@dataclass(frozen=True)
class _Layout:
    serial: int
    secret: int
    serial_name: str
    secret_name: str
    hex_column: bool = False
    header_line: int = 0  # 0: no header


_NO_HEADER = _Layout(0, 1, "serial", "secret")


def _header(cells: Sequence[str], line: int) -> _Layout | None:
    if len(cells) != 2:
        return None
    keys = [header_key(cell) for cell in cells]
    for serial, secret in ((0, 1), (1, 0)):
        if keys[serial] in SERIAL_NAMES and keys[secret] in SECRET_NAMES:
            hex_column = keys[secret] in HEX_SECRET_NAMES
            return _Layout(serial, secret, cells[serial], cells[secret], hex_column, line)
    return None


def looks_like_serial_list(text: str) -> bool:
    """Every one of the first rows has two cells: a ``serial,secret`` header or a serial number,
    then a seed (most of them must read as one)."""
    head = text[:_HEAD_CHARS]
    rows, _ = read_rows(head, sniff_delimiter(head))
    sample = [row for row in rows if not row.is_empty][:_SAMPLE_ROWS]
    if not sample:
        return False
    layout = _header(sample[0].cells, sample[0].line)
    data = sample[1:] if layout is not None else sample
    if any(len(row.cells) != 2 for row in data) or not data:
        return False
    layout = layout or _NO_HEADER
    if layout.header_line == 0 and not all(_SERIAL.fullmatch(row.cells[0]) for row in data):
        return False
    readable = sum(
        not isinstance(
            read_secret_cell(row.cells[layout.secret], hex_column=layout.hex_column), str
        )
        for row in data
    )
    return readable * 2 > len(data)


def parse_serial_list(data: bytes) -> ParsedFile:
    """Records (without users) and every problem with its line and column; never raises."""
    text, _, warnings = decode(data)
    rows, problems = read_rows(text, sniff_delimiter(text))
    if problems:
        return ParsedFile(FORMAT, [], problems, warnings)
    table = [row for row in rows if not row.is_empty]
    layout = _header(table[0].cells, table[0].line) if table else None
    data_rows = table[1:] if layout is not None else table
    layout = layout or _NO_HEADER
    if not data_rows:
        return ParsedFile(FORMAT, [], [_empty(layout.header_line)], warnings)
    records: list[SeedRecord] = []
    facts: list[RowFacts] = []
    for row in data_rows:
        record, row_problems, fact = _read_row(row, layout)
        problems += row_problems
        facts.append(fact)
        if record is not None:
            records.append(record)
    columns = Columns(serial=layout.serial_name, seed=layout.secret_name, user="")
    problems += cross_row_problems(facts, columns)
    return ParsedFile.checked(FORMAT, records, problems, warnings, columns)


def _read_row(row: Row, layout: _Layout) -> tuple[SeedRecord | None, list[Problem], RowFacts]:
    line, cells = row.line, row.cells
    serial = cells[layout.serial] if layout.serial < len(cells) else ""
    secret_text = cells[layout.secret] if layout.secret < len(cells) else ""
    fact = RowFacts(line, serial or None, None, None)
    if len(cells) > 2:
        problem = Problem(
            line,
            "",
            f"the row has {len(cells)} values; a serial list has two (serial, secret)",
            fix="a value holds the separator (put it in quotes), or a value is extra",
            code=Code.COLUMN_COUNT,
        )
        return None, [problem], fact
    problems = formula_problems(line, layout.serial_name, "serial number", serial)
    if not serial:
        problems.append(
            Problem(
                line,
                layout.serial_name,
                "the serial number is empty",
                fix="fill in the serial number from the vendor's file or the back of the token",
                code=Code.SERIAL_EMPTY,
            )
        )
    secret_formula = formula_problems(line, layout.secret_name, "secret", secret_text)
    problems += secret_formula
    if secret_formula:
        return None, problems, fact
    if not secret_text:
        problems.append(
            Problem(
                line,
                layout.secret_name,
                "the secret is empty",
                fix="copy it from the vendor's seed file",
                code=Code.SECRET_EMPTY,
            )
        )
        return None, problems, fact
    seed = read_secret_cell(secret_text, hex_column=layout.hex_column)
    if isinstance(seed, str):
        problems.append(
            Problem(
                line,
                layout.secret_name,
                seed,
                fix="copy the secret again from the vendor's file",
                code=Code.SECRET_INVALID,
            )
        )
        return None, problems, fact
    fact = RowFacts(line, serial or None, seed.secret, None)
    if problems:
        return None, problems, fact
    record = SeedRecord(
        line,
        seed.secret,
        None,
        serial,
        algorithm=seed.algorithm or "sha1",
        digits=seed.digits or 6,
        period=seed.period or 30,
    )
    return record, [], fact


def _empty(header_line: int) -> Problem:
    return Problem(
        header_line,
        "",
        "the list has a header row but no tokens" if header_line else "the list is empty",
        fix="write one token per line: its serial number, a comma, its secret",
        code=Code.EMPTY_FILE,
    )
