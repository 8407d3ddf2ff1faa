"""The streamed Entra CSV's lines are built from whole columns: the base32 texts together and
the lines joined at once. They must be exactly what ``write_entra_csv`` (the csv module, a
row at a time) writes, also for values the joined path cannot take as they are."""

from __future__ import annotations

import base64
import random

import pytest

from oathdesk.formats.entra_csv import EntraToken, write_entra_csv
from oathdesk.formats.entra_export import base32_many, entra_csv_header, entra_csv_rows
from oathdesk.seed import encode_base32

Row = tuple[str, str, bytes, int, str, str]


def _written(rows: list[Row]) -> str:
    """The rows as write_entra_csv writes them, without its header line."""
    text = write_entra_csv([EntraToken(0, *row) for row in rows])
    return text.split("\r\n", 1)[1]


def _columns(rows: list[Row]) -> str:
    upns, serials, secrets, periods, manufacturers, models = zip(*rows, strict=True)
    return entra_csv_rows(upns, serials, secrets, periods, manufacturers, models)


def test_base32_of_many_secrets_is_each_ones_base32() -> None:
    chosen = random.Random(15)
    for length in (0, 1, 4, 5, 10, 16, 20, 32, 64, 80):
        one_length = [chosen.randbytes(length) for _ in range(7)]
        assert base32_many(one_length) == [encode_base32(s) for s in one_length]
    mixed = [chosen.randbytes(chosen.choice((0, 3, 5, 16, 20, 20, 35))) for _ in range(300)]
    assert base32_many(mixed) == [encode_base32(s) for s in mixed]
    # Every byte value in every position of a 5-byte group.
    every = bytes(range(256)) * 5
    assert base32_many([every]) == [base64.b32encode(every).decode()]
    assert base32_many([]) == []


def test_plain_rows_are_the_csv_modules_lines() -> None:
    chosen = random.Random(7)
    rows: list[Row] = [
        (f"p{i}@contoso.com", f"{60000000 + i}", chosen.randbytes(20), 30, "Token2", "C202")
        for i in range(50)
    ]
    rows.append(("q@contoso.com", "7", chosen.randbytes(32), 60, "Token2", "miniOTP-2-i"))
    assert _columns(rows) == _written(rows)
    assert entra_csv_header("timeinterval").startswith("upn,serial number,secret key,timeinterval")


@pytest.mark.parametrize(
    "model",
    ['C202, rev "b"', "C202\nsecond line", "C202\r", "", " C202", "Çelik", "'C202"],
)
def test_values_the_joined_lines_cannot_take_are_written_by_the_csv_module(model: str) -> None:
    """A comma, quote or line break is quoted, an empty or unusual start is left as the csv
    module leaves it: the same bytes either way."""
    rows: list[Row] = [
        ("a@contoso.com", "1", bytes(range(20)), 30, "Token2", "C202"),
        ("b@contoso.com", "2", bytes(range(1, 21)), 30, "Token2", model),
    ]
    assert _columns(rows) == _written(rows)


def test_a_value_that_starts_like_a_formula_is_refused_by_its_position() -> None:
    rows: list[Row] = [
        ("a@contoso.com", "1", bytes(20), 30, "Token2", "C202"),
        ("b@contoso.com", "2", bytes(20), 30, "=HYPERLINK(1)", "C202"),
    ]
    upns, serials, secrets, periods, manufacturers, models = zip(*rows, strict=True)
    with pytest.raises(ValueError, match="token at position 12 ") as refused:
        entra_csv_rows(upns, serials, secrets, periods, manufacturers, models, first_position=11)
    assert "HYPERLINK" not in str(refused.value)


def test_a_token_without_a_user_is_an_empty_upn() -> None:
    written = entra_csv_rows([None], ["1"], [bytes(20)], [30], ["Token2"], ["C202"])
    assert written == _written([("", "1", bytes(20), 30, "Token2", "C202")])
