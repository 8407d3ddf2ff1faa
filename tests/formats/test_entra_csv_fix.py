"""`lint --fix`'s corrected copy: what is mechanical is repaired, the rest left for a person."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.errors import InvalidInput
from oathdesk.formats.entra_csv import EntraToken, parse_entra_csv, write_entra_csv
from oathdesk.formats.entra_csv_fix import fix_entra_csv
from oathdesk.formats.problems import Code
from oathdesk.seed import encode_base32
from tests.formats.helpers import ENTRA_HEADER, assert_no_secret

SEEDS = [bytes(range(i, i + 20)) for i in (0, 20, 40, 60)]


def test_an_excel_mangled_file_comes_out_ready_to_upload() -> None:
    rows = [
        f"helga@contoso.com;1100000001;{SEEDS[0].hex()};30;Token2;C202",  # hex
        f'"olaf@contoso.com;1100000002;{encode_base32(SEEDS[1])};60;Token2;C202"',  # one column
        "",
        f" anna@contoso.com ;1100000003;{encode_base32(SEEDS[2]).lower()};30;Token2;C202;;",
        # as "Can't scan image?" shows it: in groups, with padding
        "bob@contoso.com;1100000004;"
        + " ".join(encode_base32(SEEDS[3])[i : i + 4] for i in range(0, 32, 4))
        + "====;30;Token2;C202",
    ]
    text = ENTRA_HEADER.replace(",", ";") + "\r\n" + "\r\n".join(rows) + "\r\n"
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    before = parse_entra_csv(data)
    assert not before.ready_to_upload
    fixed = fix_entra_csv(data)
    after = parse_entra_csv(fixed.text.encode())
    assert after.lint_problems == []
    assert after.ready_to_upload
    assert (after.encoding, after.delimiter) == ("utf-8", ",")
    assert [t.secret for t in after.tokens] == SEEDS
    assert [t.serial for t in after.tokens] == [f"110000000{i}" for i in range(1, 5)]
    assert fixed.hex_converted == 1
    assert fixed.changes == [
        "re-encoded from utf-16 to UTF-8",
        "semicolons replaced by commas",
        "converted 1 hex secret(s) to base32",
        "removed spaces, dashes or padding from 1 secret(s)",
        "removed 1 empty line(s)",
        "removed blanks around values on 1 row(s)",
        "removed empty trailing columns on 1 row(s)",
        "split 1 row(s) saved in one column",
    ]
    assert_no_secret([*fixed.changes, repr(fixed)], SEEDS)


def test_what_needs_a_person_is_left_alone() -> None:
    data = (
        ENTRA_HEADER + "\n"
        f"not-a-upn,0012345,{encode_base32(SEEDS[0])},45,Token2,C202\n"
        f"olaf@contoso.com,12346,{encode_base32(SEEDS[1])},30,Token2,C202\n"
    ).encode()
    fixed = fix_entra_csv(data)
    assert fixed.changes == []
    assert fixed.text == data.decode().replace("\n", "\r\n")
    codes = {p.code for p in parse_entra_csv(fixed.text.encode()).problems}
    assert codes == {Code.UPN_INVALID, Code.INTERVAL_INVALID, Code.SERIAL_LEADING_ZEROS}


def test_a_missing_header_is_inserted_and_a_bom_removed() -> None:
    data = codecs.BOM_UTF8 + f"helga@contoso.com,1,{encode_base32(SEEDS[0])},30,T,M\n".encode()
    fixed = fix_entra_csv(data)
    assert fixed.changes == ["removed the byte-order mark", "inserted the header row"]
    assert fixed.text.splitlines()[0] == ENTRA_HEADER
    assert parse_entra_csv(fixed.text.encode()).ready_to_upload


def test_hostile_cells_stay_inert() -> None:
    data = f"{ENTRA_HEADER}\n=cmd|' /C calc'!A0,1,{encode_base32(SEEDS[0])},30,T,M\n".encode()
    assert fix_entra_csv(data).text.splitlines()[1].startswith("'=cmd|")


@pytest.mark.parametrize("data", [b"", b"User,Secret\nhelga@contoso.com,JBSWY3DP\n"])
def test_a_file_that_is_not_an_entra_csv_is_not_fixed(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="not the Entra OATH CSV header"):
        fix_entra_csv(data)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=10, max_size=40), st.sampled_from([30, 60])),
        min_size=1,
        max_size=5,
        unique_by=lambda r: r[0],
    )
)
def test_a_file_oathdesk_wrote_needs_no_fixing(rows: list[tuple[bytes, int]]) -> None:
    tokens = [
        EntraToken(i + 2, f"u{i}@contoso.com", f"S{i}", secret, period, "Token2", "C202")
        for i, (secret, period) in enumerate(rows)
    ]
    written = write_entra_csv(tokens)
    fixed = fix_entra_csv(written.encode())
    assert fixed.changes == []
    assert fixed.text == written
