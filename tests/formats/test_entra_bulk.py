"""A clean Entra CSV is read in bulk (formats/entra_bulk.py); the result must be exactly what the
row-by-row reader gives, for clean files and for every kind of file the bulk checks turn away."""

from __future__ import annotations

import base64
import random

import pytest

from oathdesk.formats import entra_csv
from oathdesk.formats.entra_bulk import read_clean
from oathdesk.formats.entra_csv import EntraCsv, parse_entra_csv
from oathdesk.formats.text import decode

HEADER = "upn,serial number,secret key,time interval,manufacturer,model"


def _secret(rng: random.Random, size: int = 20) -> str:
    return base64.b32encode(rng.randbytes(size)).decode().rstrip("=")


def _rows(count: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [f"User{i}.Name@contoso.com", f"{60000000 + i}", _secret(rng), "30", "Token2", "C202"]
        for i in range(count)
    ]


def _file(
    rows: list[list[str]], *, header: str = HEADER, end: str = "\n", bom: bool = False
) -> bytes:
    text = end.join([header, *(",".join(row) for row in rows)]) + end
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def _row_by_row(data: bytes, monkeypatch: pytest.MonkeyPatch, max_per_user: int) -> EntraCsv:
    with monkeypatch.context() as patched:
        patched.setattr(entra_csv, "read_clean", lambda text, max_per_user: None)
        return parse_entra_csv(data, max_per_user=max_per_user)


def _same(data: bytes, monkeypatch: pytest.MonkeyPatch, max_per_user: int = 5) -> bool:
    """Whether the bulk path took the file; asserts the result equals the row-by-row one."""
    assert parse_entra_csv(data, max_per_user=max_per_user) == _row_by_row(
        data, monkeypatch, max_per_user
    )
    text, _, _ = decode(data)
    return read_clean(text, max_per_user=max_per_user) is not None


def test_clean_files_are_read_in_bulk_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _rows(300)
    rows[5][3] = "60"
    rows[6][4:] = ["token2", "C203"]  # another model, serials of the same length
    rows[7][1] = "ABC-12_x"
    rows[8][2] = _secret(random.Random(1), 10)  # 16 characters, the shortest
    assert _same(_file(rows), monkeypatch)
    assert _same(_file(rows, end="\r\n", bom=True), monkeypatch)
    assert _same(_file(rows, header=HEADER.replace("time interval", "timeinterval")), monkeypatch)
    pair = _rows(2)
    pair[1][0] = pair[0][0].upper()  # one user, two tokens: within the limit
    assert _same(_file(pair), monkeypatch)
    assert parse_entra_csv(_file(pair)).tokens[1].upn == "user0.name@contoso.com"


def _dirty(change: str) -> list[list[str]]:
    rows = _rows(40)
    row = rows[17]
    if change == "lower-case secret":
        row[2] = row[2].lower()
    elif change == "hex-only secret":
        row[2] = "ABCDEF234567ABCDEF234567ABCDEF23"
    elif change == "hex secret":
        row[2] = "00112233445566778899aabbccddeeff00112233"
    elif change == "spaced secret":
        row[2] = row[2][:8] + " " + row[2][8:]
    elif change == "secret of 20 characters":
        row[2] = row[2][:20]
    elif change == "duplicate serial":
        row[1] = rows[3][1]
    elif change == "duplicate serial, other case":
        rows[3][1], row[1] = "abc123", "ABC123"
    elif change == "duplicate secret":
        row[2] = rows[3][2]
    elif change == "user over the limit":
        for other in rows[:6]:
            other[0] = "helga@contoso.com"
    elif change == "lost leading zeros":
        row[1] = row[1][1:]
    elif change == "scientific serial":
        row[1] = "6.02346E+7"
    elif change == "empty upn":
        row[0] = ""
    elif change == "guest":
        row[0] = "helga_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    elif change == "long upn":
        row[0] = "a" * 60 + "@contoso.com"
    elif change == "blank after a value":
        row[4] = "Token2 "
    elif change == "formula":
        row[5] = "=cmd|' /C calc'!A0"
    elif change == "interval":
        row[3] = "45"
    elif change == "empty model":
        row[5] = ""
    elif change == "quoted":
        row[4] = '"Token2"'
    elif change == "seventh column":
        row.append("")
    elif change == "form feed":
        row[4] = "Token\x0c2"
    elif change == "line separator":
        row[5] = "C2\u202802"
    elif change == "accent":
        row[0] = "h\u00e9lga@contoso.com"
    elif change.startswith("line break "):  # the ASCII breaks splitlines knows and csv not
        row[4] = f"Tok{change[-1]}en2"
    elif change == "blank before a serial":
        row[1] = " " + row[1]
    elif change == "tab before a upn":
        row[0] = "\t" + row[0]
    elif change == "blank before a manufacturer":
        row[4] = " Token2"
    elif change == "tab after a model":
        row[5] = "C202\t"
    return rows


