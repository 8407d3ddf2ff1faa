"""The Entra (Graph) connection and the push journal, as stored; and the one vault change
only `entra sync` makes (a stock token Entra gave to a user gets that user).

Rows in, rows out, inside the caller's transaction. What the columns mean, and how the sealed
ones are sealed, is ``services/entra_store.py``'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault import rows
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import Token, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.schema import graph_connection, graph_push_journal
from oathdesk.vault.work import UnitOfWork

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
    step: str  # creating | created | activated | stock (created unassigned, for self-service)
    device_id: str | None
    attempts: int
    last_error: str


def read_journal(conn: sa.Connection, serials: list[str] | None = None) -> dict[str, JournalEntry]:
    if serials is None:
        return _journal_rows(conn, sa.select(graph_push_journal))
    found: dict[str, JournalEntry] = {}
    # In chunks: a sync asks for every serial of a 10,000-token inventory.
    for start in range(0, len(serials), rows.IN_CHUNK):
        chunk = serials[start : start + rows.IN_CHUNK]
        query = sa.select(graph_push_journal).where(graph_push_journal.c.serial.in_(chunk))
        found.update(_journal_rows(conn, query))
    return found


def _journal_rows(conn: sa.Connection, query: sa.Select[Any]) -> dict[str, JournalEntry]:
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


# -- what `entra sync` writes ----------------------------------------------------------------------


def give_stock_token(
    work: UnitOfWork, token: Token, upn: str, *, details: Mapping[str, Any]
) -> None:
    """A token registered in Entra without a user (``entra push --stock``) gets the user who
    self-assigned it there; it stays ``registered``. ``token`` is the version the caller read:
    if it changed meanwhile (or got a user), the update is refused, never applied twice."""
    require(work.actor, Permission.MANAGE_TOKENS)
    if token.state is not TokenState.REGISTERED or token.upn:
        raise Conflict(f"token {token.serial} is no longer a registered stock token")
    owner_id = rows.require_user_id(work.conn, upn)
    limit = work.settings().max_tokens_per_user
    if rows.held_token_count(work.conn, owner_id) >= limit:
        raise Conflict(
            f"user {upn} already has {limit} tokens, the limit; retire one first "
            "or raise max_tokens_per_user"
        )
    rows.update_token(work.conn, token, user_id=owner_id, assigned_at=utc_now())
    work.audit("token.assigned", upn=upn, serial=token.serial, details=details)


def held_token_counts(conn: sa.Connection, upns: list[str]) -> dict[str, int]:
    """How many tokens each of ``upns`` holds or is about to hold (absent: none, or no such
    user): what counts against the vault's tokens-per-user limit."""
    ids = rows.user_ids(conn, upns)
    held = rows.held_token_counts(conn, sorted(ids.values()))
    return {upn: held[owner] for upn, owner in ids.items() if owner in held}


def ensure_user(work: UnitOfWork, upn: str, *, notes: str) -> bool:
    """Add the user ``upn`` unless the vault has them; True when added (audited user.added)."""
    if rows.user_id(work.conn, upn) is not None:
        return False
    work.add_user(upn, display_name="", phone="", notes=notes)
    return True


def tokens_for_entra(
    conn: sa.Connection, serials: list[str], states: frozenset[TokenState]
) -> list[Token]:
    """See ``rows.tokens_for_entra``."""
    return rows.tokens_for_entra(conn, serials, states)
