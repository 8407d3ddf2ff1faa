"""Cells a spreadsheet would run as a formula, and UPNs outside Entra's rules: refused by the
linter and every importer with their line and column, never changed on the way out (issue 13,
item 5)."""

from __future__ import annotations

import io
import unicodedata

import pskc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from oathdesk.formats.cells import FORMULA_CHARS, starts_like_formula
from oathdesk.formats.entra_csv import EntraToken, parse_entra_csv, write_entra_csv
from oathdesk.formats.entra_export import entra_csv_problems
from oathdesk.formats.otpauth_list import parse_otpauth_list
from oathdesk.formats.problems import Code
from oathdesk.formats.pskc import TOTP_URN, parse_pskc
from oathdesk.formats.records import SeedRecord
from oathdesk.formats.spreadsheet import parse_spreadsheet
from oathdesk.seed import build_otpauth_uri, encode_base32
from oathdesk.upn import is_valid_upn, upn_problem
from tests.formats.helpers import ENTRA_HEADER

SEED_1, SEED_2 = bytes(range(20)), bytes(range(20, 40))
S1, S2 = encode_base32(SEED_1), encode_base32(SEED_2)


def entra(*rows: str) -> bytes:
    return (ENTRA_HEADER + "\n" + "\n".join(rows) + "\n").encode()


def test_lint_refuses_formulas_in_every_column_with_line_and_column() -> None:
    data = entra(
        f'helga@contoso.com,1100000001,{S1},30,"=HYPERLINK(""http://x"",""y"")",C202',
        f"olaf@contoso.com,1100000002,{S2},30,Token2,+cmd|' /C calc'!A0",
        f"anna@contoso.com,@SUM(1+1),{encode_base32(bytes(range(40, 60)))},30,Token2,C202",
    )
    result = parse_entra_csv(data)
    assert not result.ready_to_upload
    assert result.tokens == []
    found = [(p.line, p.column, p.code) for p in result.problems]
    assert found == [
        (2, "manufacturer", Code.FORMULA_CELL),
        (3, "model", Code.FORMULA_CELL),
        (4, "serial number", Code.FORMULA_CELL),
    ]
    assert all("formula" in p.message for p in result.problems)


def test_lint_refuses_a_upn_starting_with_a_dash() -> None:
    result = parse_entra_csv(entra(f"-helga@contoso.com,1100000001,{S1},30,Token2,C202"))
    assert [(p.line, p.column) for p in result.problems] == [(2, "upn")]
    assert result.tokens == []


@pytest.mark.parametrize(
    "upn",
    [
        "a+b@contoso.com",
        "a%b@contoso.com",
        ".helga@contoso.com",
        "helga.@contoso.com",
        "hel..ga@contoso.com",
        "-helga@contoso.com",
        "hélga@contoso.com",
        "x" * 65 + "@contoso.com",
        "helga@" + "d" * 45 + ".com",
        "helga@contoso",
        "helga@-contoso.com",
        "helga@contoso..com",
        "a@b@contoso.com",
    ],
)
def test_upns_outside_entras_rules_are_refused(upn: str) -> None:
    assert not is_valid_upn(upn)
    reason = upn_problem(upn)
    assert reason is not None
    assert "\n" not in reason
    result = parse_entra_csv(entra(f"{upn},1100000001,{S1},30,Token2,C202"))
    code = Code.FORMULA_CELL if upn.startswith("-") else Code.UPN_INVALID
    assert [(p.line, p.column, p.code) for p in result.problems] == [(2, "upn", code)]


@pytest.mark.parametrize(
    "upn",
    [
        "helga@contoso.com",
        "o'neil@contoso.com",
        "a!b#c^d~e_f-g.h@sub.contoso-eu.com",
        "x" * 64 + "@contoso.com",
        "Helga.Meier@Contoso.onmicrosoft.com",
    ],
)
def test_upns_inside_entras_rules_are_accepted(upn: str) -> None:
    assert is_valid_upn(upn)
    assert parse_entra_csv(entra(f"{upn},1100000001,{S1},30,Token2,C202")).ready_to_upload


# -- the cell rule, as properties ---------------------------------------------------------------

STARTS = st.sampled_from(
    [*FORMULA_CHARS, "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe62", "\ufe63", "\u2212"]
)
LEADING = st.text(alphabet=" \u00a0\u3000\u200b\ufeff\t\r\n", max_size=3)


