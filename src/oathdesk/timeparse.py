"""Parse the instants operators type: Unix seconds or ISO 8601. Pure."""

from __future__ import annotations

from oathdesk.errors import InvalidInput


def parse_instant(text: str) -> float:
    """Unix seconds from "1700000000", "1700000000.5" or ISO 8601 ("2026-11-22T10:00:00Z").

    An ISO time without a zone is taken as the machine's local time, as a person would mean it.
    """
    cleaned = text.strip()
    try:
        return float(cleaned)
    except ValueError:
        pass
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidInput(
            f"cannot read the time {text!r}; use Unix seconds or ISO 8601 like 2026-11-22T10:00:00Z"
        ) from None
    return parsed.timestamp()
