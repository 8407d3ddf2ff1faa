"""How oathdesk writes moments and durations for people ("accepted until ...") and JSON. Pure.

One place, so the CLI, the console and the API say the same thing: under ``entra-activation``
a code stays accepted for days, and "20:11:00 (in 2880 min 14 s)" hid which day. A moment
carries its date whenever it is not on the same day as now, and always its time zone's name;
a duration is written in the two or three largest units that matter.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

_MINUTE = 60
_HOUR = 3600
_DAY = 86_400


def duration_text(seconds: float) -> str:
    """``4 min 05 s`` under an hour, ``5 h 04 min`` under a day, ``2 d 0 h 00 min`` beyond.

    Whole seconds, rounded down (a countdown must not promise a second it does not have);
    negative durations count as zero.
    """
    left = max(int(seconds), 0)
    if left < _HOUR:
        return f"{left // _MINUTE} min {left % _MINUTE:02d} s"
    minutes = left % _HOUR // _MINUTE
    if left < _DAY:
        return f"{left // _HOUR} h {minutes:02d} min"
    return f"{left // _DAY} d {left % _DAY // _HOUR} h {minutes:02d} min"


def moment_text(moment: datetime, now: datetime, zone: tzinfo | None = None) -> str:
    """``20:11:00 CET`` on now's day, ``2026-12-06 20:11:00 CET`` on any other.

    ``zone`` is where the reader is (default: this machine's local zone); the day is compared
    in that zone.
    """
    here = moment.astimezone(zone)
    today = now.astimezone(zone).date()
    name = here.tzname() or here.strftime("%z")
    if here.date() == today:
        return f"{here:%H:%M:%S} {name}"
    return f"{here:%Y-%m-%d %H:%M:%S} {name}"


def until_text(moment: datetime, now: datetime, zone: tzinfo | None = None) -> str:
    """``2026-12-06 20:11:00 CET (in 2 d 0 h 00 min)``: when, and how long from now."""
    return f"{moment_text(moment, now, zone)} (in {duration_text((moment - now).total_seconds())})"


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``, as the REST API's JSON writes its datetimes."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
