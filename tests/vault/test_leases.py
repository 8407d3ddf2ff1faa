"""Leases: one run of a job at a time on a vault, across processes and machines, on SQLite and
PostgreSQL; a run killed without cleaning up frees the job when its lease expires."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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
from oathdesk.vault.leases import LeaseHolder
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.schema import audit_log, leases
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


# -- taking over the lease of a run that is gone (issue 13, item 11) -----------------------------

HERE = socket.gethostname()

HOLD = """
import socket, sys, time
from datetime import timedelta
from pathlib import Path
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import read_key_file
from oathdesk.vault.models import Actor
from oathdesk.vault.vault import Vault
url, key = sys.argv[1], Path(sys.argv[2])
vault = Vault.open(VaultLocation(url, key, None), read_key_file(key))
with vault.lease(sys.argv[3], Actor("ops:anna", "admin"), host=socket.gethostname(),
                 ttl=timedelta(minutes=15)):
    print("held", flush=True)
    time.sleep(120)
"""


def _audited_take_overs(vault: Vault) -> list[dict[str, object]]:
    with vault.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.details).where(
                audit_log.c.action == "lease.taken_over"
            )
        ).all()
    return [{"actor": row.actor, **json.loads(row.details)} for row in rows]


def test_the_lease_of_a_run_killed_on_this_machine_is_taken_over_at_once(
    location: VaultLocation, vault: Vault
) -> None:
    """kill -9 of the holder: the next run on the same machine need not wait 15 minutes; the
    take-over is audited with the old holder."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, location.database_url, str(location.key_file), JOB],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        _refused(vault)  # alive: refused, whatever the caller would confirm
        running = f"its process {holder.pid} still runs on this machine"
        with (
            pytest.raises(Conflict, match=running),
            vault.lease(JOB, ADMIN, host=HERE, ttl=TTL, take_over=lambda _: True),
        ):
            pytest.fail("took over the lease of a run that still runs")
        holder.kill()
        holder.wait()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    with vault.lease(JOB, ADMIN, host=HERE, ttl=TTL) as taken:
        assert taken.taken_over is not None
        assert taken.taken_over.pid == holder.pid
        assert taken.taken_over.actor == "ops:anna"
        taken.renew()
        _refused(vault, ANNA)
    (record,) = _audited_take_overs(vault)
    assert record["actor"] == ADMIN.name
    assert record["from_actor"] == "ops:anna"
    assert record["from_host"] == HERE
    assert record["from_pid"] == holder.pid
    assert record["reason"] == "its process is gone from this machine"
    assert vault.verify_audit() == []


def test_a_reused_pid_does_not_keep_a_dead_runs_lease(vault: Vault) -> None:
    """The holder's pid now belongs to a process started after the lease was taken (here: this
    very process): the holder is gone."""
    killed = vault.lease(JOB, ANNA, host=HERE, ttl=TTL)
    stale = killed.__enter__()  # never left
    with vault.engine.begin() as conn:
        conn.execute(leases.update().values(process_started=stale.process.started - 3600))
    with vault.lease(JOB, ADMIN, host=HERE, ttl=TTL) as taken:
        assert taken.taken_over is not None
        with pytest.raises(Conflict, match="another run has taken over"):
            stale.renew()
    assert len(_audited_take_overs(vault)) == 1


def test_another_machines_lease_is_taken_over_only_when_a_person_confirms(vault: Vault) -> None:
    gone = vault.lease(JOB, ANNA, host="desk-far", ttl=TTL)
    gone.__enter__()  # never left: that machine went off
    with pytest.raises(Conflict) as refused, vault.lease(JOB, ADMIN, host=HERE, ttl=TTL):
        pytest.fail("took over another machine's lease unasked")
    message = refused.value.message
    assert "(ops:anna on desk-far, since " in message
    assert f"`{JOB} --take-over-lease`" in message
    assert "\n" not in message
    shown: list[str] = []

    def decline(holder: LeaseHolder) -> bool:
        shown.append(holder.describe())
        return False

    with pytest.raises(Conflict), vault.lease(JOB, ADMIN, host=HERE, ttl=TTL, take_over=decline):
        pytest.fail("took over although the person said no")
    assert len(shown) == 1
    assert shown[0].startswith("ops:anna on desk-far, since ")
    assert _audited_take_overs(vault) == []
    with vault.lease(JOB, ADMIN, host=HERE, ttl=TTL, take_over=lambda _: True) as taken:
        assert taken.taken_over is not None
        assert taken.taken_over.host == "desk-far"
    (record,) = _audited_take_overs(vault)
    assert record["from_host"] == "desk-far"
    assert record["reason"] == f"confirmed by {ADMIN.name}: the holder on desk-far is gone"


def test_a_lease_without_its_process_on_this_host_needs_a_confirmation(vault: Vault) -> None:
    """A lease taken before migration 0011 (no pid): whether its holder runs is unknown."""
    old = vault.lease(JOB, ANNA, host=HERE, ttl=TTL)
    old.__enter__()  # never left
    with vault.engine.begin() as conn:
        conn.execute(leases.update().values(pid=None, process_started=None, boot_time=None))
    _refused(vault)
    with vault.lease(JOB, ADMIN, host=HERE, ttl=TTL, take_over=lambda _: True) as taken:
        assert taken.taken_over is not None
