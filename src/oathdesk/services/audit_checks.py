"""The audit chain's state for a page that shows it on every view.

Checking the whole chain reads every record (about three seconds per 100,000 on a small
machine), too slow for each view of a log that grows by every reveal. So a server checks the
whole chain at most every ``WHOLE_CHECK_EVERY``, and in between only the records added since
the last check, chained on to its end, and the head; when nothing was added (the log and the
head still end where the last check did), one statement says so (``audit_verify._unmoved``).
A record edited after the last whole check is found by the next one, at most that long later;
`oathdesk audit verify` and the API's ``/audit/verify`` always check the whole chain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from oathdesk.vault.audit_verify import ChainPoint
from oathdesk.vault.models import utc_now
from oathdesk.vault.vault import Vault

WHOLE_CHECK_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class ChainStatus:
    problems: list[str]  # every break found; empty: intact
    whole_checked_at: datetime  # when the whole chain was last checked (the rest: just now)
    records: int | None = None  # the verified head's count of records (None: not intact)


class AuditChecks:
    """One server process's checks of one vault's chain (thread-safe)."""

    def __init__(
        self,
        vault: Vault,
        *,
        every: timedelta = WHOLE_CHECK_EVERY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._vault = vault
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._end: ChainPoint | None = None  # where the last intact check ended
        self._whole_at: datetime | None = None

    def __repr__(self) -> str:
        return f"AuditChecks(whole_checked_at={self._whole_at!r})"

    def status(self, *, whole: bool = False) -> ChainStatus:
        """The chain's state now; ``whole``: check the whole chain whatever the time."""
        with self._lock:
            now = self._clock()
            due = (
                whole
                or self._end is None
                or self._whole_at is None
                or now - self._whole_at >= self._every
            )
            check = self._vault.check_audit(None if due else self._end)
            if check.problems and not due:
                # Something is wrong since the last whole check: name every break now.
                check, due = self._vault.check_audit(None), True
            whole_at = now if due or self._whole_at is None else self._whole_at
            self._whole_at = whole_at
            self._end = check.end  # None after a break: the next view checks everything
            return ChainStatus(check.problems, whole_at, check.records)
