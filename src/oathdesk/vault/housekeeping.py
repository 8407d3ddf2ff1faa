"""Storage for housekeeping and the console's overview: the cycle records, the record of which
late tokens were warned about, and the overview's figures, each counted by the database.

No table of its own: a cycle's record is its audit record (``housekeeping.cycle``, found by the
audit log's (action, seq) index), and so is each warning (``token.undelivered_warned``, found by
its serial) and each sync finding alerted about (``entra.finding_alerted``, by its serial). The
audit chain already makes them tamper-evident and shared by every server.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import rows
from oathdesk.vault.lifecycle import STAMP_COLUMN, WAITING, TokenState
from oathdesk.vault.models import Token, aware
from oathdesk.vault.schema import audit_log, tokens, users

CYCLE_ACTION = "housekeeping.cycle"
WARNED_ACTION = "token.undelivered_warned"
# A page counts late tokens (and seeds due for purge) up to this many, then says "more than":
# the count then costs what the page shows, however many there are.
COUNTED_UP_TO = 1000
# Each `entra sync`'s summary, whoever ran it (services/entra_sync.py).
SYNCED_ACTION = "entra.synced"
# A difference a sync left for a person that an alert named (kind, serial and user).
FINDING_ALERTED_ACTION = "entra.finding_alerted"


@dataclass(frozen=True)
class CycleRecord:
    """One completed housekeeping cycle, as its audit record tells it."""

    seq: int
    at: datetime
    actor: str
    details: dict[str, Any]

    @property
    def slot(self) -> int | None:
        slot = self.details.get("slot")
        return slot if isinstance(slot, int) else None


def recent_cycles(
    conn: sa.Connection, *, limit: int, before: int | None = None
) -> list[CycleRecord]:
    """The last ``limit`` cycles (before audit record ``before``: the next page), newest first;
    reads no more rows than that."""
    query = _newest_first(audit_log.c.action == CYCLE_ACTION).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.seq < before)
    return [_record(row) for row in conn.execute(query)]


def last_cycle(conn: sa.Connection) -> CycleRecord | None:
    found = recent_cycles(conn, limit=1)
    return found[0] if found else None


def last_cycle_with(conn: sa.Connection, step: str) -> CycleRecord | None:
    """The newest cycle in which ``step`` ran or failed (was not skipped), found by the
    database: details are canonical JSON (sorted keys, no spaces; audit.details_json), so a
    skipped step reads exactly ``"step":{"skipped":``. One row read."""
    return _newest(
        conn,
        audit_log.c.action == CYCLE_ACTION,
        audit_log.c.details.contains(f'"{step}":{{', autoescape=True),
        ~audit_log.c.details.contains(f'"{step}":{{"skipped":', autoescape=True),
    )


def last_sync(conn: sa.Connection) -> CycleRecord | None:
    """The newest `entra sync`'s record (``entra.synced``), by the (action, seq) index."""
    return _newest(conn, audit_log.c.action == SYNCED_ACTION)


def _newest_first(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The records that match, newest first (by the (action, seq) index when it names one)."""
    columns = (audit_log.c.seq, audit_log.c.at, audit_log.c.actor, audit_log.c.details)
    return sa.select(*columns).where(*where).order_by(audit_log.c.seq.desc())


def _newest(conn: sa.Connection, *where: sa.ColumnElement[bool]) -> CycleRecord | None:
    row = conn.execute(_newest_first(*where).limit(1)).first()
    return None if row is None else _record(row)


def _record(row: sa.Row[Any]) -> CycleRecord:
    return CycleRecord(
        int(row.seq), datetime.fromisoformat(row.at), str(row.actor), json.loads(row.details)
    )


def alerted_findings(conn: sa.Connection, serials: Collection[str]) -> set[tuple[str, str, str]]:
    """Of the findings on these serials, those an alert named before, as (kind, serial, upn):
    one query by the audit log's serial index."""
    if not serials:
        return set()
    query = sa.select(audit_log.c.serial, audit_log.c.upn, audit_log.c.details).where(
        audit_log.c.action == FINDING_ALERTED_ACTION, audit_log.c.serial.in_(sorted(set(serials)))
    )
    return {
        (str(json.loads(details).get("kind", "")), str(serial), str(upn or ""))
        for serial, upn, details in conn.execute(query)
    }


def cycles_per_slot(conn: sa.Connection) -> dict[int, int]:
    """How many cycle records each slot has (one, when exactly one server ran it)."""
    counted: dict[int, int] = {}
    query = sa.select(audit_log.c.details).where(audit_log.c.action == CYCLE_ACTION)
    for (details,) in conn.execute(query):
        slot = json.loads(details).get("slot")
        if isinstance(slot, int):
            counted[slot] = counted.get(slot, 0) + 1
    return counted


def _since() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(tokens.c.assigned_at, tokens.c.created_at)


def _late(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Tokens a user still waits for after the warning period (stock without a user waits for
    no one)."""
    return sa.and_(
        tokens.c.state.in_([state.value for state in WAITING]),
        tokens.c.user_id.is_not(None),
        _since() <= cutoff,
    )


def late_unwarned(conn: sa.Connection, cutoff: datetime, *, limit: int) -> list[tuple[str, str]]:
    """Late tokens (serial, UPN) not yet warned about for their current user, oldest first."""
    warned = (
        sa.select(audit_log.c.seq)
        .where(
            audit_log.c.action == WARNED_ACTION,
            audit_log.c.serial == tokens.c.serial,
            audit_log.c.upn == users.c.upn,
        )
        .exists()
    )
    query = (
        sa.select(tokens.c.serial, users.c.upn)
        .join(users, users.c.id == tokens.c.user_id)
        .where(_late(cutoff), ~warned)
        .order_by(_since(), tokens.c.serial)
        .limit(limit)
    )
    return [(str(serial), str(upn)) for serial, upn in conn.execute(query)]


def late_tokens(conn: sa.Connection, cutoff: datetime, *, limit: int) -> list[Token]:
    """The ``limit`` longest-waiting late tokens."""
    query = rows.token_query().where(_late(cutoff)).order_by(_since(), tokens.c.serial).limit(limit)
    return [rows.token_from_row(row) for row in conn.execute(query)]


def late_count(conn: sa.Connection, cutoff: datetime, *, up_to: int | None = None) -> int:
    """How many tokens are late; with ``up_to``, counting stops past it (``up_to + 1`` means
    "more than ``up_to``"), so that a page's count reads no more index entries than that."""
    return _count(conn, sa.select(tokens.c.id).where(_late(cutoff)), up_to)


def late_by_serial(conn: sa.Connection, cutoff: datetime) -> list[Token]:
    """Every late token, by serial (`oathdesk undelivered`): read from the waiting-time index,
    not every waiting token filtered in Python."""
    query = rows.token_query().where(_late(cutoff)).order_by(tokens.c.serial)
    return [rows.token_from_row(row) for row in conn.execute(query)]


def _purge_due(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        tokens.c.state == TokenState.DELIVERED.value,
        tokens.c.delivered_at.is_not(None),
        tokens.c.delivered_at <= cutoff,
    )


def purge_due_by_serial(conn: sa.Connection, cutoff: datetime) -> list[Token]:
    """The delivered tokens whose seed the retention period says to erase now, by serial."""
    query = rows.token_query().where(_purge_due(cutoff)).order_by(tokens.c.serial)
    return [rows.token_from_row(row) for row in conn.execute(query)]


def purge_due_count(conn: sa.Connection, cutoff: datetime, *, up_to: int | None = None) -> int:
    """Delivered tokens whose seed the retention period says to erase now (``up_to``: as for
    ``late_count``)."""
    return _count(conn, sa.select(tokens.c.id).where(_purge_due(cutoff)), up_to)


def _count(conn: sa.Connection, rows_of: sa.Select[Any], up_to: int | None) -> int:
    if up_to is not None:
        rows_of = rows_of.limit(up_to + 1)
    query = sa.select(sa.func.count()).select_from(rows_of.subquery())
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class StateFigure:
    state: str
    count: int
    oldest_since: datetime | None  # when the longest-waiting token entered this state


def state_figures(conn: sa.Connection) -> list[StateFigure]:
    """Tokens per state and the oldest entry into each, longest-waiting state first: one
    GROUP BY over the tokens table."""
    entered = sa.case(
        *(
            (tokens.c.state == state.value, getattr(tokens.c, column))
            for state, column in STAMP_COLUMN.items()
        ),
        else_=tokens.c.created_at,
    )
    oldest = sa.func.min(sa.func.coalesce(entered, tokens.c.updated_at))
    query = sa.select(tokens.c.state, sa.func.count(), oldest).group_by(tokens.c.state)
    figures = [
        StateFigure(str(state), int(count), aware(since))
        for state, count, since in conn.execute(query)
    ]
    return sorted(
        figures, key=lambda f: (f.oldest_since is None, f.oldest_since or datetime.min, f.state)
    )
