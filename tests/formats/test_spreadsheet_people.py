"""A spreadsheet may carry the user's display name and phone number on file (issue 16): the
columns are found by loose header names, each cell is checked as the user edit checks it, and a
bad cell is one problem naming its line and column."""

from __future__ import annotations

from oathdesk.formats.problems import Code
from oathdesk.formats.spreadsheet import parse_spreadsheet
from oathdesk.seed import encode_base32
from tests.formats.helpers import assert_no_secret, assert_well_formed

S1, S2, S3 = bytes([1]) * 20, bytes(range(20, 40)), bytes(range(200, 220))


def test_display_name_and_phone_columns_are_read_and_normalised() -> None:
    data = (
        "User,Display name,Mobile,Secret\n"
        f"helga@contoso.com,Helga Braun,+44 20 7946 0958,{encode_base32(S1)}\n"
        f"olaf@contoso.com,,,{encode_base32(S2)}\n"
    ).encode()
    parsed = parse_spreadsheet(data)
    assert parsed.problems == []
    assert [(r.upn, r.display_name, r.phone) for r in parsed.records] == [
        ("helga@contoso.com", "Helga Braun", "+442079460958"),
        ("olaf@contoso.com", "", ""),
    ]


def test_other_header_spellings() -> None:
    for name, phone in (("Name", "Phone"), ("Full name", "Phone number"), ("displayName", "Tel")):
        row = f"helga@contoso.com;Helga;0044 20 7946 0958;{encode_base32(S1)}"
        data = f"UPN;{name};{phone};Seed\n{row}\n"
        (record,) = parse_spreadsheet(data.encode()).records
        assert (record.display_name, record.phone) == ("Helga", "+442079460958"), (name, phone)


def test_a_bad_cell_is_one_problem_with_line_and_column() -> None:
    data = (
        "User,Name,Phone,Secret\n"
        f"helga@contoso.com,Helga,020 7946 0958,{encode_base32(S1)}\n"
        f"olaf@contoso.com,{'x' * 300},+44 20 7946 0958,{encode_base32(S2)}\n"
        f"ines@contoso.com,Ines,=HYPERLINK(1),{encode_base32(S3)}\n"
    ).encode()
    parsed = parse_spreadsheet(data)
    assert_well_formed(parsed.problems)
    assert_no_secret([p.render("people.csv") for p in parsed.problems], [S1, S2, S3])
    found = [(p.line, p.column, p.code) for p in parsed.problems]
    assert found == [
        (2, "Phone", Code.PHONE_INVALID),
        (3, "Name", Code.NAME_INVALID),
        (4, "Phone", Code.FORMULA_CELL),
    ]
    assert "country code" in parsed.problems[0].message
    assert parsed.records == []
