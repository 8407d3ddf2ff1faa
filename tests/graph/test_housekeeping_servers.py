"""Real `oathdesk serve` processes running housekeeping on one real PostgreSQL vault, every 2 s:
two servers for three cycles run each cycle once; a server killed (SIGKILL) in the middle of a
cycle (its Entra sync held up by the fake Graph) leaves it to the next, which does nothing twice.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.vault import housekeeping as records
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import NewToken, utc_now
from oathdesk.vault.schema import tokens
from tests.conftest import OATHDESK
from tests.graph.entra_helpers import ADMIN, EntraWorld, pg_world
from tests.graph.fake_graph.helpers import DEVICES
from tests.web.conftest import free_port
from tests.web.test_serve import clean_env, read_banner

__all__ = ["pg_world"]

EVERY = "2s"
HOUSEKEEPING_1S = ("--housekeeping-every", "1s")


@contextmanager
def _server(world: EntraWorld, tmp_path: Path, name: str) -> Iterator[subprocess.Popen[str]]:
    env = clean_env(tmp_path / name) | world.env
    log = (tmp_path / f"{name}.log").open("w")
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(free_port()), "--housekeeping-every", EVERY],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        banner = read_banner(process, timeout=60)
        assert "housekeeping: every 2s" in banner
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _cycles(world: EntraWorld) -> dict[int, int]:
    with world.vault.reading() as conn:
        return records.cycles_per_slot(conn)


def _wait_for(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds}s: {what}")


def _due_and_late(world: EntraWorld) -> tuple[list[str], list[str]]:
    """Two tokens delivered (due with retention 0) and two a user waits for since 40 days."""
    world.vault.add_user(ADMIN, "alice@contoso.com")
    world.vault.add_tokens(
        ADMIN,
        [
            NewToken(
                f"SV{n}",
                "Token2",
                "C202",
                TokenKind.CLASSIC,
                secret=bytes([n]) * 20,
                upn="alice@contoso.com",
            )
            for n in range(1, 5)
        ],
    )
    for serial in ("SV1", "SV2"):
        world.vault.move(ADMIN, serial, TokenState.REGISTERED)
        world.vault.move(ADMIN, serial, TokenState.DELIVERED)
    world.vault.update_settings(ADMIN, retention_days=0)
    with world.vault.engine.begin() as conn:  # the test's clock: assigned 40 days ago
        conn.execute(
            sa.update(tokens)
            .where(tokens.c.serial.in_(["SV3", "SV4"]))
            .values(assigned_at=utc_now() - timedelta(days=40))
        )
    return ["SV1", "SV2"], ["SV3", "SV4"]


@pytest.mark.slow
def test_two_servers_on_one_postgres_vault_run_each_cycle_once(
    pg_world: EntraWorld, tmp_path: Path
) -> None:
    due, late = _due_and_late(pg_world)
    with _server(pg_world, tmp_path, "a"), _server(pg_world, tmp_path, "b"):
        both_up = max(_cycles(pg_world), default=0)
        _wait_for("three cycles", lambda: len([s for s in _cycles(pg_world) if s > both_up]) >= 3)
    done = _cycles(pg_world)
    assert len(done) >= 4
    assert set(done.values()) == {1}  # each slot's cycle ran exactly once
    purged = Counter(r["serial"] for r in pg_world.vault.export_audit(action="token.secret_purged"))
    assert purged == Counter(due)
    warned = Counter(r["serial"] for r in pg_world.vault.export_audit(action=records.WARNED_ACTION))
    assert warned == Counter(late)
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert "Traceback" not in logs
    ran = Counter(
        line.split("housekeeping cycle of ")[1].split(" UTC:")[0]
        for line in logs.splitlines()
        if "housekeeping cycle of " in line
    )
    assert set(ran.values()) == {1}  # the logs agree: no slot twice, whichever server ran it


@pytest.mark.slow
def test_a_server_killed_during_a_cycle_leaves_it_to_the_next_and_nothing_is_done_twice(
    pg_world: EntraWorld, tmp_path: Path
) -> None:
    world = pg_world
    world.login()
    due, late = _due_and_late(world)
    # The first listing of Entra's inventory is answered 30 s late: the first server is inside
    # its cycle's first step (the sync) when it is killed, before the purge and the warning.
    world.fake.delay_next(1, seconds=30, path_contains=DEVICES, method="GET")
    with _server(world, tmp_path, "a") as first:
        _wait_for("the sync's listing", lambda: any(DEVICES in r[1] for r in world.fake.requests))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert _cycles(world) == {}
    assert world.vault.export_audit(action="token.secret_purged") == []
    with _server(world, tmp_path, "b"):
        _wait_for("a completed cycle", lambda: len(_cycles(world)) >= 2)
    done = _cycles(world)
    assert set(done.values()) == {1}
    purged = Counter(r["serial"] for r in world.vault.export_audit(action="token.secret_purged"))
    assert purged == Counter(due)
    warned = Counter(r["serial"] for r in world.vault.export_audit(action=records.WARNED_ACTION))
    assert warned == Counter(late)
    taken = world.vault.export_audit(action="lease.taken_over")
    jobs = sorted(r["details"]["job"] for r in taken)
    assert jobs == ["oathdesk entra sync", "oathdesk housekeeping"]
    assert all(r["details"]["from_pid"] == first.pid for r in taken)
    (took_over,) = [
        c
        for c in world.vault.export_audit(action=records.CYCLE_ACTION)
        if c["details"]["took_over"]
    ]
    assert f"process {first.pid}" in took_over["details"]["took_over"]
    assert not took_over["details"]["failed"]
    assert "Traceback" not in (tmp_path / "b.log").read_text()


def test_with_workers_only_the_parent_runs_housekeeping(
    pg_world: EntraWorld, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "w") | pg_world.env
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(free_port()), "--workers", "2", *HOUSEKEEPING_1S],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert "housekeeping: every 1s" in read_banner(process, timeout=60)
        _wait_for("three cycles", lambda: len(_cycles(pg_world)) >= 3)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    servers = {
        c["details"]["server"] for c in pg_world.vault.export_audit(action=records.CYCLE_ACTION)
    }
    assert servers == {f"{socket.gethostname()} process {process.pid}"}
