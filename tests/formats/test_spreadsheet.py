"""The helpdesk's "username, secret" spreadsheet, as CSV and as an XLSX made with openpyxl."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from oathdesk.formats.problems import Code
from oathdesk.formats.spreadsheet import parse_spreadsheet
from oathdesk.seed import build_otpauth_uri, encode_base32
from tests.formats.helpers import assert_no_secret, assert_well_formed

S1, S2, S3 = bytes([1]) * 20, bytes(range(20, 40)), bytes(range(200, 220))


def grouped(secret: bytes) -> str:
    text = encode_base32(secret).lower()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def xlsx(rows: list[list[object]], tmp_path: Path, *, title_sheet: bool = False) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if title_sheet:
        sheet.title = "Notes"
        sheet = book.create_sheet("Tokens")
    for row in rows:
        sheet.append(row)
    path = tmp_path / "mfa-secrets.xlsx"
    book.save(path)
    return path.read_bytes()


@pytest.mark.parametrize(
    "header",
    [
        ["User", "Secret"],
        ["Username", "Secret key"],
        ["UPN", "Seed"],
        ["E-mail", "Key"],
        ["user_principal_name", "TOTP secret"],
        ["  EMAIL ADDRESS ", "shared-secret"],
    ],
)
def test_header_names_are_recognised_loosely(header: list[str]) -> None:
    data = f"{header[0]};{header[1]}\nhelga@contoso.com;{grouped(S1)}\n".encode()
    result = parse_spreadsheet(data)
    assert result.problems == []
    assert [(r.upn, r.secret, r.serial) for r in result.records] == [
        ("helga@contoso.com", S1, None)
    ]


def test_a_csv_sheet_with_every_kind_of_secret(tmp_path: Path) -> None:
    path = tmp_path / "mfa-secrets.csv"
    path.write_text(
        "Helpdesk tokens, do not share\n"  # a title row above the table
        "\n"
        "Name,Serial number,User,Secret,Interval\n"
        f"Helga,60234567,Helga@Contoso.com,{grouped(S1)},\n"
        f"Olaf,,olaf@contoso.com,{S2.hex()},60\n"
        f"Anna,60234569,anna@contoso.com,"
        f"{build_otpauth_uri(S3, account='anna@contoso.com', digits=8, algorithm='sha256')},\n"
    )
    result = parse_spreadsheet(path.read_bytes())
    assert result.problems == []
    assert [(r.line, r.upn, r.serial, r.secret, r.period) for r in result.records] == [
        (4, "helga@contoso.com", "60234567", S1, 30),
        (5, "olaf@contoso.com", None, S2, 60),
        (6, "anna@contoso.com", "60234569", S3, 30),
    ]
    assert (result.records[2].digits, result.records[2].algorithm) == (8, "sha256")


def test_every_problem_of_a_sheet_with_its_line_and_column() -> None:
    data = (
        "User,Secret key,Serial\n"
        f"helga@contoso.com,{encode_base32(S1)},60234567\n"  # 2: fine
        f"not a user,{encode_base32(S2)},60234568\n"  # 3: bad user
        "olaf@contoso.com,12345678,60234569\n"  # 4: a serial typed as the secret
        f"anna@contoso.com,{encode_base32(S1)},60234570\n"  # 5: line 2's secret
        f"bob@contoso.com,{encode_base32(S3)},60234567\n"  # 6: line 2's serial
        ",,\n"  # an empty row: skipped
        f",{encode_base32(bytes(range(80, 100)))},\n"  # 8: no user
    ).encode()
    result = parse_spreadsheet(data)
    assert [(p.line, p.column, p.code) for p in result.problems] == [
        (3, "User", Code.UPN_INVALID),
        (4, "Secret key", Code.SECRET_INVALID),
        (5, "Secret key", Code.SECRET_DUPLICATE),
        (6, "Serial", Code.SERIAL_DUPLICATE),
        (8, "User", Code.UPN_INVALID),
    ]
    assert "serial number" in result.problems[1].message
    assert [r.line for r in result.records] == [2]
    assert_well_formed(result.problems)
    assert_no_secret([p.render("sheet.csv") for p in result.problems], [S1, S2, S3])


def test_an_xlsx_made_with_openpyxl(tmp_path: Path) -> None:
    data = xlsx(
        [
            ["UPN", "Serial", "Seed"],
            ["olaf@contoso.com", 86596120001, encode_base32(S2).lower()],  # serial as a number
            ["anna@contoso.com", None, S3.hex()],
            [None, None, None],
            ["helga@contoso.com", "86596120003", grouped(S1)],
        ],
        tmp_path,
        title_sheet=True,  # an empty first sheet is passed over
    )
    result = parse_spreadsheet(data)
    assert result.problems == []
    assert [(r.line, r.upn, r.serial, r.secret) for r in result.records] == [
        (2, "olaf@contoso.com", "86596120001", S2),
        (3, "anna@contoso.com", None, S3),
        (5, "helga@contoso.com", "86596120003", S1),
    ]


def test_xlsx_problems_name_the_row_and_the_header(tmp_path: Path) -> None:
    data = xlsx(
        [
            ["E-mail", "Token serial", "Secret"],
            ["olaf@contoso.com", 86596120001, encode_base32(S2)],
            ["anna", 8659612002, encode_base32(S3)],  # bad user; Excel lost a zero
        ],
        tmp_path,
    )
    result = parse_spreadsheet(data)
    assert [(p.line, p.column, p.code) for p in result.problems] == [
        (3, "E-mail", Code.UPN_INVALID),
        (3, "Token serial", Code.SERIAL_LEADING_ZEROS),
    ]


def test_no_header_or_nothing_at_all(tmp_path: Path) -> None:
    no_header = parse_spreadsheet(b"helga@contoso.com,JBSWY3DPEHPK3PXP\n")
    assert [(p.line, p.code) for p in no_header.problems] == [(1, Code.HEADER_MISSING)]
    assert "first row is" not in no_header.problems[0].message  # the secret row is not quoted
    assert "JBSWY3DP" not in no_header.problems[0].render("x")
    for empty in (b"", b"\n\n", xlsx([], tmp_path)):
        assert [p.code for p in parse_spreadsheet(empty).problems] == [Code.EMPTY_FILE]


def zipped(entries: dict[str, bytes], *, password_flag: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    data = bytearray(buffer.getvalue())
    if password_flag:
        # zipfile cannot encrypt; set the "encrypted" flag in the local and central headers,
        # which is what a reader sees of a password-protected zip
        data[6] |= 0x1
        central = data.index(b"PK\x01\x02")
        data[central + 8] |= 0x1
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (zipped({"seeds.csv": b"x"}), "not an Excel workbook"),
        (zipped({"seeds.csv": b"x"}, password_flag=True), "password-protected zip"),
        (b"PK\x03\x04 damaged", "damaged"),
        (zipped({"xl/workbook.xml": b"<workbook/>"}), "cannot be read"),
        (zipped({"xl/workbook.xml": b"<w/>", "xl/bomb.xml": bytes(40 * 1024 * 1024)}), "zip bomb"),
    ],
    ids=["other-zip", "protected-zip", "damaged", "not-a-workbook-inside", "zip-bomb"],
)
def test_archives_that_are_not_usable_workbooks(data: bytes, words: str) -> None:
    result = parse_spreadsheet(data)
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.NOT_SPREADSHEET)]
    assert words in result.problems[0].message
    assert_well_formed(result.problems)


def test_a_code_page_file_is_only_a_warning() -> None:
    data = f"Name;User;Secret\nJürgen;jurgen@contoso.com;{encode_base32(S1)}\n".encode("cp1252")
    result = parse_spreadsheet(data)
    assert result.problems == []
    assert [w.code for w in result.warnings] == [Code.ENCODING]
    assert len(result.records) == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_records_or_problems(data: bytes) -> None:
    result = parse_spreadsheet(data)
    assert_well_formed(result.problems)
    assert not (
        result.records
        and result.problems
        and {r.line for r in result.records} & {p.line for p in result.problems}
    )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_in_a_zip_never_break_the_reader(data: bytes) -> None:
    result = parse_spreadsheet(zipped({"xl/workbook.xml": data}))
    assert result.problems
    assert not result.records


def test_an_interval_column_is_read_and_checked() -> None:
    data = (
        "User;Secret;Interval\n"
        f"helga@contoso.com;{encode_base32(S1)};60\n"
        f"olaf@contoso.com;{encode_base32(S2)};3²\n"  # a digit to str.isdigit(), not to int()
    ).encode()
    result = parse_spreadsheet(data)
    assert [r.period for r in result.records] == [60]
    assert [(p.line, p.column, p.code) for p in result.problems] == [
        (3, "Interval", Code.INTERVAL_INVALID)
    ]


def test_a_header_without_rows() -> None:
    result = parse_spreadsheet(b"Title\nUser,Secret\n\n")
    assert [(p.line, p.code) for p in result.problems] == [(2, Code.EMPTY_FILE)]
