"""Writers on one SQLite vault queue for it (a lock file beside the vault, shared by every
process) instead of sleeping in SQLite's busy handler; a writer that never finishes gives the
same clear error as SQLite's busy timeout, not a hang."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator

import pytest

from oathdesk.vault import db
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN


@pytest.fixture
def sqlite_vault(sqlite_location: VaultLocation) -> Iterator[Vault]:
    vault = Vault.create(sqlite_location, MasterKey.generate(), ADMIN)
    try:
        yield vault
    finally:
        vault.close()


def _hold_writer_lock(location: VaultLocation) -> int:
    """Take the lock as another process would (a separate open file: flock conflicts)."""
    assert location.sqlite_path is not None
    fd = os.open(f"{location.sqlite_path}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_writer_waits_for_the_lock_then_writes(
    sqlite_vault: Vault, sqlite_location: VaultLocation
) -> None:
    fd = _hold_writer_lock(sqlite_location)
    done = threading.Event()

    def write() -> None:
        sqlite_vault.update_settings(ADMIN, retention_days=45)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not done.wait(0.3)  # queued behind the holder
    finally:
        os.close(fd)
    writer.join(10)
    assert done.is_set()
    assert sqlite_vault.settings().retention_days == 45
    assert sqlite_vault.verify_audit() == []
    assert oct(os.stat(f"{sqlite_location.sqlite_path}-writer").st_mode & 0o777) == "0o600"


def test_a_writer_that_never_finishes_gives_one_clear_error(
    sqlite_vault: Vault, sqlite_location: VaultLocation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "WRITER_WAIT_SECONDS", 0.2)
    fd = _hold_writer_lock(sqlite_location)
    try:
        with pytest.raises(db.StorageError, match="another process has been writing"):
            sqlite_vault.update_settings(ADMIN, retention_days=45)
    finally:
        os.close(fd)
    assert sqlite_vault.settings().retention_days != 45
    sqlite_vault.update_settings(ADMIN, retention_days=46)  # and the next one goes through
    assert sqlite_vault.settings().retention_days == 46


def test_a_write_inside_a_write_on_one_thread_does_not_wait_for_itself(
    sqlite_vault: Vault,
) -> None:
    gate = db._GATES[sqlite_vault.engine]
    with gate.held(), gate.held():
        pass  # re-entered without blocking
    sqlite_vault.update_settings(ADMIN, retention_days=47)
    assert sqlite_vault.settings().retention_days == 47
