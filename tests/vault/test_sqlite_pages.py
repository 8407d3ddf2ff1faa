"""A new SQLite vault is written in 16 KiB pages (an import spends less in SQLite, see
db.SQLITE_PAGE_SIZE); a vault made before keeps its 4 KiB pages and works as before."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from oathdesk.vault import db
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.vault import Vault
from tests.vault.conftest import classic, read_secret, secret_for
from tests.vault_fixtures import ADMIN


def page_size(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_vault_is_written_in_16_kib_pages(sqlite_location: VaultLocation) -> None:
    assert sqlite_location.sqlite_path is not None
    Vault.create(sqlite_location, MasterKey.generate(), ADMIN).close()
    assert page_size(sqlite_location.sqlite_path) == 16384


def test_a_vault_made_with_4_kib_pages_keeps_them_and_works(
    sqlite_location: VaultLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sqlite_location.sqlite_path
    assert path is not None
    master_key = MasterKey.generate()
    with monkeypatch.context() as before:
        before.setattr(db, "SQLITE_PAGE_SIZE", 4096)  # what every vault was made with until now
        vault = Vault.create(sqlite_location, master_key, ADMIN)
        vault.add_tokens(ADMIN, [classic("old1")])
        vault.close()
    assert page_size(path) == 4096

    vault = Vault.open(sqlite_location, master_key)
    try:
        vault.add_tokens(ADMIN, [classic(f"new{i}") for i in range(200)])
        assert read_secret(vault, "old1") == secret_for("old1")
        assert read_secret(vault, "new199") == secret_for("new199")
        assert vault.verify_audit() == []
    finally:
        vault.close()
    assert page_size(path) == 4096
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
