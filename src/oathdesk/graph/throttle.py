"""Waiting politely: Retry-After, exponential backoff with jitter and a cap, and the client-side
limit on activations (Entra documents 200 per 5 minutes).

The clock and the sleep are passed in, so tests run the real arithmetic without waiting.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from oathdesk.errors import InvalidInput

RETRYABLE_STATUSES = frozenset({429, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a throttled or failed call.

    ``base * 2**attempt`` seconds, with full jitter, never above ``cap``; a server's Retry-After
    wins when it gives one (up to ``max_retry_after``).
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0

    def delay(
        self,
        attempt: int,
        retry_after: str | None,
        *,
        now: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        told = parse_retry_after(retry_after, now=now)
        if told is not None:
            return min(told, self.max_retry_after)
        ceiling = min(self.cap, self.base * (2**attempt))
        return float(ceiling * rand())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110); None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most ``limit`` events in any ``window`` seconds (a sliding window).

    ``acquire`` waits (through ``sleep``) until one more event fits, records it and returns how
    long it waited.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise InvalidInput(
                "an activation limit needs at least 1 per a positive number of seconds"
            )
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._events: deque[float] = deque()

    def acquire(self) -> float:
        waited = 0.0
        while True:
            now = self._clock()
            while self._events and self._events[0] <= now - self.window:
                self._events.popleft()
            if len(self._events) < self.limit:
                self._events.append(now)
                return waited
            pause = self._events[0] + self.window - now
            self._sleep(pause)
            waited += pause
