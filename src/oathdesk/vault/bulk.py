"""Fast multi-row inserts, and the rows of a token batch built (and encrypted) before insert.

On SQLite, SQLAlchemy's per-parameter type processing costs more than the insert itself, so rows
go straight to the driver's ``executemany`` as tuples, with values already in the form
SQLAlchemy would store. Other databases use SQLAlchemy's own ``insertmanyvalues`` batching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import db
from oathdesk.vault.ids import new_ids
from oathdesk.vault.keys import DataKey
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import TokenColumns

log = logging.getLogger("oathdesk.vault")

PROGRESS_EVERY = 1000
ANALYZE_AFTER = 10_000  # tokens: a PostgreSQL import of this many is followed by ANALYZE

# The columns a new token's row is inserted with (models.TOKEN_COLUMNS are those a Token is read
# from: the times a lifecycle move sets come later).
INSERTED_TOKEN_COLUMNS = (
    "id",
    "serial",
    "manufacturer",
    "model",
    "kind",
    "algorithm",
    "digits",
    "period",
    "state",
    "user_id",
    "created_at",
    "updated_at",
    "assigned_at",
    "added_seq",
    "version",
)
SECRET_COLUMNS = ("token_id", "key_id", "nonce", "ciphertext", "fingerprint")


def sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's storage format for DateTime on SQLite (UTC; the zone is not stored)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return sqlite_datetime(value)
    if isinstance(value, bool):
        return int(value)
    return value


def insert_tuples(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order). On SQLite the values must already be in
    storage form (see ``sqlite_datetime``); elsewhere they are ordinary Python values."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    # Table and column names come from our schema, never from input; values are bound.
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)  # noqa: S608


# Up to this many values are looked up with IN (...) in chunks; more are matched against one
# read of the column when the table is at most _SCAN_RATIO times their number: a hundred chunks
# of 500 bound values cost SQLAlchemy more to compile than SQLite to answer.
_SEEK_ALWAYS = 2000
_SCAN_RATIO = 4
_IN_CHUNK = 500


def lookup(
    conn: sa.Connection, key: sa.Column[Any], value: sa.Column[Any], wanted: Sequence[Any]
) -> dict[Any, Any]:
    """``value`` of the rows whose ``key`` is one of ``wanted`` (absent: no such row)."""
    chosen = set(wanted)
    if not chosen:
        return {}
    if len(chosen) > _SEEK_ALWAYS:
        rows = conn.execute(sa.select(sa.func.count()).select_from(key.table)).scalar_one()
        if int(rows) <= _SCAN_RATIO * len(chosen):
            scan = conn.execute(sa.select(key, value))
            return {found: answer for found, answer in scan if found in chosen}
    ordered = sorted(chosen)
    found: dict[Any, Any] = {}
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        # Pairs, not the result itself: a Result has keys(), which dict.update() would call.
        found.update(
            (row[0], row[1]) for row in conn.execute(sa.select(key, value).where(key.in_(chunk)))
        )
    return found


def insert_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, ordinary Python values)."""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), list(rows))
        return
    insert_tuples(
        conn, table, columns, [tuple(_sqlite_value(row[c]) for c in columns) for row in rows]
    )


def analyze_after_import(engine: sa.Engine, inserted: int) -> None:
    """PostgreSQL, after an import of at least ``ANALYZE_AFTER`` tokens was committed: bring the
    planner's statistics of the tables it filled up to date.

    Autovacuum would analyze them too, but only on its next round (a minute apart by default,
    later while it works through other tables), and until then the planner sees the vault as it
    was before: value spreads and distinct counts of a table a fraction of its new size, which
    can choose a scan or a join order that was right for the small table. ANALYZE reads a
    sample of each table (30,000 rows at the default statistics target), so its cost stops
    growing with the import: 0.8 s after a 50,000-token import that took 28 s here. Failing
    here must not turn the committed import into an error: the warning says so and autovacuum
    catches up later.
    """
    if inserted < ANALYZE_AFTER or engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE users, tokens, token_secrets")
            conn.commit()
    except sa.exc.DBAPIError as failed:
        log.warning(
            "the import is committed, but ANALYZE after it failed (%s); autovacuum will "
            "analyze the tables later",
            db.storage_error(failed).message,
        )


@dataclass
class TokenBatch:
    """The rows of a batch of new tokens, secrets already encrypted and bound to their ids, and
    each secret's fingerprint with the serial of its token."""

    tokens: list[tuple[Any, ...]]
    secrets: list[tuple[Any, ...]]
    fingerprints: dict[bytes, str]


def build_token_batch(
    items: TokenColumns,
    user_ids: Mapping[str, str],
    data_key: DataKey,
    *,
    now: datetime,
    added_seq: int,
    for_sqlite: bool,
    progress: Callable[[int, int], None] | None = None,
    secret_fingerprints: Sequence[bytes] | None = None,
) -> TokenBatch:
    """Token and secret rows for ``items``; ``user_ids`` maps each item's (canonical) UPN.
    ``secret_fingerprints``: row i the fingerprint of item i's secret under ``data_key``
    (ignored for an item without one), when the caller has them already (an import computes
    them for its conflict check, ``Vault.secret_fingerprints``); else computed here.

    Ids are time-ordered and given in item order, so sorting nothing keeps the primary-key
    inserts at the end of their index.
    """
    stamp: Any = sqlite_datetime(now) if for_sqlite else now
    total = len(items)
    ids = new_ids(total)
    in_stock, assigned = TokenState.IN_STOCK.value, TokenState.ASSIGNED.value
    key_id = data_key.key_id
    # dict.get(None) is None: tokens without a user need no test. kind and algorithm are
    # StrEnums, i.e. str: both drivers store their value as is.
    owners = list(map(user_ids.get, items.upns))  # type: ignore[arg-type]
    # Columns zipped into tuples in C (map over zip), not a Python loop per token: this is
    # the Python side of an import of 100,000.
    states = [assigned if user_id else in_stock for user_id in owners]
    assigned_at = [stamp if user_id else None for user_id in owners]
    token_rows = list(
        zip(
            ids,
            items.serials,
            items.manufacturers,
            items.models,
            items.kinds,
            items.algorithms,
            items.digits,
            items.periods,
            states,
            owners,
            repeat(stamp),
            repeat(stamp),
            assigned_at,
            repeat(added_seq),
            repeat(1),
            strict=False,  # repeat() is endless; ids has exactly one per item
        )
    )
    batch = TokenBatch(token_rows, [], {})
    given = secret_fingerprints
    for start in range(0, total, PROGRESS_EVERY):
        end = min(start + PROGRESS_EVERY, total)
        with_secrets = [
            (token_id, serial, secret)
            for token_id, serial, secret in zip(
                ids[start:end], items.serials[start:end], items.secrets[start:end], strict=True
            )
            if secret is not None
        ]
        if given is None:
            chunk_fps = data_key.fingerprints([secret for _, _, secret in with_secrets])
        else:
            chunk_fps = [
                fp
                for fp, secret in zip(given[start:end], items.secrets[start:end], strict=True)
                if secret is not None
            ]
        batch.secrets += [
            (token_id, key_id, nonce, ciphertext, fingerprint)
            for (token_id, _, _), (nonce, ciphertext), fingerprint in zip(
                with_secrets, data_key.encrypt_many(with_secrets), chunk_fps, strict=True
            )
        ]
        batch.fingerprints.update(
            zip(chunk_fps, [serial for _, serial, _ in with_secrets], strict=True)
        )
        if progress is not None:
            progress(end, total)
    return batch
