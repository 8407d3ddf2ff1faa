"""The Graph-style stock CSV: any column order and header case, each value by the portal's rules,
every problem with its line and column, detected from its header."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.formats.detect import FileFormat, detect_format
from oathdesk.formats.graph_csv import parse_graph_csv
from oathdesk.formats.problems import Code
from oathdesk.formats.reader import read_seed_file
from oathdesk.seed import encode_base32
from tests.formats.helpers import (
    GRAPH_COLUMNS,
    StockToken,
    assert_no_secret,
    assert_well_formed,
    graph_style_csv,
    stock_tokens,
)

REQUIRED = GRAPH_COLUMNS[:5]

stock = st.lists(
    st.builds(
        StockToken,
        serial=st.from_regex(r"[A-Z0-9]{6,12}", fullmatch=True),
        secret=st.binary(min_size=10, max_size=64),
        period=st.sampled_from([30, 60]),
        algorithm=st.sampled_from(["sha1", "sha256"]),
        manufacturer=st.sampled_from(["Token2", "Contoso", "Feitian"]),
        model=st.sampled_from(["C202", "Hardware Token 1000", "OTP c100"]),
    ),
    min_size=1,
    max_size=20,
    unique_by=(lambda t: t.serial.upper(), lambda t: t.secret),
)


def _shuffled_case(name: str, flips: list[bool]) -> str:
    return "".join(
        c.swapcase() if flip else c for c, flip in zip(name, flips * len(name), strict=False)
    )


@settings(max_examples=60, deadline=None)
@given(
    tokens=stock,
    order=st.permutations(GRAPH_COLUMNS),
    with_hash=st.booleans(),
    flips=st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_round_trip_in_any_column_order_and_header_case(
    tokens: list[StockToken], order: list[str], with_hash: bool, flips: list[bool]
) -> None:
    columns = [c for c in order if with_hash or c != "hashFunction"]
    if not with_hash:
        tokens = [
            StockToken(t.serial, t.secret, t.period, "sha1", t.manufacturer, t.model)
            for t in tokens
        ]
    data = graph_style_csv(
        tokens, columns=columns, header=[_shuffled_case(c, flips) for c in columns]
    ).encode()
    assert detect_format(data) is FileFormat.GRAPH_CSV
    parsed = read_seed_file(data)
    assert parsed.problems == []
    got = [
        (r.serial, r.secret, r.period, r.algorithm, r.manufacturer, r.model, r.upn, r.digits)
        for r in parsed.records
    ]
    want = [
        (t.serial, t.secret, t.period, t.algorithm, t.manufacturer, t.model, None, 6)
        for t in tokens
    ]
    assert got == want


def test_the_fixture_generator_is_the_same_every_run_and_reads_back() -> None:
    text = graph_style_csv(1000)
    assert text == graph_style_csv(1000)
    assert text.splitlines()[0] == ",".join(GRAPH_COLUMNS)
    parsed = parse_graph_csv(text.encode())
    assert parsed.problems == []
    assert len(parsed.records) == 1000
    tokens = stock_tokens(1000)
    assert [(r.serial, r.secret, r.period, r.algorithm) for r in parsed.records] == [
        (t.serial, t.secret, t.period, t.algorithm) for t in tokens
    ]
    assert {t.algorithm for t in tokens} == {"sha1", "sha256"}
    assert {t.period for t in tokens} == {30, 60}
    assert graph_style_csv(3, rng_seed=1) != graph_style_csv(3, rng_seed=2)


S1, S2, S3 = (encode_base32(bytes([n]) * 20) for n in (1, 2, 3))
BROKEN = (
    "Model;SerialNumber;SecretKey;TimeIntervalInSeconds;Manufacturer;HashFunction\n"  # 1
    f"C202;1100000001;{S1};30;Token2;hmacsha1\n"  # 2: fine
    f"C202;1100000002;{(bytes([4]) * 20).hex()};45;Token2;hmacsha512\n"  # 3: hex, 45 s, sha512
    f"C202;1100000001;{S1};30;Token2;\n"  # 4: serial and secret of line 2 again
    f";;{S3};60;;HMACSHA256\n"  # 5: no model, serial, manufacturer
    f"=HYPERLINK(1);1100000005;{S2};30;Token2;hmacsha256\n"  # 6: a formula
    f"C202;1100000006;{S2[:-3]}0;30;Token2;hmacsha256;extra\n"  # 7: a column too many
    f"C202;1100000007;{S2[:-3]}0;30;Token2;hmacsha256\n"  # 8: 0 is not base32
)
EXPECTED = {
    (3, "SecretKey", Code.SECRET_HEX),
    (3, "TimeIntervalInSeconds", Code.INTERVAL_INVALID),
    (3, "HashFunction", Code.HASH_UNSUPPORTED),
    (4, "SerialNumber", Code.SERIAL_DUPLICATE),
    (4, "SecretKey", Code.SECRET_DUPLICATE),
    (5, "Model", Code.VALUE_EMPTY),
    (5, "SerialNumber", Code.SERIAL_EMPTY),
    (5, "Manufacturer", Code.VALUE_EMPTY),
    (6, "Model", Code.FORMULA_CELL),
    (7, "", Code.COLUMN_COUNT),
    (8, "SecretKey", Code.SECRET_NOT_BASE32),
}


def test_every_problem_with_its_line_and_the_column_as_the_file_names_it() -> None:
    parsed = read_seed_file(BROKEN.encode())
    assert parsed.format == "graph-csv"
    assert {(p.line, p.column, p.code) for p in parsed.problems} == EXPECTED
    assert [r.line for r in parsed.records] == [2]
    assert_well_formed(parsed.problems)
    rendered = [p.render("stock.csv") for p in parsed.problems]
    hex_line = next(r for r in rendered if r.startswith("stock.csv:3: column 'SecretKey'"))
    assert "Graph rejects" in hex_line
    assert "entra-csv lint" not in hex_line
    assert_no_secret(rendered, [bytes([n]) * 20 for n in (1, 2, 3, 4)])


def test_a_missing_column_is_named_and_unknown_ones_are_a_warning() -> None:
    data = graph_style_csv(2, columns=["serialNumber", "secretKey", "timeIntervalInSeconds"])
    parsed = parse_graph_csv(data.encode())
    assert [(p.line, p.code) for p in parsed.problems] == [(1, Code.HEADER_COLUMN)]
    assert "manufacturer, model" in parsed.problems[0].message
    extra = graph_style_csv(2).replace("hashFunction", "hashFunction,owner", 1)
    extra = extra.replace("\r\n", ",x\r\n").replace(",owner,x", ",owner", 1)
    parsed = parse_graph_csv(extra.encode())
    assert parsed.problems == []
    assert len(parsed.records) == 2
    assert [(w.line, w.code) for w in parsed.warnings] == [(1, Code.HEADER_COLUMN)]
    assert "'owner'" in parsed.warnings[0].message


def test_an_empty_file_and_a_header_without_tokens() -> None:
    assert [p.code for p in parse_graph_csv(b"").problems] == [Code.EMPTY_FILE]
    header_only = graph_style_csv(0).encode()
    assert [(p.line, p.code) for p in parse_graph_csv(header_only).problems] == [
        (1, Code.EMPTY_FILE)
    ]


def test_the_entra_header_is_not_taken_for_graphs() -> None:
    entra = f"upn,serial number,secret key,time interval,manufacturer,model\n,1,{S1},30,T,M\n"
    assert detect_format(entra.encode()) is FileFormat.ENTRA_CSV


secret_texts = st.one_of(
    st.binary(min_size=0, max_size=90).map(encode_base32),
    st.binary(min_size=0, max_size=90).map(lambda b: encode_base32(b).lower()),
    st.binary(min_size=0, max_size=70).map(bytes.hex),
    st.text(alphabet="ABCDEF234567", min_size=0, max_size=40),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(secret_texts, max_size=12))
def test_checking_a_secret_column_in_bulk_is_checking_each_secret(texts: list[str]) -> None:
    from oathdesk.formats.entra_rules import check_secret, check_secrets

    def seen(check: object) -> tuple[object, ...]:
        from oathdesk.formats.entra_rules import SecretCheck

        assert isinstance(check, SecretCheck)
        return (
            check.secret,
            check.fingerprint,
            [(p.line, p.code, p.message) for p in check.problems],
            [(p.line, p.code) for p in check.form_problems],
            [(p.line, p.code) for p in check.warnings],
        )

    lines = list(range(2, len(texts) + 2))
    bulk = check_secrets(lines, "secretKey", texts)
    assert [seen(c) for c in bulk] == [
        seen(check_secret(line, "secretKey", text)) for line, text in zip(lines, texts, strict=True)
    ]
