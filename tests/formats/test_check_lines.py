"""formats.limits.check_lines measures the longest line in bulk and walks the lines only to name
an over-long one: over any mix of CR, LF and CRLF, it refuses exactly the first line over the
bound (by its number), as reading the lines one by one does."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.formats.limits import RefusalKind, check_lines


def _first_too_long(data: bytes, bound: int) -> int | None:
    """The number of the first line longer than ``bound`` bytes, read one line at a time."""
    for number, line in enumerate(re.split(rb"\r\n|\r|\n", data), start=1):
        if len(line) > bound:
            return number
    return None


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from([b"x", b"yy", b"\r", b"\n", b"\r\n", b"zzzz"]), max_size=40),
    st.integers(min_value=0, max_value=6),
)
def test_the_first_line_over_the_bound_is_named(pieces: list[bytes], bound: int) -> None:
    data = b"".join(pieces)
    refusal = check_lines(data, max_lines=1000, max_line_bytes=bound)
    expected = _first_too_long(data, bound)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert (refusal.kind, refusal.line) == (RefusalKind.TOO_LONG, expected)
