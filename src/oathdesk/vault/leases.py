"""Leases: one holder at a time for a long job that several machines could start on one vault
(`entra push` from two helpdesk desks would create and activate the same tokens twice).

A lease is a row named after the job. Taking it inserts the row, or replaces one whose time is up;
the holder renews it as it works and deletes it when done. A holder killed without cleaning up
(kill -9, a machine gone) stops renewing, and the lease frees itself when it expires. A holder
that finds its lease taken over at a renewal let it expire (it renewed too late), and must stop.

A lease records its holder's process (pid, start time) and the machine's boot time, so that the
next run need not wait for the expiry when the holder is provably gone: on the same machine
(same host name and boot), a holder whose pid no longer runs, or now belongs to a process that
started later (a reused pid), is taken over at once. Whether a holder on another machine is gone
cannot be seen from here; taking its lease over needs a person's confirmation
(``Vault.lease(take_over=...)``). Either way ``take_over`` replaces exactly that holder's row, so
two runs taking over at once cannot both win; the caller audits it in the same transaction.

``take``, ``renew`` and ``release`` run in the caller's transaction, a statement or two each,
so they serialise on either database without explicit locks; ``Lease`` (what ``Vault.lease``
hands out) runs each in a transaction of its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault.models import aware, utc_now
from oathdesk.vault.schema import leases

# Start and boot times are floats of seconds that the OS derives from clock ticks; the same
# process reads back within this, and a reused pid belongs to a process started later.
_SAME_TIME = 1.0


@dataclass(frozen=True)
class Process:
    """A running process, told apart from a later one that was given the same pid."""

    pid: int
    started: float  # seconds since the epoch
    boot_time: float  # the machine's, seconds since the epoch

    @classmethod
    def current(cls) -> Process:
        import psutil  # here, not at the top: every vault command imports this module

        return cls(os.getpid(), psutil.Process().create_time(), psutil.boot_time())


class HolderFate(Enum):
    RUNNING = "running"  # on this machine, its process still runs
    GONE = "gone"  # on this machine, its process is gone (or its pid is another process's now)
    UNKNOWN = "unknown"  # another machine, a reboot since, or a lease without its process


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease, for the message that tells the next caller to wait."""

    actor: str
    host: str
    taken_at: datetime
    expires_at: datetime
    holder: str = ""  # the run's id, to take over exactly this holder's lease
    pid: int | None = None
    process_started: float | None = None
    boot_time: float | None = None

    def fate(self, *, host: str, me: Process) -> HolderFate:
        """Whether the holder still runs, seen from ``me`` on ``host``."""
        if (
            self.host != host
            or self.pid is None
            or self.process_started is None
            or self.boot_time is None
            or abs(self.boot_time - me.boot_time) > _SAME_TIME
        ):
            return HolderFate.UNKNOWN
        import psutil  # only a lease's holder is ever looked up (see Process.current)

        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:  # dead, not yet reaped by its parent
                return HolderFate.GONE
            started = process.create_time()
        except psutil.NoSuchProcess:
            return HolderFate.GONE
        except psutil.Error:  # not ours to inspect: it exists, and we cannot tell which it is
            return HolderFate.UNKNOWN
        return (
            HolderFate.RUNNING
            if abs(started - self.process_started) <= _SAME_TIME
            else (HolderFate.GONE)
        )

    def describe(self) -> str:
        """The old holder, for a message or an audit record."""
        process = f", process {self.pid}" if self.pid is not None else ""
        since = self.taken_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.actor} on {self.host}, since {since}{process}"


