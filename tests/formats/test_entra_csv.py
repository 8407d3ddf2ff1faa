"""The Entra CSV as Excel really saves it, every problem with its line, and the writer."""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oathdesk.formats.entra_csv import EntraToken, parse_entra_csv, write_entra_csv
from oathdesk.formats.problems import Code
from oathdesk.seed import encode_base32
from tests.formats.helpers import ENTRA_HEADER, assert_no_secret, assert_well_formed

SEED_1, SEED_2 = bytes(range(20)), bytes(range(20, 40))
S1, S2 = encode_base32(SEED_1), encode_base32(SEED_2)
GOOD_ROWS = [
    f"helga@contoso.com,1100000001,{S1},30,Token2,C202",
    f"olaf@contoso.com,1100000002,{S2},60,Token2,C203",
]
GOOD = ENTRA_HEADER + "\n" + "\n".join(GOOD_ROWS) + "\n"


def from_disk(tmp_path: Path, data: bytes, name: str = "order.csv") -> bytes:
    """Write the bytes as a real file and read them back, as the CLI and import do."""
    path = tmp_path / name
    path.write_bytes(data)
    return path.read_bytes()


def quoted(text: str) -> str:
    return "\n".join(",".join(f'"{c}"' for c in line.split(",")) for line in text.splitlines())


