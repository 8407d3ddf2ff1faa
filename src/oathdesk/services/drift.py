"""The drift report's rows: which measured tokens are near or outside their sign-in window, with
the trend and when it will be outside. Pure (no vault): `oathdesk drift` reads its input on the
quick read path (``vault.quickread``), the console and the API a page at a time (``token_checks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from oathdesk.otp import acceptance_profile
from oathdesk.vault.models import Token


@dataclass(frozen=True)
class DriftRow:
    token: Token
    drift_seconds: int
    window_seconds: int
    status: str  # ok | near | outside
    rate_seconds_per_day: float | None
    predicted_outside: datetime | None


def drift_rows(
    measured: list[Token],
    history: dict[str, list[tuple[datetime, int]]],
    profile_name: str,
    near_fraction: float = 0.5,
) -> list[DriftRow]:
    """Of ``measured``, the tokens near or outside the window, given their measurements."""
    shown = []
    now = datetime.now(UTC)
    for token in measured:
        row = _drift_row(token, history.get(token.serial, []), profile_name, near_fraction, now)
        if row is not None:
            shown.append(row)
    return shown


@lru_cache(maxsize=64)
def window_seconds(profile_name: str, period: int) -> int:
    """The sign-in window on its narrower side, in seconds: the same for every token of a
    period, so a page of tokens works it out once per period, not once per token."""
    profile = acceptance_profile(profile_name, period=period)
    return min(profile.behind, profile.ahead) * period


def _drift_row(
    token: Token,
    measurements: list[tuple[datetime, int]],
    profile_name: str,
    near_fraction: float,
    now: datetime,
) -> DriftRow | None:
    if not measurements:
        return None
    window = window_seconds(profile_name, token.period)
    first_at, first_drift = measurements[0]
    last_at, last_drift = measurements[-1]
    rate = None
    predicted = None
    days = (last_at - first_at).total_seconds() / 86_400
    if len(measurements) >= 2 and days > 0:
        rate = (last_drift - first_drift) / days
        if rate != 0 and abs(last_drift) <= window:
            limit = window if rate > 0 else -window
            predicted = last_at + timedelta(days=(limit - last_drift) / rate)
    soon = predicted is not None and predicted - now < timedelta(days=30)
    if abs(last_drift) > window:
        status = "outside"
    elif abs(last_drift) >= window * near_fraction or soon:
        status = "near"
    else:
        return None
    return DriftRow(token, last_drift, window, status, rate, predicted)
