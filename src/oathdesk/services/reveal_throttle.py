"""The per-key throttle on reveals through the REST API: at most N a minute for each API key.

A key is a script's or a ticketing tool's; a script gone wrong should not empty a helpdesk's
24-hour limits in a second. It counts in the process that runs the reveals (the server's
vault writer), so every worker of one server shares it; the vault's 24-hour limits, counted
from the audit log, apply on top and across servers.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from oathdesk.errors import RateLimited

DEFAULT_REVEALS_PER_MINUTE = 10


class KeyThrottle:
    """At most ``per_minute`` reveals per API key in any sliding minute."""

    def __init__(self, per_minute: int = DEFAULT_REVEALS_PER_MINUTE) -> None:
        self.per_minute = max(1, per_minute)
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def take(self, key_id: str, now: float | None = None) -> None:
        """Count one reveal for ``key_id``, or raise ``RateLimited`` (nothing counted)."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent.setdefault(key_id, deque())
            while recent and moment - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self.per_minute:
                wait = max(1, math.ceil(60 - (moment - recent[0])))
                raise RateLimited(
                    f"this API key may reveal {self.per_minute} codes a minute; "
                    f"try again in {wait} s",
                    wait,
                )
            recent.append(moment)
