"""Engines, connection settings and migrations.

SQLite runs in WAL mode with ``secure_delete`` (a purged secret's bytes are zeroed in the file),
foreign keys on, and every transaction started with BEGIN IMMEDIATE so writers queue instead of
failing half-way. PostgreSQL needs nothing special beyond row locks taken where needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import OathdeskError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StorageError(OathdeskError):
    code = "storage_error"
    exit_code = 6


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        _create_private_file(sa.engine.make_url(url).database)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _create_private_file(path: str | None) -> None:
    """The vault file holds only ciphertext, but it is nobody else's business: mode 0600."""
    if not path or path == ":memory:":
        return
    import os

    if not os.path.exists(path) and os.path.isdir(os.path.dirname(path) or "."):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how transactions start (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "secure_delete=ON",
        "foreign_keys=ON",
        "synchronous=FULL",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


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


def upgrade(engine: sa.Engine) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")


# The newest migration; a test checks it against migrations/versions. Comparing with a constant
# spares every CLI call the import of Alembic (a fifth of a second).
SCHEMA_HEAD = "0002"


def schema_is_current(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return False
        current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        return set(current) == {SCHEMA_HEAD}


def migration_head() -> str:
    """The head revision according to the migration scripts (for tests and `init`)."""
    from alembic.script import ScriptDirectory

    with create_engine("sqlite://").connect() as connection:
        heads = ScriptDirectory.from_config(_alembic_config(connection)).get_heads()
    return str(heads[0])
