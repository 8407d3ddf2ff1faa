"""The trigram indexes behind the console's search: a substring of a UPN, display name, serial
or tracking reference found without reading every user and token (issue 15).

PostgreSQL: pg_trgm GIN indexes on ``lower(column)``, so ``lower(column) LIKE '%text%'`` reads
only candidate rows. PostgreSQL keeps them in step with every write itself. Creating the
extension needs the CREATE privilege on the database; where the role lacks it, the upgrade goes
on without the indexes (a warning in the log) and the search scans as before.

SQLite: an FTS5 table with the trigram tokenizer per table (``users_search`` over upn and
display name, ``tokens_search`` over serial and tracking), external content keyed by rowid.
Keeping FTS5 in step row by row is dear on the bulk import path: each ``executemany`` row is a
statement, and FTS5 writes out its pending terms at every statement, so an insert trigger cost
75 us a row (7.5 s per 100,000 users, the same again for tokens). Instead, the index covers the
rows up to a mark (``search_marks.upto``, the highest rowid indexed) and the rows after it, the
tail, are matched by ``LIKE`` on a rowid range. Inserts need nothing then; updates of the
searched columns and deletes of indexed rows go through triggers (rare, and one statement each).
A search that finds the tail longer than ``TAIL_SCANNED`` rows first indexes it in one
``INSERT ... SELECT`` (one flush: about 7 us a row), in its own writing transaction.

A new row's rowid is one more than the greatest rowid in the table, so it always lands in the
tail, except after the greatest rows were deleted: the delete trigger then lowers the mark to
the greatest rowid left, so a rowid given again is never taken for an indexed one.

A SQLite migration that rebuilds ``users`` or ``tokens`` (Alembic's batch mode copies the table,
drops it and renames the copy) drops their triggers and changes rowids: it must call
``reset_sqlite`` after, which empties the indexes, puts the triggers back and lets the next
search index the rows again.
"""

# ruff: noqa: S608 - the SQL built here names only tables and columns of SEARCHED, never input

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import db

log = logging.getLogger("oathdesk.vault")

MIN_TRIGRAM = 3  # shorter text has no trigram to look up: see lookup's prefix search
TAIL_SCANNED = 2000  # unindexed rows a search matches by LIKE before it indexes them first
FEW = 2000  # candidates a search sorts itself; beyond, it reads the table in its page's order

# Searched table -> (its FTS5 table, the columns searched). Names from our schema, never input.
SEARCHED: dict[str, tuple[str, tuple[str, ...]]] = {
    "users": ("users_search", ("upn", "display_name")),
    "tokens": ("tokens_search", ("serial", "tracking")),
}
PG_INDEXES = (
    ("ix_users_upn_trgm", "users", "upn"),
    ("ix_users_display_name_trgm", "users", "display_name"),
    ("ix_tokens_serial_trgm", "tokens", "serial"),
    ("ix_tokens_tracking_trgm", "tokens", "tracking"),
)


def match_phrase(text: str) -> str:
    """``text`` as one FTS5 string: every character literal (quotes doubled), so the operator's
    ``OR``, ``NEAR``, ``*``, ``-`` or parentheses are text to find, never query syntax."""
    return '"' + text.replace('"', '""') + '"'


# -- schema (the migration's, and reset_sqlite's) ---------------------------------------------


def _sqlite_triggers(table: str) -> list[str]:
    fts, columns = SEARCHED[table]
    names = ", ".join(columns)
    old = ", ".join(f"old.{c}" for c in columns)
    new = ", ".join(f"new.{c}" for c in columns)
    indexed = f"(SELECT upto FROM search_marks WHERE name = '{table}')"
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)
    return [
        # An indexed row whose searched text changed: its old terms out, its new ones in.
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} "
        f"WHEN old.rowid <= {indexed} AND ({changed}) BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END",
        # A deleted row's terms out if it was indexed; the mark never above the greatest rowid
        # left, so the rowid SQLite may hand out again lands in the tail.
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) "
        f"SELECT 'delete', old.rowid, {old} WHERE old.rowid <= {indexed}; "
        f"UPDATE search_marks SET upto = MIN(upto, COALESCE((SELECT MAX(rowid) FROM {table}), 0))"
        f" WHERE name = '{table}'; END",
    ]