VARIANTS: dict[str, Callable[[], bytes]] = {
    "plain": lambda: GOOD.encode(),
    "utf8-bom": lambda: codecs.BOM_UTF8 + GOOD.encode(),
    "crlf": lambda: GOOD.replace("\n", "\r\n").encode(),
    # Excel's "Unicode text": UTF-16 LE with a byte-order mark, tabs between the values
    "excel-unicode-text": lambda: (
        codecs.BOM_UTF16_LE + GOOD.replace(",", "\t").replace("\n", "\r\n").encode("utf-16-le")
    ),
    "utf16-be": lambda: codecs.BOM_UTF16_BE + GOOD.encode("utf-16-be"),
    "semicolons": lambda: GOOD.replace(",", ";").encode(),
    "timeinterval": lambda: GOOD.replace("time interval", "timeinterval").encode(),
    "title-case-header": lambda: GOOD.replace(ENTRA_HEADER, ENTRA_HEADER.title()).encode(),
    "trailing-empty-columns": lambda: GOOD.replace("\n", ",,\n").encode(),
    "quoted": lambda: quoted(GOOD).encode(),
    "enabled-column": lambda: (
        ENTRA_HEADER + ",Enabled\n" + "\n".join(row + ",TRUE" for row in GOOD_ROWS) + "\n"
    ).encode(),
    "blanks-and-empty-lines": lambda: (
        "\n".join(" , ".join(line.split(",")) for line in GOOD.splitlines()) + "\n\n\n"
    ).encode(),
    "no-final-newline": lambda: GOOD.rstrip("\n").encode(),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_read(variant: str, tmp_path: Path) -> None:
    result = parse_entra_csv(from_disk(tmp_path, VARIANTS[variant]()))
    assert result.problems == [], result.problems
    assert [(t.line, t.upn, t.serial, t.period, t.model) for t in result.tokens] == [
        (2, "helga@contoso.com", "1100000001", 30, "C202"),
        (3, "olaf@contoso.com", "1100000002", 60, "C203"),
    ]
    assert [t.secret for t in result.tokens] == [SEED_1, SEED_2]
    assert all(t.enabled for t in result.tokens)
    assert_no_secret([repr(t) for t in result.tokens] + [repr(result)], [SEED_1, SEED_2])


@pytest.mark.parametrize(
    ("variant", "codes"),
    [
        ("plain", set()),
        ("crlf", set()),
        ("quoted", set()),
        ("no-final-newline", set()),
        ("timeinterval", set()),
        ("utf8-bom", set()),
        ("semicolons", {Code.SEPARATOR}),
        ("excel-unicode-text", {Code.SEPARATOR, Code.ENCODING}),
        ("utf16-be", {Code.ENCODING}),
        ("trailing-empty-columns", {Code.TRAILING_COLUMNS}),
        ("blanks-and-empty-lines", {Code.BLANKS, Code.EMPTY_LINE}),
    ],
)
def test_what_the_portal_may_refuse_is_a_form_problem(variant: str, codes: set[Code]) -> None:
    result = parse_entra_csv(VARIANTS[variant]())
    assert {p.code for p in result.form_problems} == codes
    assert result.ready_to_upload == (not codes)
    assert result.ok  # an import reads past all of them
    assert_well_formed(result.form_problems)


def test_what_was_found_about_the_file() -> None:
    unicode_text = parse_entra_csv(VARIANTS["excel-unicode-text"]())
    assert (unicode_text.encoding, unicode_text.delimiter) == ("utf-16", "\t")
    assert parse_entra_csv(VARIANTS["timeinterval"]()).header_spelling == "timeinterval"
    assert parse_entra_csv(GOOD.encode()).header_spelling == "time interval"
    bom = parse_entra_csv(VARIANTS["utf8-bom"]())
    assert [w.code for w in bom.warnings] == [Code.BYTE_ORDER_MARK]
    enabled = parse_entra_csv(VARIANTS["enabled-column"]())
    assert [(w.line, w.code) for w in enabled.warnings] == [(1, Code.OLD_ENABLED_COLUMN)]


def test_enabled_column_values() -> None:
    data = ENTRA_HEADER + ",Enabled\n" + GOOD_ROWS[0] + ",false\n" + GOOD_ROWS[1] + ",\n"
    assert [t.enabled for t in parse_entra_csv(data.encode()).tokens] == [False, True]
    wrong = parse_entra_csv((ENTRA_HEADER + ",Enabled\n" + GOOD_ROWS[0] + ",maybe\n").encode())
    assert [(p.line, p.column, p.code) for p in wrong.problems] == [
        (2, "enabled", Code.ENABLED_INVALID)
    ]


BROKEN = (
    "upn,serial number,secret key,timeinterval,manufacturer,model\n"  # 1
    f"helga@contoso.com,0012345,{S1},30,Token2,C202\n"  # 2: fine
    f"olaf@contoso.com,12345,{SEED_2.hex()},60,Token2,C202\n"  # 3: hex, leading zeros lost
    f"not-an-upn,0012346,{encode_base32(bytes(range(40, 60)))},45,Token2,C202\n"  # 4
    '"anna@contoso.com,0012347,x,30,Token2,C202"\n'  # 5: Excel's one-column row
    f"helga@contoso.com,0012345,{S1},30,Token2,C202\n"  # 6: duplicate serial and secret
    f"bob@contoso.com,0012348,{'A' * 130},30,,C202\n"  # 7: too long, no manufacturer
    "eve@contoso.com,0012349,JBSWY3DPEHPK3PX0,30,Token2\n"  # 8: 5 columns
    "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com,0012350,"
    f"{encode_base32(bytes(range(60, 80)))},30,Token2,C202\n"  # 9: a guest
    "ivan@contoso.com,0012351,JBSWY3DPEHPK3PX0JBSWY3DP,30,Token2,C202\n"  # 10: 0 is not base32
    "\n"  # 11: empty line
    f"jo@contoso.com,1.1E+06,{encode_base32(bytes(range(80, 100)))},30,Token2,C202\n"  # 12
    f"kim@contoso.com,0012353,{encode_base32(bytes(range(100, 120)))[:-2]},30,Token2,C202\n"
    f"lea@contoso.com,0012354,{encode_base32(bytes(range(120, 140)))},,Token2,\n"  # 14
)
EXPECTED = {
    (3, "secret key", Code.SECRET_HEX),
    (3, "serial number", Code.SERIAL_LEADING_ZEROS),
    (3, "secret key", Code.SECRET_DUPLICATE),  # the seed of line 2, written in hex
    (4, "upn", Code.UPN_INVALID),
    (4, "time interval", Code.INTERVAL_INVALID),
    (5, "", Code.ONE_COLUMN_ROW),
    (6, "serial number", Code.SERIAL_DUPLICATE),
    (6, "secret key", Code.SECRET_DUPLICATE),
    (7, "secret key", Code.SECRET_TOO_LONG),
    (7, "manufacturer", Code.VALUE_EMPTY),
    (8, "", Code.COLUMN_COUNT),
    (9, "upn", Code.UPN_INVALID),
    (10, "secret key", Code.SECRET_NOT_BASE32),
    (12, "serial number", Code.SERIAL_SCIENTIFIC),
    (13, "secret key", Code.SECRET_INVALID),
    (14, "time interval", Code.INTERVAL_INVALID),
    (14, "model", Code.VALUE_EMPTY),
}


def test_every_problem_of_a_broken_file_with_its_line(tmp_path: Path) -> None:
    data = BROKEN.replace(SEED_2.hex(), SEED_1.hex())  # line 3: the seed of line 2, in hex
    result = parse_entra_csv(from_disk(tmp_path, data.encode()))
    found = {(p.line, p.column, p.code) for p in result.problems}
    assert found == EXPECTED
    assert {(p.line, p.code) for p in result.form_problems} == {(11, Code.EMPTY_LINE)}
    assert [t.line for t in result.tokens] == [2]
    assert_well_formed(result.problems)
    messages = {(p.line, p.code): p.render("order.csv") for p in result.problems}
    assert (
        "order.csv:3: column 'secret key': the secret key looks like hex"
        in (messages[(3, Code.SECRET_HEX)])
    )
    assert "--fix NEW.csv" in messages[(3, Code.SECRET_HEX)]
    assert "same secret as line 2" in messages[(3, Code.SECRET_DUPLICATE)]
    assert "5 digits where its siblings have 7" in messages[(3, Code.SERIAL_LEADING_ZEROS)]
    assert "user not found" in messages[(5, Code.ONE_COLUMN_ROW)]
    assert "same serial number as line 2" in messages[(6, Code.SERIAL_DUPLICATE)]
    assert "at most 128" in messages[(7, Code.SECRET_TOO_LONG)]
    assert "guest account" in messages[(9, Code.UPN_INVALID)]
    assert "scientific notation" in messages[(12, Code.SERIAL_SCIENTIFIC)]
    assert_no_secret(
        [p.render("order.csv") for p in result.problems + result.form_problems],
        [SEED_1, SEED_2, bytes(range(40, 60)), bytes(range(100, 120))],
    )


def test_the_user_limit_is_counted_over_the_file_and_configurable() -> None:
    rows = "".join(
        f"helga@contoso.com,{7000000 + i},{encode_base32(bytes([i + 1]) * 20)},30,Token2,C202\n"
        for i in range(7)
    )
    data = (ENTRA_HEADER + "\n" + rows).encode()
    over = parse_entra_csv(data)
    assert [(p.line, p.column, p.code) for p in over.problems] == [
        (7, "upn", Code.USER_OVER_LIMIT),
        (8, "upn", Code.USER_OVER_LIMIT),
    ]
    assert "more than 5 tokens" in over.problems[0].message
    assert [t.line for t in over.tokens] == [2, 3, 4, 5, 6]
    assert parse_entra_csv(data, max_per_user=7).problems == []
    assert len(parse_entra_csv(data, max_per_user=2).problems) == 5


def test_leading_zeros_are_compared_within_one_model() -> None:
    rows = [
        f"a@contoso.com,60234567,{encode_base32(bytes([1]) * 20)},30,Token2,C202",
        f"b@contoso.com,60234568,{encode_base32(bytes([2]) * 20)},30,Token2,C202",
        f"c@contoso.com,234569,{encode_base32(bytes([3]) * 20)},30,Token2,C202",
        # another model with shorter serials is not a lost-zeros case
        f"d@contoso.com,1234,{encode_base32(bytes([4]) * 20)},30,Other,T1",
    ]
    result = parse_entra_csv((ENTRA_HEADER + "\n" + "\n".join(rows)).encode())
    assert [(p.line, p.code) for p in result.problems] == [(4, Code.SERIAL_LEADING_ZEROS)]


@pytest.mark.parametrize(
    ("data", "code", "rows_still_checked"),
    [
        # the header forgotten: the first row is a token, and every row is still checked
        ("\n".join([*GOOD_ROWS, "x,1,2,3,4,5"]), Code.HEADER_MISSING, True),
        # two names wrong: said column by column, and the rows are still checked
        (
            GOOD.replace("serial number", "serial").replace("model", "type") + "x,1,2,3,4,5",
            Code.HEADER_COLUMN,
            True,
        ),
        # the header saved in one cell
        ('"' + ENTRA_HEADER + '"\n' + GOOD_ROWS[0], Code.HEADER_IN_ONE_CELL, False),
        # a different file altogether
        ("User,Secret\nhelga@contoso.com," + S1, Code.HEADER_UNKNOWN, False),
        ("", Code.EMPTY_FILE, False),
        ("\n\n ,, \n", Code.EMPTY_FILE, False),
    ],
)
def test_header_problems(data: str, code: Code, rows_still_checked: bool) -> None:
    result = parse_entra_csv(data.encode())
    assert code in {p.code for p in result.problems}
    assert_well_formed(result.problems)
    row_problems = [p for p in result.problems if p.code is Code.UPN_INVALID]
    assert bool(row_problems) == rows_still_checked
    assert_no_secret([p.render("f.csv") for p in result.problems], [SEED_1, SEED_2])


def test_damaged_header_names_each_wrong_column() -> None:
    result = parse_entra_csv(GOOD.replace("serial number", "serial").encode())
    assert [(p.line, p.column, p.code) for p in result.problems] == [
        (1, "serial number", Code.HEADER_COLUMN)
    ]
    assert "column 2 of the header should be 'serial number'" in result.problems[0].message


def test_a_file_in_a_windows_code_page_is_reported() -> None:
    data = GOOD.replace("Token2", "Tökén").encode("cp1252")
    result = parse_entra_csv(data)
    assert result.encoding == "cp1252"
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.ENCODING)]
    assert "from line 2 on" in result.problems[0].message
    assert "CSV UTF-8" in result.problems[0].fix
    assert {t.manufacturer for t in result.tokens} == {"Tökén"}  # the likely reading


