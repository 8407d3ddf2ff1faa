"""Tables printed to a pipe are drawn without rich (``cli/table_text.py``), character for
character as rich draws them, so scripts that read `oathdesk token list` see what they always
saw; tables drawn differently are left to rich."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from oathdesk.cli.table_text import boxed_table

ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=24)
ANY_TEXT = st.text(max_size=12)


def _rich(title: str, headings: list[str], rows: list[list[str]]) -> str:
    """What ``print_table`` prints through rich when stdout is not a terminal."""
    table = Table(title=title)
    for heading in headings:
        table.add_column(heading, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out = io.StringIO()
    Console(file=out, width=160, force_terminal=False, color_system=None).print(table)
    return out.getvalue()


WORDS = st.from_regex(r"[A-Za-z0-9.,/()'+-]{1,8}( [A-Za-z0-9.,/()'+-]{1,8}){0,3}", fullmatch=True)


@st.composite
def tables(
    draw: st.DrawFn, text: st.SearchStrategy[str], names: st.SearchStrategy[str] | None = None
) -> tuple[str, list[str], list[list[str]]]:
    names = text.filter(bool) if names is None else names
    columns = draw(st.integers(1, 9))
    headings = draw(st.lists(names, min_size=columns, max_size=columns))
    rows = draw(st.lists(st.lists(text, min_size=columns, max_size=columns), max_size=6))
    return draw(names), headings, rows


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(tables(ASCII, WORDS))
def test_drawn_as_rich_draws_it(table: tuple[str, list[str], list[list[str]]]) -> None:
    title, headings, rows = table
    drawn = boxed_table(title, headings, rows)
    lines = [headings, *rows]
    width = sum(max(len(line[i]) for line in lines) + 3 for i in range(len(headings))) + 1
    if width <= 160 and len(title) <= width:
        assert drawn is not None  # tables of plain words that fit are drawn here
    if drawn is not None:
        assert drawn == _rich(title, headings, rows)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(tables(ANY_TEXT))
def test_any_text_drawn_as_rich_or_left_to_it(
    table: tuple[str, list[str], list[list[str]]],
) -> None:
    title, headings, rows = table
    drawn = boxed_table(title, headings, rows)
    if drawn is not None:
        assert drawn == _rich(title, headings, rows)


def test_the_token_list_table_and_its_limits() -> None:
    headings = ["serial", "model", "kind", "state", "user", "tracking", "secret held", "since"]
    row = ["S1", "programmable", "programmable", "assigned", "a@contoso.com", "", "yes", "2026"]
    assert boxed_table("tokens", headings, [row]) == _rich("tokens", headings, [row])
    assert boxed_table("tokens", headings, []) == _rich("tokens", headings, [])
    wide = [["x" * 200, *row[1:]]]
    assert boxed_table("tokens", headings, wide) is None  # rich shrinks it: rich draws it
    assert boxed_table("tokens", headings, [["世界", *row[1:]]]) is None  # wide characters
