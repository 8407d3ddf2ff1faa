"""A corrected copy of an Entra OATH CSV, for ``oathdesk entra-csv lint --fix``. Pure.

Only what is mechanical is repaired: the encoding (to UTF-8 without a byte-order mark), the
separator (to commas), line ends (CRLF), empty lines, blanks around values, Excel's empty trailing
columns, rows saved in one column, a missing header row, spaces/dashes/padding in secrets, and
hex secrets (converted to base32). What needs a person (a bad UPN, a serial that lost its leading
zeros, a duplicate) is left as it is for the linter to report.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from oathdesk.errors import InvalidInput, SeedError
from oathdesk.formats.cells import safe_row
from oathdesk.formats.entra_header import COLUMNS, HeaderKind, read_header
from oathdesk.formats.entra_rules import compact_secret, looks_like_hex
from oathdesk.formats.text import DELIMITER_NAMES, Row, decode, read_rows, sniff_delimiter
from oathdesk.seed import hex_to_base32, normalize_base32

_SECRET_INDEX = COLUMNS.index("secret key")


@dataclass(frozen=True)
class FixedCsv:
    text: str = field(repr=False)  # holds secrets
    changes: list[str]  # what was changed, for the operator; never a secret
    hex_converted: int


@dataclass
class _Tally:
    hex_converted: int = 0
    secrets_cleaned: int = 0
    empty_lines: int = 0
    padded_rows: int = 0
    trailing_rows: int = 0
    split_rows: int = 0


def fix_entra_csv(data: bytes) -> FixedCsv:
    """The corrected copy; InvalidInput when the header is not an Entra header at all."""
    text, encoding, _ = decode(data)
    delimiter = sniff_delimiter(text)
    rows, _ = read_rows(text, delimiter)
    header = read_header(rows)
    if header.kind in (HeaderKind.UNKNOWN, HeaderKind.NONE):
        raise InvalidInput(
            "cannot correct this file: its first row is not the Entra OATH CSV header; "
            f"make it {','.join(COLUMNS)} and lint again"
        )
    tally = _Tally()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header_row = [*COLUMNS[:3], header.spelling, *COLUMNS[4:]]
    if len(header.names) > len(COLUMNS):
        header_row.append("Enabled")
    writer.writerow(header_row)
    tally.empty_lines = sum(1 for row in rows[: header.first_data_index] if row.is_empty)
    for row in rows[header.first_data_index :]:
        cells = _fixed_cells(row, delimiter, len(header.names), tally)
        if cells is not None:
            writer.writerow(safe_row(cells))
    changes = _changes(encoding, delimiter, header.kind, tally)
    return FixedCsv(out.getvalue(), changes, tally.hex_converted)


def _fixed_cells(row: Row, delimiter: str, width: int, tally: _Tally) -> list[str] | None:
    if row.is_empty:
        tally.empty_lines += 1
        return None
    cells = list(row.cells)
    tally.padded_rows += bool(row.padded_columns)
    tally.trailing_rows += bool(row.trailing_empty)
    if len(cells) == 1 and width > 1:
        split = _split_one_column(cells[0], delimiter, width)
        if split is not None:
            cells = split
            tally.split_rows += 1
    if len(cells) > _SECRET_INDEX:
        cells[_SECRET_INDEX] = _fixed_secret(cells[_SECRET_INDEX], tally)
    return cells


def _split_one_column(cell: str, delimiter: str, width: int) -> list[str] | None:
    """The values of a row that Excel saved in one column, if they split cleanly."""
    if "\n" in cell or "\r" in cell:
        return None  # an unclosed quote, not a row in one column: left for the linter
    for candidate in (delimiter, *DELIMITER_NAMES):
        if candidate not in cell:
            continue
        parsed = next(csv.reader([cell], delimiter=candidate), [])
        cells = [value.strip() for value in parsed]
        if len(COLUMNS) <= len(cells) <= width:
            return cells
    return None


def _fixed_secret(secret: str, tally: _Tally) -> str:
    compact = compact_secret(secret)
    if looks_like_hex(compact) and len(compact) % 2 == 0:
        tally.hex_converted += 1
        return hex_to_base32(compact)
    if compact != secret:
        try:
            cleaned = normalize_base32(compact)
        except SeedError:  # not base32 either: left for the linter to report
            return secret
        tally.secrets_cleaned += 1
        return cleaned
    return secret


def _changes(encoding: str, delimiter: str, kind: HeaderKind, tally: _Tally) -> list[str]:
    changes = []
    if encoding == "utf-8-sig":
        changes.append("removed the byte-order mark")
    elif encoding != "utf-8":
        changes.append(f"re-encoded from {encoding} to UTF-8")
    if delimiter != ",":
        changes.append(f"{DELIMITER_NAMES[delimiter]}s replaced by commas")
    if kind is HeaderKind.MISSING:
        changes.append("inserted the header row")
    if kind is HeaderKind.DAMAGED:
        changes.append("rewrote the header row")
    counted = [
        (tally.hex_converted, "converted {} hex secret(s) to base32"),
        (tally.secrets_cleaned, "removed spaces, dashes or padding from {} secret(s)"),
        (tally.empty_lines, "removed {} empty line(s)"),
        (tally.padded_rows, "removed blanks around values on {} row(s)"),
        (tally.trailing_rows, "removed empty trailing columns on {} row(s)"),
        (tally.split_rows, "split {} row(s) saved in one column"),
    ]
    changes += [what.format(count) for count, what in counted if count]
    return changes