@given(LEADING, STARTS, st.text(max_size=20))
def test_a_formula_start_is_found_behind_any_blank_or_full_width_form(
    lead: str, start: str, rest: str
) -> None:
    assert starts_like_formula(lead + start + rest)
    # an apostrophe in front (a writer's escape) still marks a value that was changed
    assert starts_like_formula("'" + lead + start + rest)


@given(st.sampled_from(["\t", "\r", "\n"]), st.text(max_size=20))
def test_a_leading_tab_or_line_break_is_a_formula_start(control: str, rest: str) -> None:
    assert starts_like_formula(control + rest)


@given(st.from_regex(r"[A-Za-z0-9._!#^~][A-Za-z0-9'._!#^~=+@ -]{0,30}", fullmatch=True))
def test_values_starting_with_a_letter_or_digit_are_not_formulas(value: str) -> None:
    assert not starts_like_formula(value)


def _skip_blanks(text: str) -> str:
    index = 0
    while index < len(text) and (
        text[index].isspace() or unicodedata.category(text[index]) == "Cf"
    ):
        index += 1
    return text[index:]


@given(st.text(max_size=30))
def test_the_rule_is_what_a_spreadsheet_sees_first(value: str) -> None:
    head = _skip_blanks(value)
    if head.startswith("'"):
        head = _skip_blanks(head[1:])
    first = unicodedata.normalize("NFKC", head[:1])[:1]
    expected = value[:1] in ("\t", "\r", "\n") or (first != "" and first in "=+-@\u2212")
    assert starts_like_formula(value) == expected


# -- every importer ------------------------------------------------------------------------------


def test_spreadsheet_csv_refuses_formula_cells_and_bad_upns() -> None:
    sheet = (
        "User;Serial;Secret key\n"
        f"-helga@contoso.com;86596120001;{S1}\n"
        f"olaf@contoso.com;=HYPERLINK(1);{S2}\n"
        f"a+b@contoso.com;86596120003;{encode_base32(bytes(range(40, 60)))}\n"
    )
    parsed = parse_spreadsheet(sheet.encode())
    assert parsed.records == []
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (2, "User", Code.FORMULA_CELL),
        (3, "Serial", Code.FORMULA_CELL),
        (4, "User", Code.UPN_INVALID),
    ]


def test_xlsx_refuses_formula_cells() -> None:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["UPN", "Serial", "Seed"])
    ws.append(["helga@contoso.com", "@SUM(1+1)", S1])
    buffer = io.BytesIO()
    book.save(buffer)
    parsed = parse_spreadsheet(buffer.getvalue())
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (2, "Serial", Code.FORMULA_CELL)
    ]


def test_otpauth_list_refuses_a_dash_upn() -> None:
    uri = build_otpauth_uri(SEED_1, account="-helga@contoso.com", issuer="Microsoft")
    parsed = parse_otpauth_list((uri + "\n").encode())
    assert parsed.records == []
    assert [(p.line, p.code) for p in parsed.problems] == [(1, Code.UPN_INVALID)]


def _pskc(user: str, serial: str = "60234567", manufacturer: str = "Token2") -> bytes:
    container = pskc.PSKC()
    key = container.add_key(
        id="k1", serial=serial, secret=SEED_1, algorithm=TOTP_URN, manufacturer=manufacturer
    )
    key.model = "C202"
    key.time_interval = 30
    key.response_length = 6
    key.key_userid = user
    buffer = io.BytesIO()
    container.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "column", "code"),
    [
        (_pskc("-helga@contoso.com"), "UserId", Code.FORMULA_CELL),
        (_pskc("a+b@contoso.com"), "UserId", Code.UPN_INVALID),
        (_pskc("helga@contoso.com", serial="=1+1"), "SerialNo", Code.FORMULA_CELL),
        (_pskc("helga@contoso.com", manufacturer="@SUM(1)"), "Manufacturer", Code.FORMULA_CELL),
    ],
)
def test_pskc_refuses_bad_users_and_formula_fields(data: bytes, column: str, code: Code) -> None:
    parsed = parse_pskc(data)
    assert parsed.records == []
    assert [(p.column, p.code) for p in parsed.problems] == [(column, code)]
    assert parsed.problems[0].line > 0


# -- exports never change a value ---------------------------------------------------------------


def test_the_entra_csv_writer_refuses_rather_than_changing_a_value() -> None:
    evil = EntraToken(2, "-helga@contoso.com", "1", SEED_1, 30, "Token2", "C202")
    with pytest.raises(ValueError, match="formula"):
        write_entra_csv([evil])
    record = SeedRecord(0, SEED_1, "-helga@contoso.com", "1", "Token2", "C202")
    assert [p.column for p in entra_csv_problems([record])] == ["upn"]
