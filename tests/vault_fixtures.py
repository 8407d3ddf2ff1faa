"""Vault fixtures (a pytest plugin): storage tests run on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture
def vault(location: VaultLocation, master_key: MasterKey) -> Iterator[Vault]:
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
