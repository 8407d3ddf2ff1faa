"""Engines, connection settings and migrations.

SQLite runs in WAL mode with ``secure_delete`` (a purged secret's bytes are zeroed in the file),
foreign keys on, and every writing transaction started with BEGIN IMMEDIATE so writers queue
instead of failing half-way; reading transactions (``reading``) start deferred and see a snapshot
without blocking writers. PostgreSQL needs nothing special beyond row locks taken where needed.

Writers on one SQLite file also queue in ``writing`` (a lock per process, then a file lock,
``platform_io.FileLock``, on a ``-writer`` file beside the vault shared by every process):
SQLite's own busy handler retries by sleeping 1, 2, 5, 10 ... ms, so under load the write lock
sat free while waiters slept, and a second server process could starve. The queue only orders
writers; SQLite's lock (and ``busy_timeout`` for writers that do not queue, such as another
tool) still guards the data.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import OathdeskError
from oathdesk.platform_io import FileLock, chmod_private
from oathdesk.vault.schema_version import schema_head

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StorageError(OathdeskError):
    """The database could not do what was asked (busy, read-only, full, unreachable)."""

    code = "storage_error"
    exit_code = 6


class ConstraintRefused(StorageError):
    """The database refused a row (a duplicate, a broken link, a trigger); nothing changed."""

    code = "constraint_refused"


def _driver_reason(error: sa.exc.DBAPIError) -> str:
    """The driver's first line (never the statement's values)."""
    return str(error.orig).strip().splitlines()[0][:120] if error.orig else type(error).__name__


# The driver's words for a cause an admin can act on, and what to tell them (SQLite, then
# psycopg/libpq). Each says the true reason instead of a catch-all "check the path".
_CAUSES = (
    (
        ("readonly database", "read-only file system", "read-only transaction"),
        "the vault is read-only (a read-only mount, file or replica); reading works, changes "
        "need it writable",
    ),
    (
        ("database or disk is full", "no space left", "could not extend file"),
        "the disk holding the vault is full; free space and try again",
    ),
    (
        ("database is locked", "lock timeout", "could not obtain lock"),
        "another process holds the vault's write lock; try again when it is done",
    ),
    (
        ("permission denied", "authentication failed", "unable to open database file"),
        "the vault cannot be opened by this user (permissions, or the database's login); "
        "check the file's owner and mode, or the user and password in the URL",
    ),
)


def _cause(reason: str) -> str | None:
    lowered = reason.lower()
    for words, advice in _CAUSES:
        if any(word in lowered for word in words):
            return advice
    return None


def storage_error(error: sa.exc.DBAPIError) -> StorageError:
    """A one-line error for a database failure: its true cause where known, never the values."""
    reason = _driver_reason(error)
    kind = ConstraintRefused if isinstance(error, sa.exc.IntegrityError) else StorageError
    cause = None if kind is ConstraintRefused else _cause(reason)
    if cause is not None:
        return kind(f"{cause}; nothing was changed ({reason})")
    return kind(
        f"the vault could not complete the change ({reason}); nothing was changed. "
        "Check the database (busy, read-only, disk full?) and try again"
    )


def open_error(display: str, url: str, error: sa.exc.DBAPIError) -> StorageError:
    """Why the vault at ``display`` cannot be opened: an unreachable server by host and port,
    else the cause the driver gives; the path only when it is the path."""
    reason = _driver_reason(error)
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        lowered = reason.lower()
        if any(
            words in lowered
            for words in (
                "connection refused",
                "could not connect",
                "timeout expired",
                "could not translate host",
                "no route to host",
                "connection failed",
            )
        ):
            where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
            return StorageError(
                f"cannot reach the database server at {where} ({reason}); check that it is "
                "running and that this machine may connect to it"
            )
    cause = _cause(reason)
    if cause is not None:
        return StorageError(f"cannot open the vault at {display}: {cause} ({reason})")
    return StorageError(
        f"cannot open the vault at {display} ({reason}); check the path or database URL"
    )


# Connections kept open: the web server runs requests on up to 40 threads (anyio's default);
# a smaller pool closed and reopened connections (and re-ran their PRAGMAs) under load.
POOL_SIZE = 20
POOL_OVERFLOW = 40


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        _create_private_file(database)
        if database and database != ":memory:":
            read_only = _read_only_uri(database)
            engine = sa.create_engine(
                "sqlite:///" + read_only + "&uri=true" if read_only else url,
                connect_args={"timeout": 30},
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
            )
            _GATES[engine] = _WriterGate(database + "-writer")
        else:
            engine = sa.create_engine(url, connect_args={"timeout": 30})
        if database and database != ":memory:" and _read_only_uri(database):
            sa.event.listen(engine, "connect", _sqlite_on_connect_read_only)
        else:
            sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    # Last in, first out: the connections in use stay few and warm (psycopg prepares a
    # statement on the server after a connection has run it a few times), and the rest idle.
    engine = sa.create_engine(
        url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_use_lifo=True
    )
    sa.event.listen(engine, "checkout", functools.partial(_server_alive, engine.dialect))
    sa.event.listen(engine, "checkin", _checked_in)
    sa.event.listen(engine, "connect", _checked_in)  # just made: no ping needed
    return engine


# A connection idle longer than this is pinged (one round trip) before use; a busier one is
# only checked for a closed socket, which costs no round trip (see _server_alive).
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "oathdesk_idle_since"


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _server_alive(dialect: sa.Dialect, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """What ``pool_pre_ping`` did (a connection the server closed, by a restart or an idle
    timeout, is replaced before a request uses it) without its round trip on every checkout:
    that ping, with the BEGIN and ROLLBACK of a read, tripled the round trips of a page.

    A server that ends a session sends its reason and closes the socket, so an idle
    connection's socket with something to read has been closed; one idle for long is pinged
    too (a connection dropped on the way, by a firewall, leaves no trace on the socket).
    DisconnectionError: the pool discards this connection and checks out another."""
    idle_since = record.info.get(_IDLE_SINCE)
    try:
        if dbapi_connection.closed or dbapi_connection.broken or _readable(dbapi_connection):
            raise sa.exc.DisconnectionError("the database server closed the connection")
        if idle_since is None or time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs
    except (OSError, ValueError, dialect.loaded_dbapi.Error) as error:
        raise sa.exc.DisconnectionError(str(error)) from None


def _readable(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has anything to read (no round trip): the server
    sends nothing unasked on a connection between statements except when it ends it."""
    import select

    readable, _, _ = select.select([dbapi_connection.pgconn.socket], [], [], 0)
    return bool(readable)