def test_an_unclosed_quote_is_reported_where_it_opens() -> None:
    data = GOOD + f'sam@contoso.com,1100000003,"{S1},30,Token2,C202\nmore,lines\n'
    result = parse_entra_csv(data.encode())
    assert [(p.line, p.code) for p in result.problems] == [(4, Code.MULTILINE_VALUE)]


def test_a_secret_that_is_probably_hex_is_a_warning() -> None:
    # valid base32 (only a-f and 2-7), but made of hex digits: the portal takes it, wrongly
    data = ENTRA_HEADER + "\nhelga@contoso.com,1,2234567abcdef2234567abcdef22,30,Token2,C202\n"
    result = parse_entra_csv(data.encode())
    assert result.ready_to_upload
    assert [(w.line, w.code) for w in result.warnings] == [(2, Code.SECRET_MAYBE_HEX)]


def test_spaces_in_a_secret_are_read_but_not_uploaded() -> None:
    grouped = " ".join(S1[i : i + 4] for i in range(0, len(S1), 4)).lower()
    result = parse_entra_csv(GOOD.replace(S1, grouped).encode())
    assert result.ok
    assert result.tokens[0].secret == SEED_1
    assert [(p.line, p.code) for p in result.form_problems] == [(2, Code.SECRET_SEPARATORS)]


