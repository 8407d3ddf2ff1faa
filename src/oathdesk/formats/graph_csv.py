"""The Graph-style CSV of vendor stock: ``serialNumber,secretKey,timeIntervalInSeconds,
manufacturer,model,hashFunction``. Pure.

Community scripts and Token2's inventory write the properties of Graph's
``hardwareOathTokenAuthenticationMethodDevice`` as columns, in any order, with the header names
in any case. It holds tokens without users (stock, for self-service in Entra). Each value is
checked by the portal's rules where Graph has the same ones (a base32 secret of at most 128
characters, 30 or 60 seconds), and ``hashFunction`` is Graph's ``hmacsha1`` (also when empty) or
``hmacsha256``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oathdesk.formats.cells import FORMULA_FIX, formula_message, starts_like_formula
from oathdesk.formats.checks import Columns, RowFacts, cross_row_problems
from oathdesk.formats.entra_rules import INTERVALS, check_interval, check_secrets
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.spreadsheet import header_key
from oathdesk.formats.text import Row, decode, read_rows, sniff_delimiter

FORMAT = "graph-csv"
# Graph's property names, as header_key reads them, and what the reader calls them.
SERIAL, SECRET, INTERVAL = "serialnumber", "secretkey", "timeintervalinseconds"
MANUFACTURER, MODEL, HASH = "manufacturer", "model", "hashfunction"
REQUIRED = (SERIAL, SECRET, INTERVAL, MANUFACTURER, MODEL)
# Read by Graph but not needed here; named so that they are not reported as unknown.
IGNORED = frozenset({"displayname", "contentid", "id"})
HASHES = {"hmacsha1": "sha1", "hmacsha256": "sha256"}
GRAPH_HEADER = "serialNumber,secretKey,timeIntervalInSeconds,manufacturer,model,hashFunction"
_HEAD_CHARS = 16 * 1024


@dataclass(frozen=True)
class _Layout:
    line: int
    index: dict[str, int]  # header key -> column index
    names: tuple[str, ...]  # as the file spells them

    def name(self, key: str) -> str:
        return self.names[self.index[key]]


def looks_like_graph_csv(text: str) -> bool:
    """The first row names Graph's serialNumber, secretKey and timeIntervalInSeconds (the Entra
    CSV's header has 'serial number' and 'secret key' too, never timeIntervalInSeconds)."""
    head = text[:_HEAD_CHARS]
    rows, _ = read_rows(head, sniff_delimiter(head))
    first = next((row for row in rows if not row.is_empty), None)
    return first is not None and {SERIAL, SECRET, INTERVAL} <= {header_key(c) for c in first.cells}


def parse_graph_csv(data: bytes) -> ParsedFile:
    """Records (without users) and every problem with its line and column; never raises."""
    text, _, warnings = decode(data)
    rows, problems = read_rows(text, sniff_delimiter(text))
    if problems:
        return ParsedFile(FORMAT, [], problems, warnings)
    table = [row for row in rows if not row.is_empty]
    if not table:
        return ParsedFile(FORMAT, [], [_empty(0)], warnings)
    layout, header_problems, header_warnings = _layout(table[0].line, table[0].cells)
    warnings += header_warnings
    if layout is None:
        return ParsedFile(FORMAT, [], header_problems, warnings)
    if len(table) == 1:
        return ParsedFile(FORMAT, [], [_empty(layout.line)], warnings)
    records, row_problems, row_warnings, facts = _read_rows(table[1:], layout)
    problems += row_problems
    warnings += row_warnings
    columns = Columns(serial=layout.name(SERIAL), seed=layout.name(SECRET), user="")
    problems += cross_row_problems(facts, columns)
    return ParsedFile.checked(FORMAT, records, problems, warnings, columns)


def _layout(line: int, cells: Sequence[str]) -> tuple[_Layout | None, list[Problem], list[Problem]]:
    index: dict[str, int] = {}
    for position, cell in enumerate(cells):
        index.setdefault(header_key(cell), position)
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        return (
            None,
            [
                Problem(
                    line,
                    "",
                    "the header lacks the column(s) "
                    + ", ".join(_SPELLING[name] for name in missing),
                    fix=f"the header names Graph's properties: {GRAPH_HEADER} (any order, "
                    "hashFunction optional)",
                    code=Code.HEADER_COLUMN,
                )
            ],
            [],
        )
    known = {*REQUIRED, HASH, *IGNORED}
    unknown = [cell for cell in cells if header_key(cell) not in known]
    warnings = [
        Problem(
            line,
            "",
            "column(s) not read: " + ", ".join(f"'{name}'" for name in unknown),
            fix="the tokens are imported in stock (without a user); assign them in oathdesk or "
            "let users self-assign them in Entra",
            code=Code.HEADER_COLUMN,
        )
    ]
    return _Layout(line, index, tuple(cells)), [], warnings if unknown else []


_SPELLING = {
    SERIAL: "serialNumber",
    SECRET: "secretKey",
    INTERVAL: "timeIntervalInSeconds",
    MANUFACTURER: "manufacturer",
    MODEL: "model",
}