class _WriterGate:
    """One writer at a time on a SQLite file: a thread lock, then an exclusive file lock."""

    def __init__(self, lock_path: str) -> None:
        # Re-entrant: a write begun inside another on the same thread must not wait for itself
        # here (SQLite then refuses it after its busy timeout, as it always did).
        self._lock = threading.RLock()
        self._depth = 0
        self._file_lock = FileLock(Path(lock_path))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            locked = False
            try:
                locked = _lock_file(self._file_lock)
                yield
            finally:
                self._depth = 0
                if locked:
                    self._file_lock.release()


WRITER_WAIT_SECONDS = 30  # as long as SQLite's busy_timeout above


def _lock_file(lock: FileLock) -> bool:
    """An exclusive file lock, waiting in steps of at most half a millisecond (a write holds it for
    about that long) and at most WRITER_WAIT_SECONDS: a writer that never finishes (another
    tool holding the vault) gets the same clear error as SQLite's busy timeout, not a hang.
    False: no lock file can be made (a read-only directory), and SQLite's own lock is enough."""
    delay = 0.00005
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    while True:
        try:
            if lock.try_acquire():
                return True
        except OSError:
            return False
        if time.monotonic() >= deadline:
            raise StorageError(
                "another process has been writing to the vault for "
                f"{WRITER_WAIT_SECONDS} s; nothing was changed. Try again when it is done"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.0005)


_GATES: weakref.WeakKeyDictionary[sa.Engine, _WriterGate] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A writing transaction (BEGIN IMMEDIATE on SQLite), queued behind other writers."""
    gate = _GATES.get(engine)
    with gate.held() if gate is not None else contextlib.nullcontext(), engine.begin() as conn:
        yield conn


def _read_only_uri(database: str) -> str | None:
    """A read-only SQLite URI for a vault that cannot be written (a read-only mount or file), so
    that it is still read: SQLite's WAL mode otherwise fails to open it at all. Without a WAL
    file there is nothing beside the file to read, and ``immutable`` lets SQLite read it with
    no shared-memory file (which it cannot create there); writes are then refused as
    read-only. None: writable (or missing), opened as usual."""
    folder = os.path.dirname(database) or "."
    if not os.path.exists(database) or (
        os.access(database, os.W_OK) and os.access(folder, os.W_OK)
    ):
        return None
    from urllib.parse import quote

    flags = "mode=ro" if os.path.exists(database + "-wal") else "mode=ro&immutable=1"
    return f"file:{quote(os.path.abspath(database))}?{flags}"


def _sqlite_on_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _create_private_file(path: str | None) -> None:
    """The vault file holds only ciphertext, but it is nobody else's business: mode 0600."""
    if not path or path == ":memory:":
        return
    if not os.path.exists(path) and os.path.isdir(os.path.dirname(path) or "."):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


