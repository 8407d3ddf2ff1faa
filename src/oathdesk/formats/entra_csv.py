"""The Entra "OATH tokens" CSV: read it as Excel really saves it, lint it, and write it. Pure.

``upn,serial number,secret key,time interval,manufacturer,model`` (``timeinterval`` in older
docs and Token2's tools; an old portal template had a 7th ``Enabled`` column). Secrets are
base32 only, at most 128 characters; intervals are 30 or 60; CSV tokens are SHA-1, 6 digits.

Three kinds of findings:

- ``problems``: the row (or file) is wrong; neither oathdesk nor the portal can use it.
- ``form_problems``: how the file was saved (separator, UTF-16, empty lines, blanks, spaces in
  secrets); oathdesk reads past them, the portal may not. ``lint --fix`` repairs them.
- ``warnings``: valid but worth a look (a byte-order mark, the old Enabled column, a secret
  that is probably hex).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from oathdesk.formats.cells import safe_cell, starts_like_formula
from oathdesk.formats.checks import Columns, RowFacts, cross_row_problems, formula_problems
from oathdesk.formats.entra_bulk import CleanRows, read_clean
from oathdesk.formats.entra_header import COLUMNS, Header, HeaderKind, read_header
from oathdesk.formats.entra_rules import (
    ENABLED_VALUES,
    check_enabled,
    check_filled,
    check_interval,
    check_secret,
    check_stock_upn,
    check_upn,
)
from oathdesk.formats.problems import Code, Problem, sort_problems
from oathdesk.formats.text import DELIMITER_NAMES, Row, decode, read_rows, sniff_delimiter
from oathdesk.seed import encode_base32

__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_PER_USER",
    "HEADER_SPELLINGS",
    "EntraCsv",
    "EntraToken",
    "looks_like_entra_csv",
    "parse_entra_csv",
    "read_clean_entra_csv",
    "write_entra_csv",
]

DEFAULT_MAX_PER_USER = 5
HEADER_SPELLINGS = ("time interval", "timeinterval")
_HEAD_CHARS = 16 * 1024  # the header and a few rows, for telling the format
ENTRA_COLUMNS = Columns(serial="serial number", seed="secret key", user="upn")


@dataclass(frozen=True)
class EntraToken:
    """One valid row. The secret is the decoded seed and never appears in repr."""

    line: int
    upn: str  # lower case
    serial: str
    secret: bytes = field(repr=False)
    period: int
    manufacturer: str
    model: str
    enabled: bool = True


@dataclass(frozen=True)
class EntraCsv:
    tokens: list[EntraToken]  # the rows without problems
    problems: list[Problem]
    encoding: str  # utf-8, utf-8-sig, utf-16 or cp1252
    delimiter: str
    header_spelling: str  # "time interval" or "timeinterval"
    form_problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing stops an import (form problems and warnings do not)."""
        return not self.problems

    @property
    def ready_to_upload(self) -> bool:
        """The portal should accept the file as it is."""
        return not self.problems and not self.form_problems

    @property
    def lint_problems(self) -> list[Problem]:
        return sort_problems([*self.problems, *self.form_problems])


def looks_like_entra_csv(text: str) -> bool:
    """The first row is the Entra header (perhaps damaged), or a token where it should be."""
    head = text[:_HEAD_CHARS]
    rows, _ = read_rows(head, sniff_delimiter(head))
    return read_header(rows).kind in (HeaderKind.OK, HeaderKind.DAMAGED, HeaderKind.MISSING)


def read_clean_entra_csv(
    data: bytes, *, max_per_user: int = DEFAULT_MAX_PER_USER
) -> tuple[CleanRows, list[Problem]] | None:
    """The columns of a file that passes every check in bulk (``entra_bulk``), and its
    warnings: what ``parse_entra_csv`` gives it, without a token object per row (an import
    of 100,000 goes straight to its records). None: the file needs ``parse_entra_csv``."""
    text, encoding, problems = decode(data)
    clean = _read_clean(text, encoding, problems, max_per_user)
    return None if clean is None else (clean, sort_problems(_file_warnings(encoding)))


def _read_clean(
    text: str, encoding: str, problems: list[Problem], max_per_user: int
) -> CleanRows | None:
    if problems or encoding == "utf-16" or sniff_delimiter(text) != ",":
        return None
    return read_clean(text, max_per_user=max_per_user)


