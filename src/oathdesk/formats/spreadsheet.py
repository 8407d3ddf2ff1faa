"""The helpdesk's spreadsheet of "username, secret" (CSV or XLSX), the thing oathdesk replaces.

Header names are recognised loosely ("User", "UPN", "E-mail", "Secret key", "Seed", "Serial").
"""

from __future__ import annotations

import io

from oathdesk.errors import SeedError
from oathdesk.formats.problems import Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.text import decode, rows, sniff_delimiter
from oathdesk.seed import parse_seed
from oathdesk.upn import is_valid_upn

USER_NAMES = {"user", "username", "user name", "upn", "email", "e-mail", "mail", "account", "login"}
SECRET_NAMES = {"secret", "secret key", "secretkey", "seed", "key", "totp secret", "shared secret"}
SERIAL_NAMES = {"serial", "serial number", "serialnumber", "token", "token serial", "sn"}
XLSX_MAGIC = b"PK\x03\x04"


def _column(header: list[str], names: set[str]) -> int | None:
    for index, cell in enumerate(header):
        if cell.strip().lower().replace("_", " ") in names:
            return index
    return None


def _table_from_xlsx(data: bytes) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = workbook.worksheets[0]
    table = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = ["" if v is None else str(v).strip() for v in values]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            table.append((number, cells))
    workbook.close()
    return table


def parse_spreadsheet(data: bytes) -> ParsedFile:
    problems: list[Problem] = []
    if data.startswith(XLSX_MAGIC):
        table = _table_from_xlsx(data)
        kind = "xlsx"
    else:
        text, _, problems = decode(data)
        table = rows(text, sniff_delimiter(text))
        kind = "spreadsheet-csv"
    if not table:
        return ParsedFile(kind, [], [Problem(0, "", "the spreadsheet is empty")])
    header_line, header = table[0]
    user_col, secret_col = _column(header, USER_NAMES), _column(header, SECRET_NAMES)
    serial_col = _column(header, SERIAL_NAMES)
    if user_col is None or secret_col is None:
        problems.append(
            Problem(
                header_line,
                "",
                "the first row needs a user column (User, UPN, "
                "E-mail) and a secret column (Secret, Secret key, Seed)",
            )
        )
        return ParsedFile(kind, [], problems)
    records = []
    for line, cells in table[1:]:
        user = cells[user_col] if user_col < len(cells) else ""
        secret_text = cells[secret_col] if secret_col < len(cells) else ""
        if not is_valid_upn(user):
            problems.append(Problem(line, header[user_col], "not a valid UPN (name@contoso.com)"))
            continue
        try:
            seed = parse_seed(secret_text)
        except SeedError as error:
            problems.append(Problem(line, header[secret_col], error.message))
            continue
        serial = cells[serial_col] if serial_col is not None and serial_col < len(cells) else None
        records.append(
            SeedRecord(
                line,
                seed.secret,
                upn=user.lower(),
                serial=serial or None,
                algorithm=seed.algorithm or "sha1",
                digits=seed.digits or 6,
                period=seed.period or 30,
            )
        )
    return ParsedFile(kind, records, problems)