SQLITE_PAGE_SIZE = 16384


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how transactions start (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        # Only a new (empty) file takes it, and only before WAL mode is set; an existing vault
        # keeps its size. 16 KiB pages, not the default 4 KiB: an import of 100,000 tokens
        # writes 14 B-trees, and with a quarter as many pages to split, fill and copy at the
        # checkpoint, it spends 0.3 s (15%) less in SQLite (docs/benchmarks.md).
        f"page_size={SQLITE_PAGE_SIZE}",
        "journal_mode=WAL",
        "secure_delete=ON",
        "foreign_keys=ON",
        "synchronous=FULL",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    database = cursor.execute("PRAGMA database_list").fetchone()[2]
    cursor.close()
    if database:
        # SQLite creates the WAL and shared-memory files with the umask's mode; they hold the
        # same ciphertext as the vault file, so they get its mode.
        for suffix in ("-wal", "-shm"):
            chmod_private(database + suffix)


READ_ONLY = "oathdesk_read_only"


def _sqlite_begin(connection: sa.Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")  # deferred: a snapshot at the first read
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads only that never waits for writers; on SQLite one snapshot.

    On PostgreSQL the reads run in autocommit: under its READ COMMITTED every statement sees
    its own snapshot whether or not a transaction wraps them, so the transaction only added a
    BEGIN and a ROLLBACK round trip to every read. A caller that needs one snapshot across
    statements asks for REPEATABLE READ and begins (audit_verify, backup), as before."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn.execution_options(**{READ_ONLY: True})


@contextlib.contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads only, in one transaction that sees one snapshot however long
    it is read (a streamed export): SQLite a deferred BEGIN, which never waits for writers nor
    makes them wait; PostgreSQL REPEATABLE READ."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn.execution_options(isolation_level="REPEATABLE READ")
        conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            yield conn


def checkpoint(engine: sa.Engine) -> None:
    """Fold the WAL into the database file and truncate it (after a purge)."""
    if engine.dialect.name == "sqlite":
        # Outside any transaction (a checkpoint cannot run inside one): use the driver directly.
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            assert driver is not None
            busy, _, _ = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        if busy:
            raise StorageError(
                "the purge is done, but another process is reading the vault, so its journal "
                "still holds old pages; run `oathdesk purge --due` again when it is idle"
            )


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    from alembic import command

    _migrate(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    _migrate(engine, lambda config: command.downgrade(config, revision))


def _migrate(engine: sa.Engine, run: Callable[[Any], None]) -> None:
    """Run migrations in one transaction. On SQLite, some changes rebuild a table (copy, drop,
    rename); foreign keys are not enforced meanwhile and checked as a whole at the end."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A PRAGMA inside a transaction is ignored: set it on the driver, outside one.
            _driver(connection).execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                run(_alembic_config(connection))
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StorageError(
                        "the schema change would break links between records; restore a backup "
                        "and report it"
                    )
        finally:
            if sqlite:
                _driver(connection).execute("PRAGMA foreign_keys=ON")


def _driver(connection: sa.Connection) -> Any:
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver


# The newest migration, read once from the file names in migrations/versions: one truth, which a
# new migration cannot forget to bump, and no import of Alembic (a fifth of a second) on every CLI
# call. A test checks that Alembic's own head agrees with it.
SCHEMA_HEAD = schema_head()


def schema_revision(engine: sa.Engine) -> str | None:
    """The schema revision of the database, or None when it holds no oathdesk schema."""
    with reading(engine) as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return None if found is None else str(found)


def refuse_newer_schema(display: str, revision: str | None) -> None:
    """Raise when a newer oathdesk migrated the vault: this one cannot migrate it back down, and
    calling it "older" would send the admin to `init`, which fails."""
    if revision is not None and revision > SCHEMA_HEAD:  # zero-padded numbers: text order works
        raise StorageError(
            f"the vault at {display} was upgraded by a newer oathdesk (schema {revision}; this "
            f"one knows up to {SCHEMA_HEAD}); run that release or upgrade oathdesk"
        )


def schema_is_current(engine: sa.Engine) -> bool:
    return schema_revision(engine) == SCHEMA_HEAD


def migration_head() -> str:
    """The head revision according to the migration scripts (for tests and `init`)."""
    from alembic.script import ScriptDirectory

    with create_engine("sqlite://").connect() as connection:
        heads = ScriptDirectory.from_config(_alembic_config(connection)).get_heads()
    return str(heads[0])
