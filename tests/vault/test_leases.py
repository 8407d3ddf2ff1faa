"""Leases: one run of a job at a time on a vault, across processes and machines, on SQLite and
PostgreSQL; a run killed without cleaning up frees the job when its lease expires."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault.backup import read_backup, write_backup
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.schema import leases
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN

JOB = "oathdesk entra push"
TTL = timedelta(minutes=15)
ANNA = Actor("ops:anna", "admin")


def _refused(vault: Vault, actor: Actor = ADMIN) -> None:
    with (
        pytest.raises(Conflict, match="already running"),
        vault.lease(JOB, actor, host="d", ttl=TTL),
    ):
        pytest.fail("two runs held the job at once")


def _expire(vault: Vault) -> None:
    """As if the holder was killed long enough ago."""
    with vault.engine.begin() as conn:
        conn.execute(leases.update().values(expires_at=utc_now() - timedelta(seconds=1)))


def test_a_second_run_is_refused_with_who_holds_the_job(vault: Vault) -> None:
    with vault.lease(JOB, ANNA, host="desk-1", ttl=TTL) as first:
        with pytest.raises(Conflict) as refused, vault.lease(JOB, ADMIN, host="desk-2", ttl=TTL):
            pytest.fail("two runs held the job at once")
        message = refused.value.message
        assert "`oathdesk entra push` is already running on this vault" in message
        assert "(ops:anna on desk-1, since " in message
        assert "wait for it to finish" in message
        assert "\n" not in message
        first.renew()  # the refused run did not disturb the holder
        with vault.lease("another job", ADMIN, host="desk-2", ttl=TTL):
            pass  # other jobs are not held up
    with vault.lease(JOB, ADMIN, host="desk-2", ttl=TTL):
        pass  # released when the first run ended


def test_released_however_the_block_ends(vault: Vault) -> None:
    with pytest.raises(KeyboardInterrupt), vault.lease(JOB, ANNA, host="desk-1", ttl=TTL):
        raise KeyboardInterrupt
    with vault.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(leases)).scalar_one() == 0


def test_a_killed_run_frees_the_job_when_its_lease_expires(vault: Vault) -> None:
    killed = vault.lease(JOB, ANNA, host="desk-1", ttl=TTL)
    stale = killed.__enter__()  # never left: the process died
    _refused(vault)
    _expire(vault)
    with vault.lease(JOB, ADMIN, host="desk-2", ttl=TTL) as second:
        # The first run, back from a long stall, must not carry on beside the second.
        with pytest.raises(Conflict, match="another run has taken over; this one stopped"):
            stale.renew()
        second.renew()
        stale.release()  # releasing what it no longer holds leaves the second's lease alone
        _refused(vault, ANNA)


def test_renewing_keeps_an_expired_lease_nobody_took(vault: Vault) -> None:
    with vault.lease(JOB, ANNA, host="desk-1", ttl=TTL) as held:
        _expire(vault)
        held.renew()
        _refused(vault)


def test_only_one_of_many_concurrent_runs_gets_the_job(
    location: VaultLocation, master_key: MasterKey, vault: Vault
) -> None:
    """Eight runs, each with its own connection pool (as separate machines would), start at once."""
    opened = [Vault.open(location, master_key) for _ in range(8)]
    start = threading.Barrier(len(opened))
    inside = threading.Event()
    release = threading.Event()
    outcomes: list[str] = []

    def run(each: Vault, index: int) -> None:
        start.wait()
        try:
            with each.lease(JOB, ANNA, host=f"desk-{index}", ttl=TTL):
                outcomes.append("held")
                inside.set()
                release.wait(10)
        except Conflict:
            outcomes.append("refused")
        except Exception as error:  # reported by the assertion below, not lost in the thread
            outcomes.append(repr(error))

    threads = [threading.Thread(target=run, args=(v, i)) for i, v in enumerate(opened)]
    try:
        for thread in threads:
            thread.start()
        assert inside.wait(10)
        # The holder stays inside until every other run has been answered.
        deadline = time.monotonic() + 20
        while outcomes.count("refused") < len(opened) - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        release.set()
        for thread in threads:
            thread.join(20)
        for each in opened:
            each.close()
    assert sorted(outcomes) == ["held"] + ["refused"] * (len(opened) - 1)


def test_leases_are_not_in_backups(vault: Vault, master_key: MasterKey, tmp_path: Path) -> None:
    with vault.lease(JOB, ANNA, host="desk-1", ttl=TTL):
        write_backup(vault.engine, master_key, tmp_path / "backup.odb")
    tables = read_backup(master_key, tmp_path / "backup.odb")
    assert "leases" not in tables
    assert "tokens" in tables