def take(
    conn: sa.Connection,
    name: str,
    holder: str,
    *,
    actor: str,
    host: str,
    now: datetime,
    ttl: timedelta,
    process: Process | None = None,
) -> LeaseHolder | None:
    """Take lease ``name`` for ``holder`` (a random id of this run, running as ``process``).
    None when taken; else the current holder, who keeps it."""
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.expires_at <= now))
    # The dialects' INSERT ... ON CONFLICT, imported when a lease is taken: a reading command
    # would pay for both dialects' modules at start-up.
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(leases)
        .values(
            name=name,
            holder=holder,
            actor=actor,
            host=host,
            taken_at=now,
            expires_at=now + ttl,
            pid=process.pid if process else None,
            process_started=process.started if process else None,
            boot_time=process.boot_time if process else None,
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(statement)
    # Whose row it is now tells whether the insert took (an INSERT's rowcount is -1 on psycopg).
    row = conn.execute(sa.select(leases).where(leases.c.name == name)).one()
    if row.holder == holder:
        return None
    taken_at, expires_at = aware(row.taken_at), aware(row.expires_at)
    return LeaseHolder(
        row.actor,
        row.host,
        taken_at or now,
        expires_at or now,
        row.holder,
        row.pid,
        row.process_started,
        row.boot_time,
    )


def take_over(
    conn: sa.Connection,
    name: str,
    old: LeaseHolder,
    holder: str,
    *,
    actor: str,
    host: str,
    now: datetime,
    ttl: timedelta,
    process: Process | None = None,
) -> LeaseHolder | None:
    """Replace ``old``'s lease by ``holder``'s (the caller has decided that ``old`` is gone).
    None when taken; else whoever holds it now (another run was quicker)."""
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.holder == old.holder))
    return take(conn, name, holder, actor=actor, host=host, now=now, ttl=ttl, process=process)


def renew(conn: sa.Connection, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Extend ``holder``'s lease; False when it is no longer theirs (expired and taken, or gone)."""
    renewed = conn.execute(
        sa.update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(expires_at=now + ttl)
    )
    return renewed.rowcount == 1


def release(conn: sa.Connection, name: str, holder: str) -> None:
    """Give the lease back (nothing happens when it is no longer ``holder``'s)."""
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def busy_message(job: str, current: LeaseHolder, *, running_here: bool = False) -> str:
    """One line for the caller who has to wait: who runs the job, since when, and what to do:
    wait, or (when that run is gone) take its lease over or let it expire."""
    start = f"`{job}` is already running on this vault ({current.describe()}); "
    if running_here:
        return (
            start + f"its process {current.pid} still runs on this machine: wait for it to "
            "finish, or stop that process and run this again"
        )
    until = current.expires_at.strftime("%H:%M UTC")
    return (
        start + "wait for it to finish. If that run was stopped without finishing, take its "
        f"lease over with `{job} --take-over-lease` (you are asked to confirm), or the vault "
        f"lets the next one start at {until}"
    )


class Lease:
    """This run's claim on ``job`` (``Vault.lease``): ``take`` it, ``renew`` it as the job goes
    on, ``release`` it at the end."""

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[sa.Connection]],
        job: str,
        ttl: timedelta,
    ) -> None:
        self._transaction = transaction
        self.job = job
        self.ttl = ttl
        self._holder = secrets.token_hex(16)  # this run, among all that may try
        self.process = Process.current()
        # The holder this run took the lease over from, and why (for the caller to say so).
        self.taken_over: LeaseHolder | None = None
        self.take_over_reason = ""

    def __repr__(self) -> str:
        return f"Lease({self.job!r})"

    def take(self, *, actor: str, host: str) -> LeaseHolder | None:
        """None when this run now holds the lease; else who does."""
        with self._transaction() as conn:
            return take(
                conn,
                self.job,
                self._holder,
                actor=actor,
                host=host,
                now=utc_now(),
                ttl=self.ttl,
                process=self.process,
            )

    def take_over(
        self, conn: sa.Connection, old: LeaseHolder, *, actor: str, host: str, reason: str
    ) -> LeaseHolder | None:
        """In the caller's transaction (with its audit record): None when this run now holds
        the lease in ``old``'s place; else who does."""
        current = take_over(
            conn,
            self.job,
            old,
            self._holder,
            actor=actor,
            host=host,
            now=utc_now(),
            ttl=self.ttl,
            process=self.process,
        )
        if current is None:
            self.taken_over, self.take_over_reason = old, reason
        return current

    def renew(self) -> None:
        """Extend the lease by its time to live; Conflict when another run has taken it over."""
        with self._transaction() as conn:
            kept = renew(conn, self.job, self._holder, now=utc_now(), ttl=self.ttl)
        if not kept:
            minutes = round(self.ttl.total_seconds() / 60)
            raise Conflict(
                f"this `{self.job}` went more than {minutes} minutes without a step, and another "
                "run has taken over; this one stopped. Run it again when the other has finished"
            )

    def release(self) -> None:
        with self._transaction() as conn:
            release(conn, self.job, self._holder)
