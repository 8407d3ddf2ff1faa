"""`--json` lists are written item by item (cli/vault_context.print_json_items): the same text
as ``json.dumps`` of the whole list, which a list of 100,000 tokens held as one string."""

from __future__ import annotations

import io
import json
import sys
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oathdesk.cli.vault_context import print_json, print_json_items

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def written(monkeypatch: pytest.MonkeyPatch, write: Any) -> str:
    out = io.StringIO()
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stdout", out)
        write()
    return out.getvalue()


@given(items=st.lists(JSON_VALUES, max_size=6))
def test_items_streamed_read_as_the_list_dumped_whole(items: list[Any]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        text = written(monkeypatch, lambda: print_json_items(iter(items)))
        listed = written(monkeypatch, lambda: print_json(items))
    assert text == json.dumps(items, indent=2, default=str) + "\n"
    assert listed == text
    assert json.loads(text) == items


def test_an_item_with_a_line_break_in_a_value_stays_one_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [{"model": "C2\n02\u2028x", "n": 1}, "tail"]
    text = written(monkeypatch, lambda: print_json_items(items))
    assert json.loads(text) == items
    assert text == json.dumps(items, indent=2) + "\n"


class _Sink:
    """A standard output that keeps nothing but how much was written."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_long_list_is_never_one_string(monkeypatch: pytest.MonkeyPatch) -> None:
    """print_json of 20,000 items (about 9 MB of JSON) holds an item's text at a time: it made
    the whole text first (100,000 tokens: 665 MB)."""
    items = [{"serial": f"S{n:06d}", "model": "m" * 400} for n in range(20_000)]
    sink = _Sink()
    monkeypatch.setattr(sys, "stdout", sink)
    tracemalloc.start()
    try:
        print_json(items)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size > 9_000_000
    assert peak < 1_000_000, peak