def _read_rows(
    rows: Sequence[Row], layout: _Layout
) -> tuple[list[SeedRecord], list[Problem], list[Problem], list[RowFacts]]:
    """Every row, checked a column at a time: a file holds up to 100,000 tokens, and most
    columns hold a few distinct values (manufacturer, model, interval, hash), each checked once.
    """
    width = len(layout.names)
    problems = [
        Problem(
            row.line,
            "",
            f"the row has {len(row.cells)} columns; the header has {width}",
            fix="a value holds a comma (put it in quotes), or a value is extra",
            code=Code.COLUMN_COUNT,
        )
        for row in rows
        if len(row.cells) > width
    ]
    shaped = [row for row in rows if len(row.cells) <= width]
    lines = [row.line for row in shaped]
    # Excel drops empty cells at the end of a row: pad every row to the header's width.
    table = [row.cells + ("",) * (width - len(row.cells)) for row in shaped]
    columns = {key: [cells[index] for cells in table] for key, index in layout.index.items()}
    empty = [""] * len(table)
    serials, secrets = columns[SERIAL], columns[SECRET]
    manufacturers, models = columns[MANUFACTURER], columns[MODEL]
    intervals, hashes = columns[INTERVAL], columns.get(HASH, empty)
    # A cell a spreadsheet would run is that cell's one problem (as in the Entra CSV). A value
    # that starts with a letter or digit never does, so only the others are looked at, once each.
    formula_rows: dict[str, set[int]] = {}
    for key in (*REQUIRED, HASH):
        values = columns.get(key, empty)
        suspects = {v for v in set(values) if v[:1] and not v[:1].isalnum()}
        formulas = {v for v in suspects if starts_like_formula(v)}
        formula_rows[key] = (
            {i for i, v in enumerate(values) if v in formulas} if formulas else set()
        )
        problems += [
            Problem(
                lines[i],
                layout.name(key),
                formula_message(_what(key)),
                fix=FORMULA_FIX,
                code=Code.FORMULA_CELL,
            )
            for i in sorted(formula_rows[key])
        ]
    formula_any = set().union(*formula_rows.values())
    algorithms = {v: HASHES.get(header_key(v) or "hmacsha1") for v in set(hashes)}
    checks = check_secrets(lines, layout.name(SECRET), secrets)
    records: list[SeedRecord] = []
    warnings: list[Problem] = []
    facts: list[RowFacts] = []
    for i, line in enumerate(lines):
        found: list[Problem] = []
        secret = checks[i]
        if i not in formula_rows[SECRET]:
            found += [_graph_fix(p) for p in secret.problems]
            warnings += secret.warnings
        if intervals[i] not in INTERVALS and i not in formula_rows[INTERVAL]:
            found += check_interval(line, layout.name(INTERVAL), intervals[i])
        for key, values in ((SERIAL, serials), (MANUFACTURER, manufacturers), (MODEL, models)):
            if not values[i]:
                found.append(_empty_value(line, layout.name(key), key))
        algorithm = algorithms[hashes[i]]
        if algorithm is None and i not in formula_rows[HASH]:
            found.append(
                Problem(
                    line,
                    layout.name(HASH),
                    "the hash function must be hmacsha1 or hmacsha256 (Graph's values)",
                    fix="use the value from the vendor's file; empty means hmacsha1",
                    code=Code.HASH_UNSUPPORTED,
                )
            )
        facts.append(
            RowFacts(
                line, serials[i] or None, secret.fingerprint, None, (manufacturers[i], models[i])
            )
        )
        problems += found
        if found or i in formula_any or secret.secret is None or algorithm is None:
            continue
        records.append(
            SeedRecord(
                line,
                secret.secret,
                None,
                serials[i],
                manufacturers[i],
                models[i],
                algorithm=algorithm,
                digits=6,
                period=int(intervals[i]),
            )
        )
    return records, problems, warnings, facts


def _what(key: str) -> str:
    return {SERIAL: "serial number", SECRET: "secret", HASH: "hash function"}.get(key, key)


def _graph_fix(problem: Problem) -> Problem:
    # The portal rules' fixes name the Entra CSV linter, which does not read this format.
    if problem.code != Code.SECRET_HEX:
        return problem
    return Problem(
        problem.line,
        problem.column,
        problem.message.replace("Entra rejects", "Graph rejects"),
        fix="ask the vendor for the file with base32 secrets, or convert the column to base32",
        code=problem.code,
    )


def _empty_value(line: int, column: str, key: str) -> Problem:
    what = "serial number" if key == SERIAL else key
    return Problem(
        line,
        column,
        f"the {what} is empty",
        fix=f"fill in the {what} from the vendor's file or the back of the token",
        code=Code.SERIAL_EMPTY if key == SERIAL else Code.VALUE_EMPTY,
    )


def _empty(header_line: int) -> Problem:
    return Problem(
        header_line,
        "",
        "the file has a header row but no tokens" if header_line else "the file is empty",
        fix=f"it needs the header ({GRAPH_HEADER}) and one row per token",
        code=Code.EMPTY_FILE,
    )
