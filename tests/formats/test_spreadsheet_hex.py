"""All-digit hex seeds in a spreadsheet's secret column (issue 13, item 7): decoded as hex when
the header says hex or the value has a hex seed's length; a serial pasted there is still
refused."""

from __future__ import annotations

import pytest

from oathdesk.formats.problems import Code
from oathdesk.formats.spreadsheet import HEX_SEED_MIN_DIGITS, parse_spreadsheet
from oathdesk.seed import encode_base32
from tests.formats.helpers import xlsx_bytes

# RFC 4226 appendix D: the secret "12345678901234567890", in hex all digits.
RFC4226_HEX = "3132333435363738393031323334353637383930"
RFC4226 = b"12345678901234567890"


@pytest.mark.parametrize("header", ["Secret", "Secret key", "Seed", "Key", "Secret (hex)"])
def test_the_rfc_4226_hex_seed_in_a_secret_column(header: str) -> None:
    for data in (
        xlsx_bytes([["UPN", "Serial", header], ["helga@contoso.com", "86596120001", RFC4226_HEX]]),
        f"User,Serial,{header}\nhelga@contoso.com,86596120001,{RFC4226_HEX}\n".encode(),
    ):
        parsed = parse_spreadsheet(data)
        assert parsed.problems == []
        assert [r.secret for r in parsed.records] == [RFC4226]


def test_a_hex_header_reads_every_value_as_hex() -> None:
    short_digits = "31323334353637383930"  # 10 bytes, all digits, under the length rule
    mixed = bytes(range(0xA0, 0xB4)).hex()  # hex letters and digits: base32 letters too
    sheet = f"User,Seed (hex)\nhelga@contoso.com,{short_digits}\nolaf@contoso.com,{mixed.upper()}\n"
    parsed = parse_spreadsheet(sheet.encode())
    assert parsed.problems == []
    assert [r.secret for r in parsed.records] == [b"1234567890", bytes(range(0xA0, 0xB4))]


@pytest.mark.parametrize("value", ["8659612000123", "86596120001", "1" * (HEX_SEED_MIN_DIGITS - 2)])
def test_a_serial_in_a_secret_column_is_still_refused(value: str) -> None:
    parsed = parse_spreadsheet(f"User,Secret\nhelga@contoso.com,{value}\n".encode())
    assert parsed.records == []
    [problem] = parsed.problems
    assert (problem.line, problem.column, problem.code) == (2, "Secret", Code.SECRET_INVALID)
    assert "serial number" in problem.message
    assert "Secret (hex)" in problem.message


def test_an_odd_count_of_digits_is_refused_not_guessed() -> None:
    parsed = parse_spreadsheet(f"User,Secret\nhelga@contoso.com,{RFC4226_HEX}1\n".encode())
    assert [(p.line, p.code) for p in parsed.problems] == [(2, Code.SECRET_INVALID)]
    assert "even number of digits" in parsed.problems[0].message


def test_base32_and_hex_with_letters_are_read_as_before() -> None:
    seed = bytes(range(20))
    sheet = (
        f"User,Secret\nhelga@contoso.com,{encode_base32(seed)}\n"
        f"olaf@contoso.com,{bytes(range(20, 40)).hex()}\n"
    )
    parsed = parse_spreadsheet(sheet.encode())
    assert parsed.problems == []
    assert [r.secret for r in parsed.records] == [seed, bytes(range(20, 40))]