@pytest.mark.parametrize(
    "change",
    [
        "lower-case secret",
        "hex-only secret",
        "hex secret",
        "spaced secret",
        "secret of 20 characters",
        "duplicate serial",
        "duplicate serial, other case",
        "duplicate secret",
        "user over the limit",
        "lost leading zeros",
        "scientific serial",
        "empty upn",
        "guest",
        "long upn",
        "blank after a value",
        "formula",
        "interval",
        "empty model",
        "quoted",
        "seventh column",
        "accent",
        "form feed",
        "line separator",
        *(f"line break {brk}" for brk in "\x0b\x0c\x1c\x1d\x1e\x85"),
        "blank before a serial",
        "tab before a upn",
        "blank before a manufacturer",
        "tab after a model",
    ],
)
def test_files_the_bulk_checks_turn_away_are_read_row_by_row(
    change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not _same(_file(_dirty(change)), monkeypatch)


def test_an_empty_line_and_other_separators_go_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(10)
    with_gap = _file(rows).replace(b"\n", b"\n\n", 1)
    assert not _same(with_gap, monkeypatch)
    semicolons = _file([[";".join(row)] for row in rows], header=HEADER.replace(",", ";"))
    assert parse_entra_csv(semicolons) == _row_by_row(semicolons, monkeypatch, 5)
    assert not _same(_file([]), monkeypatch)
    # A lone CR ends a line for the csv module and for the bulk read alike.
    assert _same(_file(rows, end="\r"), monkeypatch)
    assert _same(_file(rows).replace(b"\n", b"\r", 3), monkeypatch)


@pytest.mark.parametrize("bom", [False, True])
def test_an_import_reads_a_clean_file_to_the_records_its_tokens_give(bom: bool) -> None:
    """The reader builds a clean file's records straight from its columns: the same records,
    warnings and columns as from parse_entra_csv's tokens (a byte-order mark: its warning)."""
    from oathdesk.formats.reader import read_seed_file
    from oathdesk.formats.records import SeedRecord

    rows = _rows(50)
    rows[3][3] = "60"
    data = _file(rows, bom=bom, end="\r\n")
    parsed = read_seed_file(data, "entra-csv")
    entra = parse_entra_csv(data)
    assert entra.tokens  # the bulk path took it (the row-by-row reader gives the same tokens)
    assert parsed.records == [
        SeedRecord(t.line, t.secret, t.upn, t.serial, t.manufacturer, t.model, "sha1", 6, t.period)
        for t in entra.tokens
    ]
    assert parsed.records[3].period == 60
    assert parsed.records[0].upn == "user0.name@contoso.com"
    assert (parsed.problems, parsed.warnings) == ([], entra.warnings)
    assert len(parsed.warnings) == int(bom)
    shown = repr(parsed.records[0])
    assert "secret" not in shown
    assert repr(parsed.records[0].secret) not in shown
    assert "user0.name@contoso.com" in shown
