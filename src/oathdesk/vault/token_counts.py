"""How many tokens are in each state: kept as the vault writes, not counted on each view.

The start page and the overview show the tokens per state. Counting them on each view read the
whole tokens index, so the page cost grew with the vault (62 ms on 100,000 tokens on PostgreSQL
against 15 ms on 1,000; issue 15). Instead, every write that adds tokens or moves one to another
state appends what it changed, ``(state, +n)`` and ``(state, -n)`` rows, to
``token_state_changes`` in its own transaction, so the figures land or roll back with it; a
reader sums that table. Rows are only ever appended (never updated in place), so two operators
moving tokens at the same moment never wait on one counter row or deadlock over two; the reader
folds the rows into one per state once there are more than ``FOLD_AFTER``.

The write paths are few and all in the vault: ``UnitOfWork.add_tokens`` (every import and
``token add``), ``rows.update_token`` (each lifecycle move) and the sync's batch
(``entra_records.apply_sync_changes``). Tokens are never deleted. ``recount`` rebuilds the figures
from the tokens themselves (migration 0019, a restore, and the housekeeping check that the figures
still match, which would report a write path that forgot to record its change).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from oathdesk.vault.schema import token_state_changes, tokens

# A page view sums at most about this many rows before it folds them (a few hundred microseconds).
FOLD_AFTER = 500

_SUMS = sa.select(
    token_state_changes.c.state, sa.func.sum(token_state_changes.c.delta), sa.func.count()
).group_by(token_state_changes.c.state)


def record(conn: sa.Connection, changes: Mapping[str, int]) -> None:
    """Append what a write changed (state -> tokens added, negative for tokens that left it), in
    the writer's transaction."""
    shifted = [
        {"state": state, "delta": delta} for state, delta in sorted(changes.items()) if delta
    ]
    if shifted:
        conn.execute(token_state_changes.insert(), shifted)


def record_moves(conn: sa.Connection, moves: Iterable[tuple[str, str]]) -> None:
    """Record tokens moved from one state to another, given as (old, new) pairs."""
    changes: Counter[str] = Counter()
    for old, new in moves:
        if old != new:
            changes[old] -= 1
            changes[new] += 1
    record(conn, changes)


def read(conn: sa.Connection) -> tuple[dict[str, int], int]:
    """The tokens per state (states with none left out), and how many change rows were summed
    (the caller folds them when that passes ``FOLD_AFTER``)."""
    counts: dict[str, int] = {}
    summed = 0
    for state, total, rows in conn.execute(_SUMS):
        summed += int(rows)
        if total:
            counts[str(state)] = int(total)
    return counts, summed


def fold(conn: sa.Connection) -> None:
    """Replace the change rows by one row per state, in the caller's write transaction.

    On PostgreSQL a change another transaction appends meanwhile is not in this one's snapshot,
    so it is neither deleted nor summed here: it stays, and is summed next to the folded rows."""
    gone: Counter[str] = Counter()
    for state, delta in conn.execute(
        token_state_changes.delete().returning(
            token_state_changes.c.state, token_state_changes.c.delta
        )
    ):
        gone[str(state)] += int(delta)
    record(conn, gone)


def counted(conn: sa.Connection) -> dict[str, int]:
    """The tokens per state counted from the tokens table itself (a whole-index read)."""
    query = sa.select(tokens.c.state, sa.func.count()).group_by(tokens.c.state)
    return {str(state): int(count) for state, count in conn.execute(query)}


def recount(conn: sa.Connection) -> dict[str, int]:
    """Rebuild the figures from the tokens table, in the caller's write transaction; returns the
    states whose figure was wrong, with the difference (counted minus kept).

    On PostgreSQL the changes table is locked first (writers' appends wait until this commits):
    a writer that committed between the count and the rewrite would otherwise lose its change.
    A writer that has moved tokens but not yet appended its change is not counted here (not
    committed) and appends it after, so it is counted once."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE token_state_changes IN EXCLUSIVE MODE")
    kept, _ = read(conn)
    actual = counted(conn)
    conn.execute(token_state_changes.delete())
    record(conn, actual)
    wrong = {
        state: actual.get(state, 0) - kept.get(state, 0)
        for state in sorted(set(kept) | set(actual))
        if actual.get(state, 0) != kept.get(state, 0)
    }
    return wrong