def parse_entra_csv(
    data: bytes, *, max_per_user: int = DEFAULT_MAX_PER_USER, bulk: bool = True
) -> EntraCsv:
    """Every valid token, and every problem with its line and column; never raises.
    ``bulk=False``: skip the bulk reader (the caller has tried ``read_clean_entra_csv``)."""
    text, encoding, problems = decode(data)
    clean = _read_clean(text, encoding, problems, max_per_user) if bulk else None
    if clean is not None:
        return _clean_file(clean, encoding, ",")
    delimiter = sniff_delimiter(text)
    rows, syntax_problems = read_rows(text, delimiter)
    problems += syntax_problems
    form = _file_form_problems(encoding, delimiter)
    warnings = _file_warnings(encoding)
    header = read_header(rows)
    problems += header.problems
    warnings += header.warnings
    if header.kind in (HeaderKind.NONE, HeaderKind.UNKNOWN):
        return EntraCsv([], sort_problems(problems), encoding, delimiter, header.spelling)
    reader = _RowReader(header, delimiter)
    for row in rows[header.first_data_index :]:
        reader.read(row)
    problems += reader.problems or _no_tokens(reader.rows_read)
    form += reader.form_problems
    warnings += reader.warnings
    problems += cross_row_problems(reader.facts, ENTRA_COLUMNS, max_per_user=max_per_user)
    form += [p for row in rows[: header.first_data_index] for p in _empty_line(row)]
    bad_lines = {p.line for p in problems}
    return EntraCsv(
        [t for t in reader.tokens if t.line not in bad_lines],
        sort_problems(problems),
        encoding,
        delimiter,
        header.spelling,
        sort_problems(form),
        sort_problems(warnings),
    )


def _clean_file(clean: CleanRows, encoding: str, delimiter: str) -> EntraCsv:
    """A file that passed every check in bulk (``entra_bulk``): the same result the row-by-row
    reader gives it, in a tenth of the time."""
    tokens = list(
        map(
            EntraToken,
            range(2, len(clean.serials) + 2),
            clean.upns,
            clean.serials,
            clean.secrets,
            clean.periods,
            clean.manufacturers,
            clean.models,
        )
    )
    return EntraCsv(
        tokens, [], encoding, delimiter, clean.spelling, [], sort_problems(_file_warnings(encoding))
    )


def _file_form_problems(encoding: str, delimiter: str) -> list[Problem]:
    found = []
    if delimiter != ",":
        found.append(
            Problem(
                0,
                "",
                f"the values are separated by {DELIMITER_NAMES[delimiter]}s; the portal expects "
                "commas",
                fix="save as 'CSV UTF-8 (comma delimited)', or "
                "`oathdesk entra-csv lint FILE --fix NEW.csv` writes a corrected copy",
                code=Code.SEPARATOR,
            )
        )
    if encoding == "utf-16":
        found.append(
            Problem(
                0,
                "",
                "the file is UTF-16 (Excel's 'Unicode text'); the portal expects UTF-8",
                fix="save as 'CSV UTF-8 (comma delimited)', or "
                "`oathdesk entra-csv lint FILE --fix NEW.csv` writes a corrected copy",
                code=Code.ENCODING,
            )
        )
    return found


def _file_warnings(encoding: str) -> list[Problem]:
    if encoding != "utf-8-sig":
        return []
    return [
        Problem(
            0,
            "",
            "the file starts with a byte-order mark (Excel's 'CSV UTF-8'); the portal is believed "
            "to accept it",
            fix="if the portal says the header is wrong, `lint --fix` writes a copy without it",
            code=Code.BYTE_ORDER_MARK,
        )
    ]


def _no_tokens(rows_read: int) -> list[Problem]:
    if rows_read:
        return []
    return [
        Problem(
            0,
            "",
            "the file has the header row but no tokens",
            fix="add one row per token under the header",
            code=Code.EMPTY_FILE,
        )
    ]


def _empty_line(row: Row) -> list[Problem]:
    if not row.is_empty:
        return []
    return [
        Problem(
            row.line,
            "",
            "the line is empty (or only separators); the portal may read it as a token without "
            "a user",
            fix="delete the line",
            code=Code.EMPTY_LINE,
        )
    ]