def test_writer_round_trip_header_spellings_and_enabled() -> None:
    tokens = parse_entra_csv(GOOD.encode()).tokens
    text = write_entra_csv(tokens, header_spelling="timeinterval")
    assert text.splitlines()[0] == "upn,serial number,secret key,timeinterval,manufacturer,model"
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 3
    again = parse_entra_csv(text.encode())
    assert again.ready_to_upload
    assert again.warnings == []
    assert again.tokens == tokens
    with_enabled = write_entra_csv(
        [EntraToken(2, "a@b.cd", "1", SEED_1, 30, "T", "M", enabled=False)], enabled_column=True
    )
    assert with_enabled.splitlines()[1].endswith(",false")
    assert [t.enabled for t in parse_entra_csv(with_enabled.encode()).tokens] == [False]
    with pytest.raises(ValueError, match="header spelling"):
        write_entra_csv(tokens, header_spelling="Time Interval")


def test_writer_refuses_formulas_rather_than_changing_them() -> None:
    # Escaping (a leading apostrophe) would upload a value other than the one stored.
    good = EntraToken(2, "helga@contoso.com", "1", SEED_1, 30, "Token2", "C202")
    for field in ("upn", "serial", "manufacturer", "model"):
        for value in ("=1+1@x.com", '=HYPERLINK("http://x")', "+cmd", "@SUM(1)", "-2"):
            changes: dict[str, Any] = {field: value}
            evil = dataclasses.replace(good, **changes)
            with pytest.raises(ValueError, match="starts like a spreadsheet formula"):
                write_entra_csv([good, evil])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_tokens_or_problems(data: bytes) -> None:
    result = parse_entra_csv(data)
    assert_well_formed(result.problems + result.form_problems + result.warnings)
    bad_lines = {p.line for p in result.problems}
    assert all(t.line not in bad_lines for t in result.tokens)
    if not result.problems:
        assert result.tokens or not data.strip()


