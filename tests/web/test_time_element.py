"""The <time> element every page shows a stored moment in (built without Markup.format, which
cost 4 ms of an audit page: issue 15): UTC, to the second or the minute, from any input form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from markupsafe import Markup

from oathdesk.web.render import time_element, when

MOMENT = datetime(2026, 12, 5, 1, 2, 3, 456, tzinfo=UTC)


def test_a_moment_to_the_second_in_utc() -> None:
    shown = time_element(MOMENT.astimezone(timezone(timedelta(hours=2))), seconds=True)
    assert isinstance(shown, Markup)
    assert shown == (
        '<time datetime="2026-12-05T01:02:03Z" title="2026-12-05 01:02:03 UTC" '
        'data-local="seconds">2026-12-05 01:02:03 UTC</time>'
    )


def test_a_naive_or_text_moment_is_utc_and_when_shows_minutes() -> None:
    expected = (
        '<time datetime="2026-12-05T01:02:03Z" title="2026-12-05 01:02 UTC" '
        'data-local="minutes">2026-12-05 01:02 UTC</time>'
    )
    assert time_element(MOMENT.replace(tzinfo=None), seconds=False) == expected
    assert time_element("2026-12-05T01:02:03", seconds=False) == expected
    assert when(MOMENT) == expected
    assert when(None, "never") == "never"