class _RowReader:
    """Checks the data rows one by one and gathers what the checks across rows need."""

    def __init__(self, header: Header, delimiter: str) -> None:
        self.names = header.names
        self.delimiter = delimiter
        self.tokens: list[EntraToken] = []
        self.facts: list[RowFacts] = []
        self.problems: list[Problem] = []
        self.form_problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.rows_read = 0

    def read(self, row: Row) -> None:
        if row.is_empty:
            self.form_problems += _empty_line(row)
            return
        self.rows_read += 1
        # Empty cells count up to the header's width (an empty model is an empty model); the
        # ones beyond it are Excel's.
        full = row.cells + ("",) * row.trailing_empty
        cells = full[: len(self.names)] if len(row.cells) <= len(self.names) else row.cells
        self.form_problems += self._shape_form_problems(row, len(full))
        shape = self._shape_problem(row, cells, len(full))
        if shape is not None:
            self.problems.append(shape)
            return
        values = dict(zip(self.names, cells, strict=False))
        line = row.line
        # A cell a spreadsheet would run as a formula is that cell's one problem: what else is
        # wrong with it does not matter, and it must never be stored or uploaded.
        formulas = {
            name: formula_problems(line, name, name, value) for name, value in values.items()
        }
        secret = check_secret(line, "secret key", values["secret key"])
        # An empty UPN is a token in stock (a vendor's file for self-service): it does not stop
        # the row, but the portal refuses it, so it is a form problem (see check_stock_upn).
        stock = not values["upn"]
        self.form_problems += check_stock_upn(line, "upn", values["upn"])
        found = [
            *([] if stock else check_upn(line, "upn", values["upn"])),
            *check_filled(line, "serial number", values["serial number"], "serial number"),
            *secret.problems,
            *check_interval(line, "time interval", values["time interval"]),
            *check_filled(line, "manufacturer", values["manufacturer"], "manufacturer"),
            *check_filled(line, "model", values["model"], "model"),
            *check_enabled(line, "enabled", values.get("enabled", "")),
        ]
        found = [p for p in found if not formulas.get(p.column)]
        found += [p for problems in formulas.values() for p in problems]
        self.problems += found
        if not formulas["secret key"]:
            self.form_problems += secret.form_problems
            self.warnings += secret.warnings
        self.facts.append(
            RowFacts(
                line,
                values["serial number"] or None,
                secret.fingerprint,
                values["upn"].lower() or None,
                (values["manufacturer"].lower(), values["model"].lower()),
            )
        )
        if found or secret.secret is None:
            return
        self.tokens.append(
            EntraToken(
                line,
                values["upn"].lower(),
                values["serial number"],
                secret.secret,
                int(values["time interval"]),
                values["manufacturer"],
                values["model"],
                ENABLED_VALUES.get(values.get("enabled", "").lower(), True),
            )
        )

    def _shape_problem(self, row: Row, cells: tuple[str, ...], raw_count: int) -> Problem | None:
        if row.multiline_columns:
            return Problem(
                row.line,
                "",
                'a value spans several lines: a quote (") is probably never closed',
                fix='close the quote, or remove the stray " character',
                code=Code.MULTILINE_VALUE,
            )
        if raw_count == 1 and len(self.names) > 1:
            other = next((d for d in DELIMITER_NAMES if d in cells[0] and d != self.delimiter), "")
            how = (
                f"its values are separated by {DELIMITER_NAMES[other]}s"
                if other
                else "it is in quotes, or saved with another separator"
            )
            return Problem(
                row.line,
                "",
                f"the whole row is in one column ({how}); the portal answers 'user not found'",
                fix="remove the quotes around the row and separate the values with commas, or "
                "`oathdesk entra-csv lint FILE --fix NEW.csv` writes a corrected copy",
                code=Code.ONE_COLUMN_ROW,
            )
        if not len(COLUMNS) <= len(cells) <= len(self.names):
            return Problem(
                row.line,
                "",
                f"the row has {len(cells)} columns; the header has {len(self.names)}",
                fix="a value is missing, or a value holds a comma: put such values in quotes",
                code=Code.COLUMN_COUNT,
            )
        return None

    def _shape_form_problems(self, row: Row, raw_count: int) -> list[Problem]:
        found = []
        if row.padded_columns:
            names = ", ".join(
                f"'{self.names[i]}'" if i < len(self.names) else f"column {i + 1}"
                for i in row.padded_columns
            )
            found.append(
                Problem(
                    row.line,
                    "",
                    f"blanks around the value of {names}; the portal may keep them",
                    fix="remove them, or `lint --fix` writes a corrected copy",
                    code=Code.BLANKS,
                )
            )
        if raw_count > len(self.names) and len(row.cells) <= len(self.names):
            found.append(
                Problem(
                    row.line,
                    "",
                    f"{raw_count - len(self.names)} empty column(s) after the last one (Excel "
                    f"adds them); the portal may count {raw_count} columns",
                    fix="delete the empty columns, or `lint --fix` writes a corrected copy",
                    code=Code.TRAILING_COLUMNS,
                )
            )
        return found


def write_entra_csv(
    tokens: Iterable[EntraToken],
    *,
    header_spelling: str = "time interval",
    enabled_column: bool = False,
) -> str:
    """The CSV to upload: UTF-8 text (encode it without a byte-order mark), commas, CRLF.

    A value a spreadsheet would run as a formula is refused (ValueError naming the token's
    position, never the value): escaping it would upload a value other than the one stored, and
    legitimate values never start like that (``entra_csv_problems`` leaves such tokens out
    first). ``safe_cell`` stays as a second guard.
    """
    if header_spelling not in HEADER_SPELLINGS:
        raise ValueError(f"header spelling must be one of {HEADER_SPELLINGS}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = [*COLUMNS[:3], header_spelling, *COLUMNS[4:]]
    writer.writerow([*header, "Enabled"] if enabled_column else header)
    for position, token in enumerate(tokens, start=1):
        row = [
            token.upn,
            token.serial,
            encode_base32(token.secret),
            str(token.period),
            token.manufacturer,
            token.model,
        ]
        if enabled_column:
            row.append("true" if token.enabled else "false")
        if any(starts_like_formula(value) for value in row):
            raise ValueError(
                f"token at position {position} has a value that starts like a spreadsheet "
                "formula; it cannot be written unchanged"
            )
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue()
