"""The Entra (Graph) connection and the push journal, as stored.

Rows in, rows out, inside the caller's transaction. What the columns mean, and how the sealed
ones are sealed, is ``services/entra_store.py``'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.vault.models import utc_now
from oathdesk.vault.schema import graph_connection, graph_push_journal

ROW_ID = 1  # one connection per vault


def replace_connection(conn: sa.Connection, values: Mapping[str, Any]) -> None:
    conn.execute(graph_connection.delete())
    conn.execute(graph_connection.insert().values(id=ROW_ID, **values))


def update_connection(conn: sa.Connection, values: Mapping[str, Any]) -> None:
    conn.execute(graph_connection.update().where(graph_connection.c.id == ROW_ID).values(**values))


def read_connection(conn: sa.Connection) -> sa.Row[Any] | None:
    return conn.execute(sa.select(graph_connection).where(graph_connection.c.id == ROW_ID)).first()


def delete_connection(conn: sa.Connection) -> bool:
    """False when there was none."""
    return bool(conn.execute(graph_connection.delete()).rowcount)


# -- the push journal ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalEntry:
    serial: str
    upn: str
    step: str  # creating | created | activated
    device_id: str | None
    attempts: int
    last_error: str


def read_journal(conn: sa.Connection, serials: list[str] | None = None) -> dict[str, JournalEntry]:
    query = sa.select(graph_push_journal)
    if serials is not None:
        query = query.where(graph_push_journal.c.serial.in_(serials))
    return {
        row.serial: JournalEntry(
            row.serial, row.upn, row.step, row.device_id, row.attempts, row.last_error
        )
        for row in conn.execute(query)
    }


def write_journal(
    conn: sa.Connection,
    serial: str,
    *,
    upn: str,
    step: str,
    device_id: str | None = None,
    error: str = "",
    attempted: bool = False,
    now: datetime | None = None,
) -> None:
    """Insert or update one serial's journal row."""
    now = now or utc_now()
    current = conn.execute(
        sa.select(graph_push_journal.c.attempts).where(graph_push_journal.c.serial == serial)
    ).first()
    values: dict[str, Any] = {"upn": upn, "step": step, "last_error": error, "updated_at": now}
    if device_id is not None:
        values["device_id"] = device_id
    if step == "activated":
        values["activated_at"] = now
    if current is None:
        conn.execute(
            graph_push_journal.insert().values(serial=serial, attempts=int(attempted), **values)
        )
        return
    if attempted:
        values["attempts"] = current.attempts + 1
    conn.execute(
        graph_push_journal.update().where(graph_push_journal.c.serial == serial).values(**values)
    )


def forget_journal(conn: sa.Connection, serial: str) -> None:
    conn.execute(graph_push_journal.delete().where(graph_push_journal.c.serial == serial))
