"""The Entra (Graph) connection and the push journal, as stored; and the vault changes
`entra sync` makes (a stock token Entra gave to a user gets that user; a token delivered), a
batch of them set-based: a few statements and one audit append however many changes.

Rows in, rows out, inside the caller's transaction. What the columns mean, and how the sealed
ones are sealed, is ``services/entra_store.py``'s business.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.upn import validate_upn
from oathdesk.vault import rows, token_counts
from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.bulk import insert_tuples, sqlite_datetime
from oathdesk.vault.ids import new_ids
from oathdesk.vault.lifecycle import TokenState, check_transition
from oathdesk.vault.models import Token, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.schema import graph_connection, graph_push_journal, tokens, users
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


@dataclass(frozen=True)
class SyncChange:
    """One change `entra sync` applies: ``token`` as the sync read it; ``give``: the stock token
    gets ``upn`` (added to the vault if missing); ``deliver``: it becomes delivered."""

    token: Token
    upn: str
    give: bool
    deliver: bool
    details: Mapping[str, Any] = field(default_factory=dict)


# One statement for every change of a batch (executemany): a value left None keeps the column
# (a delivery alone keeps the user); the version read is checked and bumped, as update_token does.
_APPLY_CHANGE = (
    tokens.update()
    .where(tokens.c.id == sa.bindparam("b_id"), tokens.c.version == sa.bindparam("b_version"))
    .values(
        user_id=sa.func.coalesce(
            sa.bindparam("b_user", type_=tokens.c.user_id.type), tokens.c.user_id
        ),
        assigned_at=sa.func.coalesce(
            sa.bindparam("b_assigned", type_=tokens.c.assigned_at.type), tokens.c.assigned_at
        ),
        state=sa.func.coalesce(sa.bindparam("b_state", type_=tokens.c.state.type), tokens.c.state),
        delivered_at=sa.func.coalesce(
            sa.bindparam("b_delivered", type_=tokens.c.delivered_at.type), tokens.c.delivered_at
        ),
        updated_at=sa.bindparam("b_now", type_=tokens.c.updated_at.type),
        version=tokens.c.version + 1,
    )
)


def apply_sync_changes(
    work: UnitOfWork,
    changes: Sequence[SyncChange],
    *,
    new_user_notes: str,
    also_record: Sequence[AuditEntry] = (),
) -> list[str]:
    """Apply ``changes`` in ``work``'s transaction, all or none; returns the UPNs of the users
    it added. Set-based: the users are read in one query and the missing ones inserted in one,
    the holders' token counts read in one, the tokens updated by one executemany, and every
    record (``user.added``, ``token.assigned``, ``token.delivered``, each as the single
    operations write them, then ``also_record``) appended in one go.

    Conflict (nothing written) when a token is no longer as the sync read it (its version moved
    on, or it is no longer a stock token to give), or a user would go over the vault's tokens
    per user: the caller applies the batch's changes one by one to leave only that one out."""
    if not changes:
        if also_record:
            work.audit_many(also_record)
        return []
    conn, now = work.conn, utc_now()
    if any(c.give for c in changes):
        require(work.actor, Permission.MANAGE_TOKENS)
    if any(c.deliver for c in changes):
        require(work.actor, Permission.SHIP)
    for change in changes:
        token = change.token
        if change.give and (token.state is not TokenState.REGISTERED or token.upn):
            raise Conflict(f"token {token.serial} is no longer a registered stock token")
        if change.deliver:
            check_transition(token.serial, token.kind, token.state, TokenState.DELIVERED)
    givers = sorted({validate_upn(c.upn) for c in changes if c.give})
    owner_ids = rows.user_ids(conn, givers)
    added = [upn for upn in givers if upn not in owner_ids]
    if added:
        require(work.actor, Permission.MANAGE_USERS)
        stamp: Any = sqlite_datetime(now) if conn.dialect.name == "sqlite" else now
        fresh = dict(zip(added, new_ids(len(added)), strict=True))
        insert_tuples(
            conn,
            users,
            ("id", "upn", "display_name", "phone", "notes", "created_at"),
            [(fresh[upn], upn, "", "", new_user_notes, stamp) for upn in added],
        )
        _check_limit(work, changes, owner_ids)
        owner_ids.update(fresh)
    else:
        _check_limit(work, changes, owner_ids)
    updates = [
        {
            "b_id": c.token.id,
            "b_version": c.token.version,
            "b_user": owner_ids[validate_upn(c.upn)] if c.give else None,
            "b_assigned": now if c.give else None,
            "b_state": TokenState.DELIVERED.value if c.deliver else None,
            "b_delivered": now if c.deliver else None,
            "b_now": now,
        }
        for c in changes
    ]
    if conn.execute(_APPLY_CHANGE, updates).rowcount != len(updates):
        which = f"token {changes[0].token.serial}" if len(changes) == 1 else "a token of the batch"
        raise Conflict(f"{which} changed meanwhile; reload it and try again")
    token_counts.record_moves(
        conn, [(c.token.state.value, TokenState.DELIVERED.value) for c in changes if c.deliver]
    )
    entries = [AuditEntry(work.actor.name, "user.added", upn) for upn in added]
    for change in changes:
        serial, upn, details = change.token.serial, change.upn, dict(change.details)
        if change.give:
            entries.append(AuditEntry(work.actor.name, "token.assigned", upn, serial, details))
        if change.deliver:
            owner = upn if change.give else change.token.upn or ""
            entries.append(AuditEntry(work.actor.name, "token.delivered", owner, serial, details))
    work.audit_many([*also_record, *entries])
    return added


def _check_limit(
    work: UnitOfWork, changes: Sequence[SyncChange], owner_ids: Mapping[str, str]
) -> None:
    """No user over the vault's tokens per user with the stock tokens this batch gives them
    (only users the vault had already can hold tokens; the ones just added hold none)."""
    giving = Counter(validate_upn(c.upn) for c in changes if c.give)
    if not giving:
        return
    limit = work.settings().max_tokens_per_user
    held = rows.held_token_counts(work.conn, sorted(owner_ids[u] for u in giving if u in owner_ids))
    for upn, count in sorted(giving.items()):
        total = held.get(owner_ids.get(upn, ""), 0) + count
        if total > limit:
            raise Conflict(
                f"user {upn} already has {limit} tokens, the limit; retire one first "
                "or raise max_tokens_per_user"
            )


def held_token_counts(conn: sa.Connection, upns: list[str]) -> dict[str, int]:
    """How many tokens each of ``upns`` holds or is about to hold (absent: none, or no such
    user): what counts against the vault's tokens-per-user limit."""
    ids = rows.user_ids(conn, upns)
    held = rows.held_token_counts(conn, sorted(ids.values()))
    return {upn: held[owner] for upn, owner in ids.items() if owner in held}


def tokens_for_entra(
    conn: sa.Connection, serials: list[str], states: frozenset[TokenState]
) -> list[Token]:
    """See ``rows.tokens_for_entra``."""
    return rows.tokens_for_entra(conn, serials, states)
