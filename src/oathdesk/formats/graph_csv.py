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

from oathdesk.formats.checks import Columns, RowFacts, cross_row_problems, formula_problems
from oathdesk.formats.entra_rules import check_interval, check_secret
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.spreadsheet import header_key
from oathdesk.formats.text import decode, read_rows, sniff_delimiter

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
    records: list[SeedRecord] = []
    facts: list[RowFacts] = []
    for row in table[1:]:
        record, row_problems, row_warnings, fact = _read_row(row.line, row.cells, layout)
        problems += row_problems
        warnings += row_warnings
        if fact is not None:
            facts.append(fact)
        if record is not None:
            records.append(record)
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


def _read_row(
    line: int, cells: Sequence[str], layout: _Layout
) -> tuple[SeedRecord | None, list[Problem], list[Problem], RowFacts | None]:
    if len(cells) > len(layout.names):
        problem = Problem(
            line,
            "",
            f"the row has {len(cells)} columns; the header has {len(layout.names)}",
            fix="a value holds a comma (put it in quotes), or a value is extra",
            code=Code.COLUMN_COUNT,
        )
        return None, [problem], [], None

    def value(key: str) -> str:
        position = layout.index.get(key)
        return cells[position] if position is not None and position < len(cells) else ""

    serial, secret_text = value(SERIAL), value(SECRET)
    manufacturer, model = value(MANUFACTURER), value(MODEL)
    hash_text = value(HASH)
    # A cell a spreadsheet would run is that cell's one problem (as in the Entra CSV).
    formulas = {
        key: formula_problems(line, layout.name(key), _what(key), value(key))
        for key in layout.index
        if key in (*REQUIRED, HASH)
    }
    found = [p for problems in formulas.values() for p in problems]
    secret = check_secret(line, layout.name(SECRET), secret_text)
    if not formulas[SECRET]:
        found += [_graph_fix(p) for p in secret.problems]
    if not formulas[INTERVAL]:
        found += check_interval(line, layout.name(INTERVAL), value(INTERVAL))
    for key, text in ((SERIAL, serial), (MANUFACTURER, manufacturer), (MODEL, model)):
        if not text:
            found.append(_empty_value(line, layout.name(key), key))
    algorithm = HASHES.get(header_key(hash_text) or "hmacsha1")
    if algorithm is None and not formulas.get(HASH):
        found.append(
            Problem(
                line,
                layout.name(HASH),
                "the hash function must be hmacsha1 or hmacsha256 (Graph's values)",
                fix="use the value from the vendor's file; empty means hmacsha1",
                code=Code.HASH_UNSUPPORTED,
            )
        )
    fact = RowFacts(line, serial or None, secret.fingerprint, None, (manufacturer, model))
    warnings = secret.warnings if not formulas[SECRET] else []
    if found or secret.secret is None or algorithm is None:
        return None, found, warnings, fact
    record = SeedRecord(
        line,
        secret.secret,
        None,
        serial,
        manufacturer,
        model,
        algorithm=algorithm,
        digits=6,
        period=int(value(INTERVAL)),
    )
    return record, [], warnings, fact


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
