"""`oathdesk serve --workers 2`: two processes serve one SQLite vault, and a third, the vault
writer, runs their reveals. The parent makes the vault and prints the set-up link once; reveals
work through either worker, and the vault's 24-hour limit holds exactly when many reveals race
through both (the N+1th and later are refused). A worker or the writer dying stops the server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from oathdesk.vault.config import VaultLocation
from oathdesk.web.app import create_app
from tests.conftest import OATHDESK
from tests.pg import PostgresServer
from tests.web.api_support import SECRET_B32, UPN, client, make_keys
from tests.web.conftest import free_port, make_web_vault, serve_app
from tests.web.test_serve import clean_env, read_banner

REVEAL = {"upn": UPN, "method": "callback", "ticket": "INC-7", "channel": "phone"}
LIMIT = 5
RACERS = 12


def _children_of(pid: int) -> list[int]:
    """The processes the server ``pid`` spawned, oldest first: the vault writer (started
    first), then the workers (a helper process of multiprocessing may run beside them)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    children = []
    for child in map(int, found.stdout.split()):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            children.append(child)
    # Field 22 of /proc/PID/stat: when the process started (after the command's parentheses).
    started = {
        c: int(Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[19]) for c in children
    }
    return sorted(children, key=lambda c: (started[c], c))


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError("the server did not stop on Ctrl-C") from None
    return out, err


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_workers(pid: int, count: int, seconds: float = 30) -> tuple[int, list[int]]:
    """The vault writer and the ``count`` workers of the server ``pid``, once all run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):  # a child that ended meanwhile
            children = _children_of(pid)
            if len(children) == count + 1:
                return children[0], children[1:]
        time.sleep(0.1)
    raise AssertionError(f"expected a writer and {count} workers, found {_children_of(pid)}")


def test_fresh_vault_two_workers_print_the_setup_link_once(tmp_path: Path) -> None:
    port = free_port()
    process = _serve(clean_env(tmp_path / "data"), port)
    try:
        banner = read_banner(process, timeout=30)
        _writer, workers = _wait_for_workers(process.pid, 2)
        assert len(workers) == 2
        for _ in range(3):
            page = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=10)
            assert page.status_code in (200, 303)
    finally:
        out, _err = _stop(process)
    assert process.returncode == 0
    text = "\n".join(banner) + "\n" + out
    assert text.count("/setup/") == 1
    assert "serving from 2 worker processes" in text
    assert (tmp_path / "data" / "oathdesk" / "vault.sqlite3").exists()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A vault with a user and token, served by two workers: (base URL, admin key, helpdesk key)."""
    path = tmp_path / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)
    keys = make_keys(make_web_vault(location))
    env = clean_env(tmp_path / "data")
    env.update(OATHDESK_VAULT=str(path), OATHDESK_KEY_FILE=str(location.key_file))
    env["OATHDESK_API_REVEALS_PER_MINUTE"] = "1000"
    port = free_port()
    process = _serve(env, port)
    try:
        read_banner(process, timeout=30)
        _wait_for_workers(process.pid, 2)
        yield f"http://127.0.0.1:{port}", keys.admin, keys.helpdesk
    finally:
        _stop(process)


def test_limit_holds_exactly_when_reveals_race_through_two_workers(
    two_workers: tuple[str, str, str],
) -> None:
    base, admin_key, helpdesk_key = two_workers
    with client(base, admin_key) as admin:
        created = admin.post("/users", json={"upn": UPN, "phone": "+41790000000"})
        assert created.status_code == 201, created.text
        token = admin.post(
            "/tokens",
            json={
                "serial": "86596120007",
                "secret": SECRET_B32,
                "upn": UPN,
            },
        )
        assert token.status_code == 201, token.text
        patched = admin.patch("/settings", json={"reveal_limit_per_user": LIMIT})
        assert patched.status_code == 200, patched.text

    def reveal(_: int) -> int:
        # A connection of its own each: the kernel hands them to either worker.
        with client(base, helpdesk_key) as helpdesk:
            return helpdesk.post("/reveal", json=REVEAL).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        statuses = sorted(pool.map(reveal, range(RACERS)))
    assert statuses == [200] * LIMIT + [403] * (RACERS - LIMIT)
    with client(base, admin_key) as admin:
        records = admin.get("/audit", params={"action": "code.revealed"}).json()["items"]
        assert len(records) == LIMIT
        refused = admin.get("/audit", params={"action": "reveal.limit_reached"}).json()
        assert len(refused["items"]) == RACERS - LIMIT
        assert admin.get("/audit/verify").json()["intact"] is True


@pytest.mark.parametrize("option", ["--workers", "--threads"])
def test_workers_and_threads_options_are_checked(option: str) -> None:
    result = subprocess.run(
        [str(OATHDESK), "serve", option, "0"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")},
        check=False,
    )
    assert result.returncode != 0
    assert option in result.stderr


@pytest.mark.parametrize("dying", ["worker", "vault writer"])
def test_a_dead_worker_or_writer_stops_the_server_with_one_line(tmp_path: Path, dying: str) -> None:
    process = _serve(clean_env(tmp_path / "data"), free_port())
    try:
        read_banner(process, timeout=30)
        writer, workers = _wait_for_workers(process.pid, 2)
        os.kill(writer if dying == "vault writer" else workers[0], signal.SIGKILL)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "stopped unexpectedly" in errors[0]
    assert ("oathdesk-vault-writer" in errors[0]) == (dying == "vault writer")
    assert "Traceback" not in err


def test_limit_holds_exactly_when_reveals_race_through_two_postgres_instances(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL does not serialise transactions the way SQLite's BEGIN IMMEDIATE does: the
    reveal counts behind the audit chain's row lock, or two servers both count one below."""
    location = VaultLocation(postgres.create_database(), tmp_path / "vault.key", None)
    web_vault = make_web_vault(location)
    keys = make_keys(web_vault)
    with (
        serve_app(create_app(web_vault.config())) as first,
        serve_app(create_app(web_vault.config())) as second,
    ):
        with client(first, keys.admin) as admin:
            assert (
                admin.post("/users", json={"upn": UPN, "phone": "+41790000000"}).status_code == 201
            )
            added = admin.post(
                "/tokens", json={"serial": "86596120008", "secret": SECRET_B32, "upn": UPN}
            )
            assert added.status_code == 201, added.text
            assert (
                admin.patch("/settings", json={"reveal_limit_per_user": LIMIT}).status_code == 200
            )

        def reveal(index: int) -> int:
            with client((first, second)[index % 2], keys.helpdesk) as helpdesk:
                return helpdesk.post("/reveal", json=REVEAL).status_code

        with ThreadPoolExecutor(RACERS) as pool:
            statuses = sorted(pool.map(reveal, range(RACERS)))
        assert statuses == [200] * LIMIT + [403] * (RACERS - LIMIT)
        with client(second, keys.admin) as admin:
            records = admin.get("/audit", params={"action": "code.revealed"}).json()["items"]
            assert len(records) == LIMIT
            assert admin.get("/audit/verify").json()["intact"] is True