def install(conn: sa.Connection) -> None:
    """Create the search indexes and fill them from the rows already there."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "CREATE TABLE search_marks (name VARCHAR(16) PRIMARY KEY, upto INTEGER NOT NULL)"
        )
        for table, (fts, columns) in SEARCHED.items():
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {fts} USING fts5({', '.join(columns)}, "
                f"content='{table}', tokenize='trigram')"
            )
            conn.exec_driver_sql(f"INSERT INTO search_marks VALUES ('{table}', 0)")
            for trigger in _sqlite_triggers(table):
                conn.exec_driver_sql(trigger)
        catch_up(conn)
    elif conn.dialect.name == "postgresql":
        _install_postgres(conn)


def _install_postgres(conn: sa.Connection) -> None:
    # In a savepoint: a refused CREATE EXTENSION must not abort the upgrade's transaction.
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as refused:
        log.warning(
            "the search indexes were not created: the database refused the pg_trgm extension "
            "(%s); search still works but reads every user and token; docs/vault.md "
            "(Search indexes) gives the statements that add them later",
            db.storage_error(refused).message,
        )
        return
    # GIN's pending list (fast update) is read whole by every search until a vacuum merges
    # it: at the default 4 MB, just after an import of 100,000 users, each search took 0.2 s
    # until autovacuum came by. 256 kB keeps that small and costs the import no more
    # (fastupdate off: 21 s more per 100,000 users and tokens).
    for name, table, column in PG_INDEXES:
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin (lower({column}) gin_trgm_ops) WITH (gin_pending_list_limit = 256)"
        )


def uninstall(conn: sa.Connection) -> None:
    """Drop what ``install`` created (the extension stays: other schemas may use it)."""
    if conn.dialect.name == "sqlite":
        for fts, _ in SEARCHED.values():
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {fts}_update")
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {fts}_delete")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {fts}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS search_marks")
    elif conn.dialect.name == "postgresql":
        for name, _, _ in PG_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def reset_sqlite(conn: sa.Connection) -> None:
    """After a migration rebuilt ``users`` or ``tokens``: the indexes emptied, the triggers
    back, every row in the tail (the next search indexes them)."""
    uninstall(conn)
    install(conn)


# -- keeping up, and the search's conditions ---------------------------------------------------

# The search's SQL, written out once per table: built as expressions on each search it cost more
# Python time than the database took to answer.
_BEHIND = (
    "SELECT MAX((SELECT COALESCE(MAX(rowid), 0) FROM users)"
    " - (SELECT upto FROM search_marks WHERE name = 'users'),"
    " (SELECT COALESCE(MAX(rowid), 0) FROM tokens)"
    " - (SELECT upto FROM search_marks WHERE name = 'tokens'))"
)
_LIKE = {
    table: "(" + " OR ".join(f"lower({c}) LIKE :pattern ESCAPE '/'" for c in columns) + ")"
    for table, (_, columns) in SEARCHED.items()
}
# SQLite: the rowids of the rows holding the text, the FTS5 table's and the tail's.
_CANDIDATES = {
    table: f"SELECT rowid FROM {fts} WHERE {fts} MATCH :phrase UNION ALL "
    f"SELECT rowid FROM {table} WHERE rowid > "
    f"(SELECT upto FROM search_marks WHERE name = '{table}') AND {_LIKE[table]}"
    for table, (fts, _) in SEARCHED.items()
}


def like_pattern(text: str) -> str:
    """``%text%`` in lower case with the operator's %, _ and / taken literally (ESCAPE '/')."""
    escaped = text.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def behind(conn: sa.Connection) -> int:
    """The longer tail, in rowids past its mark (at least its unindexed rows)."""
    return int(conn.exec_driver_sql(_BEHIND).scalar_one())


