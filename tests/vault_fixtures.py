"""Vault fixtures (a pytest plugin): storage tests run on real SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.vault import db
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.vault import Actor, Vault
from tests.pg import PostgresServer, running_postgres

ADMIN = Actor("local:test", "admin")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> VaultLocation:
    key_file = tmp_path / "vault.key"
    if request.param == "sqlite":
        path = tmp_path / "vault.sqlite3"
        return VaultLocation(f"sqlite:///{path}", key_file, path)
    server: PostgresServer = request.getfixturevalue("postgres")
    return VaultLocation(server.create_database(), key_file, None)


@pytest.fixture
def master_key(location: VaultLocation) -> MasterKey:
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    return key


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite file with the vault's schema, migrated once per test process: a vault
    starts as a copy (as the PostgreSQL ones start from a migrated template), since running
    every migration again cost each test a tenth of a second."""
    path = tmp_path_factory.mktemp("migrated") / "schema.sqlite3"
    engine = db.create_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


def start_from(migrated: Path, path: Path) -> None:
    """A new SQLite vault file at ``path`` as a copy of ``migrated_sqlite``."""
    shutil.copyfile(migrated, path)
    path.chmod(0o600)  # as the vault makes its file


@pytest.fixture
def vault(
    location: VaultLocation, master_key: MasterKey, request: pytest.FixtureRequest
) -> Iterator[Vault]:
    if location.sqlite_path is not None:
        start_from(request.getfixturevalue("migrated_sqlite"), location.sqlite_path)
    opened = Vault.create(location, master_key, ADMIN)
    yield opened
    opened.close()


def cli_env(location: VaultLocation) -> dict[str, str]:
    """Environment that points the real console script at ``location``."""
    env = {"OATHDESK_KEY_FILE": str(location.key_file)}
    if location.sqlite_path is not None:
        env["OATHDESK_VAULT"] = str(location.sqlite_path)
    else:
        env["OATHDESK_DATABASE_URL"] = location.database_url
    return env


def fail_audit_inserts(conn: sa.Connection) -> None:
    """From now on every audit record fails to be written ('audit store full'), on SQLite or
    PostgreSQL: for the tests that nothing happens without its record."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_full BEFORE INSERT ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit store full'); END"
        )
    else:
        conn.exec_driver_sql(
            "CREATE FUNCTION audit_full() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit store full'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_full BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_full()"
        )
