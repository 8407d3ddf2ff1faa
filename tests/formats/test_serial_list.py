"""A vendor's serial,secret list: with or without a header, base32 or hex by the spreadsheet's
rule for a secret column, every problem with its line and column, detected from its rows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.formats.detect import FileFormat, UnknownFormat, detect_format
from oathdesk.formats.problems import Code
from oathdesk.formats.reader import read_seed_file
from oathdesk.formats.seed_cell import ALL_DIGITS_MESSAGE
from oathdesk.formats.serial_list import looks_like_serial_list, parse_serial_list
from oathdesk.seed import encode_base32
from tests.formats.helpers import assert_no_secret, assert_well_formed

HEADERS = {
    "none": None,
    "plain": ("Serial", "Secret"),
    "reversed": ("Seed", "Serial number"),
    "hex": ("SN", "Secret (hex)"),
}
rows = st.lists(
    st.tuples(
        st.from_regex(r"[A-Z0-9]{6,14}", fullmatch=True), st.binary(min_size=16, max_size=40)
    ),
    min_size=1,
    max_size=15,
    unique_by=(lambda r: r[0], lambda r: r[1]),
)


def write(items: list[tuple[str, bytes]], header: str, delimiter: str, hex_secrets: bool) -> bytes:
    names = HEADERS[header]
    lines = [delimiter.join(names)] if names else []
    for serial, secret in items:
        spelled = secret.hex() if header == "hex" or hex_secrets else encode_base32(secret)
        pair = (spelled, serial) if header == "reversed" else (serial, spelled)
        lines.append(delimiter.join(pair))
    return ("\r\n".join(lines) + "\r\n").encode()


@settings(max_examples=80, deadline=None)
@given(
    items=rows,
    header=st.sampled_from(sorted(HEADERS)),
    delimiter=st.sampled_from([",", ";", "\t"]),
    digits_only=st.booleans(),
)
def test_round_trip_with_or_without_a_header(
    items: list[tuple[str, bytes]], header: str, delimiter: str, digits_only: bool
) -> None:
    # Without a hex header, a hex secret is read as hex when it is all digits (32 or more):
    # such secrets are made all digits here, the others are written in base32.
    if digits_only:
        items = [(s, bytes(b % 10 for b in secret)) for s, secret in items]
        items = list({secret: (s, secret) for s, secret in items}.values())
    data = write(items, header, delimiter, hex_secrets=digits_only)
    assert detect_format(data) is FileFormat.SERIAL_LIST
    parsed = read_seed_file(data)
    assert parsed.problems == []
    assert [(r.serial, r.secret, r.upn, r.period, r.algorithm) for r in parsed.records] == [
        (serial, secret, None, 30, "sha1") for serial, secret in items
    ]


SEEDS = [bytes([n]) * 20 for n in range(1, 5)]
BROKEN = (
    "serial,secret\n"  # 1
    f"60234567,{encode_base32(SEEDS[0])}\n"  # 2: fine
    "60234568,86596120001\n"  # 3: a serial pasted as the secret
    f"60234567,{encode_base32(SEEDS[1])}\n"  # 4: serial of line 2 again
    f",{encode_base32(SEEDS[2])}\n"  # 5: no serial
    "60234570\n"  # 6: no secret
    f"60234571,{encode_base32(SEEDS[0])}\n"  # 7: seed of line 2 again
    f"@SUM(1),{encode_base32(SEEDS[3])}\n"  # 8: a formula
    f"60234573,{encode_base32(SEEDS[3])},x\n"  # 9: three values
    "60234574,313233\n"  # 10: too short for a hex seed
)
EXPECTED = {
    (3, "secret", Code.SECRET_INVALID),
    (4, "serial", Code.SERIAL_DUPLICATE),
    (5, "serial", Code.SERIAL_EMPTY),
    (6, "secret", Code.SECRET_EMPTY),
    (7, "secret", Code.SECRET_DUPLICATE),
    (8, "serial", Code.FORMULA_CELL),
    (9, "", Code.COLUMN_COUNT),
    (10, "secret", Code.SECRET_INVALID),
}


def test_every_problem_with_its_line_and_column() -> None:
    parsed = parse_serial_list(BROKEN.encode())
    assert {(p.line, p.column, p.code) for p in parsed.problems} == EXPECTED
    assert [r.line for r in parsed.records] == [2]
    assert_well_formed(parsed.problems)
    messages = {p.line: p.message for p in parsed.problems if p.code is Code.SECRET_INVALID}
    assert messages[3] == ALL_DIGITS_MESSAGE  # the spreadsheet's rule, word for word
    assert_no_secret([p.render("list.csv") for p in parsed.problems], SEEDS)


@pytest.mark.parametrize(
    "text",
    [
        "helga@contoso.com,JBSWY3DPEHPK3PXP\n",  # a user, not a serial
        "60234567,JBSWY3DPEHPK3PXP,30\n",  # three columns
        "60234567,not a secret at all\n60234568,nor this\n",  # nothing reads as a seed
    ],
)
def test_other_two_column_files_are_not_taken_for_a_serial_list(text: str) -> None:
    with pytest.raises(UnknownFormat, match="cannot tell the format"):
        detect_format(text.encode())


def test_an_empty_list_and_a_header_without_tokens() -> None:
    assert [(p.line, p.code) for p in parse_serial_list(b"").problems] == [(0, Code.EMPTY_FILE)]
    assert [(p.line, p.code) for p in parse_serial_list(b"Serial,Secret\n").problems] == [
        (1, Code.EMPTY_FILE)
    ]


@settings(max_examples=300, deadline=None)
@given(secret=st.binary(min_size=1, max_size=130), lower=st.booleans())
def test_the_fast_base32_path_reads_what_the_general_parser_reads(
    secret: bytes, lower: bool
) -> None:
    from oathdesk.formats.seed_cell import read_secret_cell, read_seed

    text = encode_base32(secret).rstrip("=")
    text = text.lower() if lower else text
    fast, general = read_secret_cell(text), read_seed(text)
    if text.isdigit():
        return  # the all-digit rule of a secret column, tested above
    if isinstance(general, str):
        assert isinstance(fast, str)
    else:
        assert not isinstance(fast, str)
        assert (fast.secret, fast.form) == (general.secret, general.form)


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=300).map(str.encode)))
def test_the_stock_readers_never_raise_on_any_input(data: bytes) -> None:
    from oathdesk.formats.graph_csv import looks_like_graph_csv, parse_graph_csv

    for parsed in (parse_serial_list(data), parse_graph_csv(data)):
        assert_well_formed(parsed.problems)
    text = data.decode("utf-8", "replace")
    looks_like_graph_csv(text)
    looks_like_serial_list(text)
    graph = parse_graph_csv(
        b"serialNumber,secretKey,timeIntervalInSeconds,manufacturer,model\n" + data
    )
    assert_well_formed(graph.problems)
