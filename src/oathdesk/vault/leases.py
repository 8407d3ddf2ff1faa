"""Leases: one holder at a time for a long job that several machines could start on one vault
(`entra push` from two helpdesk desks would create and activate the same tokens twice).

A lease is a row named after the job. Taking it inserts the row, or replaces one whose time is up;
the holder renews it as it works and deletes it when done. A holder killed without cleaning up
(kill -9, a machine gone) stops renewing, and the lease frees itself when it expires. A holder
that finds its lease taken over at a renewal let it expire (it renewed too late), and must stop.

``take``, ``renew`` and ``release`` run in the caller's transaction, a statement or two each,
so they serialise on either database without explicit locks; ``Lease`` (what ``Vault.lease``
hands out) runs each in a transaction of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from oathdesk.errors import Conflict
from oathdesk.vault.models import aware, utc_now
from oathdesk.vault.schema import leases


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease, for the message that tells the next caller to wait."""

    actor: str
    host: str
    taken_at: datetime
    expires_at: datetime


def take(
    conn: sa.Connection,
    name: str,
    holder: str,
    *,
    actor: str,
    host: str,
    now: datetime,
    ttl: timedelta,
) -> LeaseHolder | None:
    """Take lease ``name`` for ``holder`` (a random id of this run). None when taken; else the
    current holder, who keeps it."""
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.expires_at <= now))
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(leases)
        .values(
            name=name, holder=holder, actor=actor, host=host, taken_at=now, expires_at=now + ttl
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    conn.execute(statement)
    # Whose row it is now tells whether the insert took (an INSERT's rowcount is -1 on psycopg).
    row = conn.execute(
        sa.select(
            leases.c.holder, leases.c.actor, leases.c.host, leases.c.taken_at, leases.c.expires_at
        ).where(leases.c.name == name)
    ).one()
    if row.holder == holder:
        return None
    taken_at, expires_at = aware(row.taken_at), aware(row.expires_at)
    return LeaseHolder(row.actor, row.host, taken_at or now, expires_at or now)


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


def busy_message(job: str, current: LeaseHolder) -> str:
    """One line for the caller who has to wait: who runs the job, since when, and until when
    the lease holds if that run died."""
    since = current.taken_at.strftime("%Y-%m-%d %H:%M UTC")
    until = current.expires_at.strftime("%H:%M UTC")
    return (
        f"`{job}` is already running on this vault ({current.actor} on {current.host}, since "
        f"{since}); wait for it to finish. If that run was stopped without finishing, the vault "
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

    def __repr__(self) -> str:
        return f"Lease({self.job!r})"

    def take(self, *, actor: str, host: str) -> LeaseHolder | None:
        """None when this run now holds the lease; else who does."""
        with self._transaction() as conn:
            return take(
                conn, self.job, self._holder, actor=actor, host=host, now=utc_now(), ttl=self.ttl
            )

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
