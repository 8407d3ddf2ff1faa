"""The header row of an Entra OATH CSV: recognised, or said precisely what is wrong with it. Pure.

Header cells are never quoted in a problem: when the header is missing, the first row is a
token, and its secret must not end up on the screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.text import Row

COLUMNS = ("upn", "serial number", "secret key", "time interval", "manufacturer", "model")
ENABLED = "enabled"
_ALIASES = {"timeinterval": "time interval"}
_PORTAL_HEADER = ",".join(COLUMNS)
# With this many columns in place, a header is damaged rather than something else entirely.
_MIN_MATCHING = 3


class HeaderKind(Enum):
    OK = "ok"
    MISSING = "missing"  # the first row is a token: read it and the rest with the usual columns
    DAMAGED = "damaged"  # some names are wrong: reported, the rows are read with the usual ones
    UNKNOWN = "unknown"  # not an Entra CSV header at all: the rows cannot be read
    NONE = "none"  # nothing in the file


@dataclass(frozen=True)
class Header:
    kind: HeaderKind
    names: tuple[str, ...] = COLUMNS  # the column names the rows are read with
    spelling: str = "time interval"
    first_data_index: int = 0  # index in the rows of the first token row
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _normalised(cell: str) -> str:
    name = " ".join(cell.lower().split())
    return _ALIASES.get(name, name)


def read_header(rows: list[Row]) -> Header:
    index = next((i for i, row in enumerate(rows) if not row.is_empty), None)
    if index is None:
        return Header(
            HeaderKind.NONE,
            problems=[
                Problem(
                    0,
                    "",
                    "the file is empty",
                    fix=f"it needs the header row ({_PORTAL_HEADER}) and one row per token",
                    code=Code.EMPTY_FILE,
                )
            ],
        )
    row = rows[index]
    cells = row.cells
    names = tuple(_normalised(cell) for cell in cells)
    spelling = (
        "timeinterval"
        if len(cells) > 3 and cells[3].lower() == "timeinterval"
        else ("time interval")
    )
    with_enabled = len(names) > len(COLUMNS) and names[len(COLUMNS)] == ENABLED
    usual = COLUMNS + ((ENABLED,) if with_enabled else ())
    warnings = [_enabled_warning(row.line)] if with_enabled else []
    if names == usual:
        return Header(HeaderKind.OK, usual, spelling, index + 1, warnings=warnings)
    if _looks_like_token(cells):
        return Header(
            HeaderKind.MISSING,
            COLUMNS + ((ENABLED,) if len(cells) > len(COLUMNS) else ()),
            first_data_index=index,
            problems=[
                Problem(
                    row.line,
                    "",
                    "the first row is a token, not the header",
                    fix=f"insert the header row: {_PORTAL_HEADER}",
                    code=Code.HEADER_MISSING,
                )
            ],
        )
    if len(cells) == 1 and any(d in cells[0] for d in ",;\t"):
        return Header(
            HeaderKind.UNKNOWN,
            problems=[
                Problem(
                    row.line,
                    "",
                    "the header row is in one column (in quotes, or saved with another separator)",
                    fix=f"make the first row exactly: {_PORTAL_HEADER}",
                    code=Code.HEADER_IN_ONE_CELL,
                )
            ],
        )
    matching = sum(1 for have, want in zip(names, COLUMNS, strict=False) if have == want)
    if matching < _MIN_MATCHING:
        return Header(
            HeaderKind.UNKNOWN,
            problems=[
                Problem(
                    row.line,
                    "",
                    "the first row is not the Entra OATH CSV header",
                    fix=f"make it exactly: {_PORTAL_HEADER} (a helpdesk spreadsheet of users and "
                    "secrets goes to `oathdesk import` instead)",
                    code=Code.HEADER_UNKNOWN,
                )
            ],
        )
    return Header(
        HeaderKind.DAMAGED,
        usual,
        spelling,
        index + 1,
        _column_problems(row.line, names, len(usual)),
        warnings,
    )


def _column_problems(line: int, names: tuple[str, ...], usual_count: int) -> list[Problem]:
    found = []
    for position, want in enumerate(COLUMNS):
        have = names[position] if position < len(names) else ""
        if have != want:
            also = " (or 'timeinterval')" if want == "time interval" else ""
            found.append(
                Problem(
                    line,
                    want,
                    f"column {position + 1} of the header should be '{want}'{also}",
                    fix=f"make the header exactly: {_PORTAL_HEADER}",
                    code=Code.HEADER_COLUMN,
                )
            )
    if len(names) > usual_count:
        found.append(
            Problem(
                line,
                "",
                f"the header has {len(names)} columns; the portal's has 6 (7 with Enabled)",
                fix="delete the extra columns",
                code=Code.HEADER_COLUMN,
            )
        )
    return found


def _looks_like_token(cells: tuple[str, ...]) -> bool:
    return len(cells) >= len(COLUMNS) and "@" in cells[0]


def _enabled_warning(line: int) -> Problem:
    return Problem(
        line,
        "enabled",
        "the 7th column 'Enabled' comes from an old portal template",
        fix="if the portal refuses the file, delete the column",
        code=Code.OLD_ENABLED_COLUMN,
    )
