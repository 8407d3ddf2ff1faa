"""How moments and durations are written: the date when not today, always the zone, days/hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from oathdesk.timetext import duration_text, iso_utc, moment_text, until_text

ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2026, 12, 4, 20, 11, 0, tzinfo=UTC)  # 21:11 in Zurich


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0 min 00 s"),
        (0, "0 min 00 s"),
        (59.9, "0 min 59 s"),
        (135, "2 min 15 s"),
        (3599, "59 min 59 s"),
        (3600, "1 h 00 min"),
        (86_399, "23 h 59 min"),
        (86_400, "1 d 0 h 00 min"),
        (172_814, "2 d 0 h 00 min"),  # was "2880 min 14 s"
        (172_799, "1 d 23 h 59 min"),
        (10 * 86_400 + 5 * 3600 + 7 * 60, "10 d 5 h 07 min"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_a_moment_today_is_a_time_and_a_zone() -> None:
    assert moment_text(NOW + timedelta(minutes=2), NOW, ZURICH) == "21:13:00 CET"
    assert moment_text(NOW + timedelta(minutes=2), NOW, UTC) == "20:13:00 UTC"


def test_a_moment_on_another_day_carries_its_date() -> None:
    later = NOW + timedelta(days=2, seconds=14)
    assert moment_text(later, NOW, ZURICH) == "2026-12-06 21:11:14 CET"
    # 23:11 UTC is still the 4th in UTC but the 5th in Zurich: "today" is the reader's day
    late = NOW + timedelta(hours=3)
    assert moment_text(late, NOW, UTC) == "23:11:00 UTC"
    assert moment_text(late, NOW, ZURICH) == "2026-12-05 00:11:00 CET"
    summer = datetime(2027, 7, 1, 10, 0, tzinfo=UTC)
    assert moment_text(summer, NOW, ZURICH) == "2027-07-01 12:00:00 CEST"


def test_the_date_is_shown_exactly_when_the_day_differs_at_1000_moments() -> None:
    start = datetime(2026, 12, 31, 22, 0, tzinfo=UTC)
    for k in range(1000):
        now = start + timedelta(seconds=97 * k)
        until = now + timedelta(seconds=(k * 7919) % 200_000)
        text = moment_text(until, now, ZURICH)
        other_day = until.astimezone(ZURICH).date() != now.astimezone(ZURICH).date()
        assert text.startswith(f"{until.astimezone(ZURICH):%Y-%m-%d} ") is other_day, text
        assert text.endswith((" CET", " CEST"))


def test_until_says_when_and_how_long() -> None:
    assert (
        until_text(NOW + timedelta(days=2, seconds=14), NOW, ZURICH)
        == "2026-12-06 21:11:14 CET (in 2 d 0 h 00 min)"
    )
    assert until_text(NOW + timedelta(seconds=75), NOW, ZURICH) == "21:12:15 CET (in 1 min 15 s)"


def test_iso_utc_is_the_apis_format() -> None:
    class Moment(BaseModel):
        at: datetime

    for moment in (NOW, NOW.astimezone(ZURICH), NOW + timedelta(microseconds=500_000)):
        assert f'"{iso_utc(moment)}"' in Moment(at=moment.astimezone(UTC)).model_dump_json()
        assert datetime.fromisoformat(iso_utc(moment)) == moment