CSV_PIECES = st.sampled_from(
    [*"aZ27@.,;\t\"' =+-\n\r", "é", "\x00", "\x1b", S1, S1[:8], "30", "60", "helga@contoso.com"]
)
CELLS = st.lists(CSV_PIECES, max_size=4).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(CELLS, max_size=8), max_size=8))
def test_csv_like_text_never_breaks_the_reader(rows: list[list[str]]) -> None:
    text = ENTRA_HEADER + "\n" + "\n".join(",".join(cells) for cells in rows)
    result = parse_entra_csv(text.encode())
    assert_well_formed(result.problems + result.form_problems + result.warnings)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}\.com", fullmatch=True),
            st.from_regex(r"[0-9A-Z]{4,12}", fullmatch=True),
            st.binary(min_size=10, max_size=64),
            st.sampled_from([30, 60]),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
        unique_by=(lambda r: r[1], lambda r: r[2]),
    ),
    st.sampled_from(["time interval", "timeinterval"]),
)
def test_write_then_read(rows: list[tuple[str, str, bytes, int, bool]], spelling: str) -> None:
    # one length for the all-digit serials, so the leading-zeros check has nothing to say
    tokens = [
        EntraToken(i + 2, upn, serial.rjust(12, "X"), secret, period, "Token2", "C202", enabled)
        for i, (upn, serial, secret, period, enabled) in enumerate(rows)
    ]
    text = write_entra_csv(tokens, header_spelling=spelling, enabled_column=True)
    result = parse_entra_csv(text.encode(), max_per_user=10)
    assert result.problems == []
    assert result.form_problems == []
    assert result.header_spelling == spelling
    assert result.tokens == tokens


def test_a_header_without_tokens_is_not_ready() -> None:
    result = parse_entra_csv((ENTRA_HEADER + "\r\n\r\n").encode())
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.EMPTY_FILE)]
    assert not result.ready_to_upload