def catch_up(conn: sa.Connection) -> None:
    """Index the tails (in the caller's writing transaction): one statement a table."""
    for name, (fts, columns) in SEARCHED.items():
        names = ", ".join(columns)
        upto = conn.exec_driver_sql("SELECT upto FROM search_marks WHERE name = ?", (name,))
        start = int(upto.scalar_one())
        top = int(conn.exec_driver_sql(f"SELECT COALESCE(MAX(rowid), 0) FROM {name}").scalar_one())
        if top <= start:
            continue
        conn.exec_driver_sql(
            f"INSERT INTO {fts}(rowid, {names}) SELECT rowid, {names} FROM {name} WHERE rowid > ?",
            (start,),
        )
        conn.exec_driver_sql("UPDATE search_marks SET upto = ? WHERE name = ?", (top, name))


def keep_up(engine: sa.Engine) -> None:
    """Before a search on SQLite: index the tails if either is longer than ``TAIL_SCANNED``
    (after an import), so the search matches at most that many rows by LIKE. A vault that cannot
    be written now (a read-only file, another writer for longer than the writer's wait) is
    searched as it is: slower, still right."""
    if engine.dialect.name != "sqlite":
        return
    with db.reading(engine) as conn:
        if behind(conn) <= TAIL_SCANNED:
            return
    try:
        with db.writing(engine) as conn:
            catch_up(conn)
    except sa.exc.DBAPIError as refused:
        log.warning(
            "the search index could not be brought up to date (%s); searching without it",
            db.storage_error(refused).message,
        )
    except db.StorageError as busy:  # another writer held the vault for the whole wait
        log.warning("the search index was not brought up to date: %s", busy.message)


@contextlib.contextmanager
def planned_each(conn: sa.Connection) -> Iterator[None]:
    """On PostgreSQL, plan each search query for its own text while this lasts.

    psycopg prepares a statement run five times, and PostgreSQL may then keep one plan for any
    ``LIKE $1``: one that cannot know the text's trigrams, walking the UPN index and testing
    every row (0.2 s on 100,000 users, where the index answers in 0.1 ms). So psycopg prepares
    nothing here: a statement sent unprepared is planned for its own values. (A session's
    ``SET plan_cache_mode`` and its ``RESET`` did the same at two round trips per search.)"""
    if conn.dialect.name != "postgresql":
        yield
        return
    driver: Any = conn.connection.dbapi_connection  # psycopg's own connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None  # psycopg: prepare no statement on this connection
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


def like_condition(table: sa.Table, text: str) -> sa.TextClause:
    """Rows of ``table`` whose searched columns contain ``text`` (any case), tested row by row;
    on PostgreSQL the expressions its pg_trgm indexes are on, which it answers from them."""
    return sa.text(_LIKE[table.name]).bindparams(pattern=like_pattern(text))


def substring_condition(conn: sa.Connection, table: sa.Table, text: str) -> sa.TextClause:
    """Rows of ``table`` whose searched columns contain ``text`` (at least MIN_TRIGRAM long),
    as the index finds them."""
    if conn.dialect.name != "sqlite":
        return like_condition(table, text)
    candidates = sa.text(f"rowid IN ({_CANDIDATES[table.name]})")
    return candidates.bindparams(phrase=match_phrase(text), pattern=like_pattern(text))


def few_match(conn: sa.Connection, table: sa.Table, text: str) -> bool:
    """Whether at most FEW rows of ``table`` contain ``text``, counted from the index up to
    FEW + 1 (on SQLite the FTS5 table stops there; the tail is at most TAIL_SCANNED rows)."""
    if conn.dialect.name == "sqlite":
        candidates = _CANDIDATES[table.name]
        found = {"phrase": match_phrase(text), "pattern": like_pattern(text)}
    else:
        candidates = f"SELECT 1 FROM {table.name} WHERE {_LIKE[table.name]}"
        found = {"pattern": like_pattern(text)}
    counted = sa.text(f"SELECT count(*) FROM ({candidates} LIMIT {FEW + 1}) AS found")
    return int(conn.execute(counted, found).scalar_one()) <= FEW
