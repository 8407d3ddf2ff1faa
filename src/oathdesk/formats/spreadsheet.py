"""The helpdesk's spreadsheet of "username, secret" (CSV or XLSX), the thing oathdesk replaces.

Header names are recognised loosely ("User", "Username", "UPN", "E-mail", "Secret", "Secret key",
"Seed", "Key", "Serial", "Serial number", ...), in any order, in one of the first rows (title
rows above the table are skipped). Secrets may be base32 (grouped or not), hex or otpauth URIs;
a serial column is optional. Pure: the workbook is read from bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oathdesk.errors import InvalidInput
from oathdesk.formats.checks import Columns, RowFacts, cross_row_problems, formula_problems
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.seed_cell import HEX_SEED_MIN_DIGITS, read_secret_cell
from oathdesk.formats.text import decode, read_rows, sniff_delimiter
from oathdesk.formats.xlsx import XLSX_MAGIC, read_xlsx_rows
from oathdesk.upn import upn_problem

__all__ = [
    "HEX_SEED_MIN_DIGITS",
    "SECRET_NAMES",
    "SERIAL_NAMES",
    "XLSX_MAGIC",
    "find_header",
    "header_key",
    "parse_spreadsheet",
]

FORMAT = "spreadsheet"
# Header names with everything but letters and digits removed, lower case.
USER_NAMES = frozenset(
    {"user", "username", "upn", "userprincipalname", "email", "emailaddress", "mail", "login"}
    | {"account", "userid", "benutzer", "utilisateur"}
)
# A secret column whose header names hex ("Secret (hex)", "Hex seed", ...) is read as hex.
HEX_SECRET_NAMES = frozenset(
    {"hex", "hexsecret", "secrethex", "hexseed", "seedhex", "hexkey", "keyhex", "secretkeyhex"}
)
SECRET_NAMES = (
    frozenset(
        {"secret", "secretkey", "seed", "key", "totpsecret", "sharedsecret", "otpsecret"}
        | {"totpkey", "base32", "base32secret", "secretbase32", "geheimnis"}
    )
    | HEX_SECRET_NAMES
)
SERIAL_NAMES = frozenset(
    {"serial", "serialnumber", "serialno", "sn", "token", "tokenserial", "tokenserialnumber"}
    | {"seriennummer"}
)
PERIOD_NAMES = frozenset({"period", "interval", "timeinterval", "timestep"})
# What is on file about the user (issue 16): the number a "callback" verification dials.
NAME_NAMES = frozenset({"displayname", "name", "fullname", "anzeigename", "nom"})
PHONE_NAMES = frozenset(
    {"phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "tel", "telephone"}
    | {"cell", "cellphone", "telefon", "handy", "telephonenumber"}
)
HEADER_SEARCH_ROWS = 10


def header_key(name: str) -> str:
    """A header cell as the name sets hold it: letters and digits only, lower case."""
    return "".join(char for char in name.lower() if char.isalnum())


@dataclass(frozen=True)
class _Layout:
    """Where the columns are, and what the file calls them."""

    header_line: int
    user: int
    secret: int
    serial: int | None
    period: int | None
    names: tuple[str, ...]
    secret_is_hex: bool = False  # the header says the secrets are hex
    display_name: int | None = None
    phone: int | None = None

    def name(self, index: int) -> str:
        return self.names[index]


def _layout(line: int, cells: Sequence[str]) -> _Layout | None:
    keys = [header_key(cell) for cell in cells]

    def find(names: frozenset[str]) -> int | None:
        return next((i for i, key in enumerate(keys) if key in names), None)

    user, secret = find(USER_NAMES), find(SECRET_NAMES)
    if user is None or secret is None:
        return None
    return _Layout(
        line,
        user,
        secret,
        find(SERIAL_NAMES),
        find(PERIOD_NAMES),
        tuple(cells),
        keys[secret] in HEX_SECRET_NAMES,
        find(NAME_NAMES),
        find(PHONE_NAMES),
    )


def find_header(table: Sequence[tuple[int, Sequence[str]]]) -> tuple[int, _Layout] | None:
    """(index in ``table``, layout) of the header row, searched in the first rows."""
    for index, (line, cells) in enumerate(table[:HEADER_SEARCH_ROWS]):
        layout = _layout(line, cells)
        if layout is not None:
            return index, layout
    return None


def parse_spreadsheet(data: bytes) -> ParsedFile:
    """Records and every problem; never raises."""
    warnings: list[Problem] = []
    if data.startswith(XLSX_MAGIC):
        table, problems = read_xlsx_rows(data)
    else:
        text, _, encoding_problems = decode(data)
        # Only the user and secret columns count, and they are ASCII: a guessed code page
        # (accented names in other columns) is worth a warning, not a refusal.
        warnings += encoding_problems
        rows, problems = read_rows(text, sniff_delimiter(text))
        table = [(row.line, row.cells) for row in rows if not row.is_empty]
    if problems:
        return ParsedFile(FORMAT, [], problems, warnings)
    if not table:
        return ParsedFile(FORMAT, [], [_empty()], warnings)
    found = find_header(table)
    if found is None:
        return ParsedFile(FORMAT, [], [_no_header(table[0][0])], warnings)
    index, layout = found
    if index + 1 == len(table):
        return ParsedFile(FORMAT, [], [_empty(layout.header_line)], warnings)
    records: list[SeedRecord] = []
    facts: list[RowFacts] = []
    for line, cells in table[index + 1 :]:
        record, row_problems, fact = _read_row(line, cells, layout)
        problems += row_problems
        if fact is not None:
            facts.append(fact)
        if record is not None and not row_problems:
            records.append(record)
    columns = Columns(
        serial=layout.name(layout.serial) if layout.serial is not None else "serial",
        seed=layout.name(layout.secret),
        user=layout.name(layout.user),
    )
    problems += cross_row_problems(facts, columns)
    return ParsedFile.checked(FORMAT, records, problems, warnings, columns)


def _cell(cells: Sequence[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _read_row(
    line: int, cells: Sequence[str], layout: _Layout
) -> tuple[SeedRecord | None, list[Problem], RowFacts | None]:
    user_column, secret_column = layout.name(layout.user), layout.name(layout.secret)
    user, secret_text = _cell(cells, layout.user), _cell(cells, layout.secret)
    serial = _cell(cells, layout.serial) or None
    problems = formula_problems(line, user_column, "user", user)
    user_problem = upn_problem(user)
    if user_problem is not None and not problems:
        problems.append(
            Problem(
                line,
                user_column,
                "the user is empty" if not user else f"not a valid UPN: {user_problem}",
                fix="write the user's UPN as Entra shows it under Users",
                code=Code.UPN_INVALID,
            )
        )
    if layout.serial is not None:
        problems += formula_problems(line, layout.name(layout.serial), "serial number", serial)
    secret_formula = formula_problems(line, secret_column, "secret", secret_text)
    problems += secret_formula
    parsed = (
        read_secret_cell(secret_text, hex_column=layout.secret_is_hex)
        if not secret_formula
        else "formula"
    )
    seed = None if isinstance(parsed, str) else parsed
    if isinstance(parsed, str) and not secret_formula:
        problems.append(
            Problem(
                line,
                secret_column,
                parsed,
                fix="copy the secret again from where it was first recorded",
                code=Code.SECRET_INVALID,
            )
        )
    period = _period(line, _cell(cells, layout.period), layout, problems)
    display_name, phone = _person(line, cells, layout, problems)
    fact = RowFacts(line, serial, seed.secret if seed else None, user.lower() or None)
    if seed is None or problems:
        return None, problems, fact
    record = SeedRecord(
        line,
        seed.secret,
        upn=user.strip().lower(),
        serial=serial,
        algorithm=seed.algorithm or "sha1",
        digits=seed.digits or 6,
        period=seed.period or period or 30,
        display_name=display_name,
        phone=phone,
    )
    return record, problems, fact


def _person(
    line: int, cells: Sequence[str], layout: _Layout, problems: list[Problem]
) -> tuple[str, str]:
    """The display name and phone number cells, checked as `oathdesk user edit` checks them
    (one problem per bad cell); "" for a column the file does not have or an empty cell."""
    if layout.display_name is None and layout.phone is None:
        return "", ""
    # Imported for a file with these columns only: people.py loads phonenumbers, which an
    # import of any other file (an Entra CSV of 100,000 rows) would load for nothing.
    from oathdesk.people import check_display_name, normalize_phone

    found: list[str] = []
    for index, check, code, fix in (
        (layout.display_name, check_display_name, Code.NAME_INVALID, "correct the name"),
        (layout.phone, normalize_phone, Code.PHONE_INVALID, "correct the number"),
    ):
        text = _cell(cells, index)
        if index is None or not text.strip():
            found.append("")
            continue
        column = layout.name(index)
        # A phone number starts with "+": one that is not a possible number (a formula such as
        # "+cmd|...") is refused by the number's own check below, so only the other signs are
        # the formula guard's.
        plus = index == layout.phone and text.lstrip().startswith("+")
        formula = [] if plus else formula_problems(line, column, column, text)
        if formula:
            problems += formula
            found.append("")
            continue
        try:
            found.append(check(text))
        except InvalidInput as refused:
            problems.append(Problem(line, column, refused.message, fix=fix, code=code))
            found.append("")
    return found[0], found[1]


def _period(line: int, text: str, layout: _Layout, problems: list[Problem]) -> int | None:
    if not text or layout.period is None:
        return None
    if text.isascii() and text.isdigit() and 0 < int(text) <= 300:
        return int(text)
    problems.append(
        Problem(
            line,
            layout.name(layout.period),
            "the interval must be a number of seconds (30 or 60)",
            fix="write 30 or 60, or leave it empty (30)",
            code=Code.INTERVAL_INVALID,
        )
    )
    return None


def _empty(header_line: int = 0) -> Problem:
    return Problem(
        header_line,
        "",
        "the spreadsheet has a header row but no tokens"
        if header_line
        else "the spreadsheet is empty",
        fix="it needs a header row (User, Secret) and one row per token",
        code=Code.EMPTY_FILE,
    )


def _no_header(line: int) -> Problem:
    return Problem(
        line,
        "",
        f"none of the first {HEADER_SEARCH_ROWS} rows is a header with a user column (User, "
        "UPN, E-mail) and a secret column (Secret, Secret key, Seed)",
        fix="add such a header row above the table, or give --format",
        code=Code.HEADER_MISSING,
    )
