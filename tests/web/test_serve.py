"""`oathdesk serve` as a real process on a fresh machine: a new vault, the URL and the one-time
link printed at once, a first admin set up through it, Ctrl-C, and no secret in the log."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oathdesk.web.security import COOKIE_PLAIN
from tests.conftest import OATHDESK, assert_one_line_error, run_cli
from tests.pg import PostgresServer
from tests.web.conftest import free_port, new_client, operator_from_qr, post_form

PASSWORD = "the team's first key 01"


@dataclass
class Served:
    process: subprocess.Popen[str]
    banner: list[str]
    port: int


def clean_env(data_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    env["XDG_DATA_HOME"] = str(data_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_banner(process: subprocess.Popen[str], timeout: float) -> list[str]:
    """Standard output up to "press Ctrl-C to stop" (the server is listening by then)."""
    stream = process.stdout
    assert stream is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
            if line.startswith("press Ctrl-C"):
                return

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.1))
        except queue.Empty:
            continue
        if seen[-1].startswith("press Ctrl-C"):
            return seen
    raise AssertionError(f"no start-up banner within {timeout}s: {seen}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path / "data"),
    )
    try:
        banner = read_banner(process, timeout=20)
        # "within a second or two" on an idle machine; generous here for a loaded CI box.
        assert time.monotonic() - started < 15
        yield Served(process, banner, port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(served: Served) -> tuple[str, str]:
    served.process.send_signal(signal.SIGINT)
    stdout, stderr = served.process.communicate(timeout=20)
    return stdout, stderr


@pytest.mark.slow
def test_first_run_prints_the_url_and_a_one_time_link_that_works(
    served: Served, tmp_path: Path
) -> None:
    base_url = f"http://127.0.0.1:{served.port}"
    text = "\n".join(served.banner)
    vault_file = tmp_path / "data" / "oathdesk" / "vault.sqlite3"
    assert f"created the vault at {vault_file}" in text
    assert "master key written to" in text
    assert f"oathdesk console: {base_url}/" in text
    links = re.findall(rf"{re.escape(base_url)}/setup/([A-Za-z0-9_-]{{40,}})", text)
    assert len(links) == 1
    token = links[0]

    with new_client(base_url) as client:
        assert client.get(f"/setup/{token}").status_code == 200
        created = post_form(
            client,
            f"/setup/{token}",
            {"name": "admin", "password": PASSWORD, "repeat": PASSWORD},
            from_page=f"/setup/{token}",
        )
        assert created.status_code == 303
        admin = operator_from_qr(client.get("/enrol").text, "admin", "admin", PASSWORD)
        refused = post_form(
            client,
            "/enrol",
            {"password": "a wrong password!", "code": admin.wrong_code()},
            from_page="/enrol",
        )
        assert refused.status_code == 401
        code = admin.next_code()
        signed_in = post_form(
            client, "/enrol", {"password": PASSWORD, "code": code}, from_page="/enrol"
        )
        assert signed_in.status_code == 303
        assert client.get("/").status_code == 200
        assert client.get(f"/setup/{token}?again=1").status_code == 404

    stdout, log = stop(served)
    assert served.process.returncode == 0
    assert "oathdesk console stopped" in stdout
    assert "Traceback" not in log
    assert "GET /setup/<token> 200" in log  # the access log is there, the token masked
    for secret in (token, PASSWORD, code, "a wrong password!", "again=1"):
        assert secret not in log, "a secret reached the server log"

    # A second start on the same vault: no new vault, and no set-up link (there is an admin).
    port = free_port()
    second = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path / "data"),
    )
    banner = read_banner(second, timeout=20)
    stdout, _ = stop(Served(second, banner, port))
    assert banner[0] == f"oathdesk console: http://127.0.0.1:{port}/  (vault: {vault_file})"
    assert "/setup/" not in "\n".join(banner) + stdout
    assert second.returncode == 0


@pytest.mark.slow
def test_a_busy_port_is_one_line(served: Served, tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--port", str(served.port), env={"XDG_DATA_HOME": str(tmp_path / "data")}
    )
    assert_one_line_error(result)
    assert f"port {served.port}" in result.stderr
    assert "pass another --port" in result.stderr
    stop(served)


@pytest.mark.parametrize("value", ["ten", "0", "-5", "2.5"])
def test_the_api_reveal_throttle_must_be_a_whole_number(tmp_path: Path, value: str) -> None:
    result = run_cli(
        "serve",
        env={"XDG_DATA_HOME": str(tmp_path), "OATHDESK_API_REVEALS_PER_MINUTE": value},
    )
    assert_one_line_error(result)
    assert "OATHDESK_API_REVEALS_PER_MINUTE must be a whole number" in result.stderr
    assert not (tmp_path / "oathdesk").exists()  # refused before anything was made


def test_a_trusted_proxy_must_be_an_address(tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--trusted-proxy", "proxy.example", env={"XDG_DATA_HOME": str(tmp_path)}
    )
    assert_one_line_error(result)
    assert "--trusted-proxy takes the proxy's IP address" in result.stderr
    assert not (tmp_path / "oathdesk").exists()  # refused before anything was made


def start_serve(env: dict[str, str]) -> Served:
    port = free_port()
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        return Served(process, read_banner(process, timeout=30), port)
    except BaseException:
        process.kill()
        process.wait()
        raise


def setup_link(served: Served) -> str:
    found = re.search(r"/setup/([A-Za-z0-9_-]{40,})", "\n".join(served.banner))
    assert found, served.banner
    return found.group(1)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_serve_processes_share_one_postgresql_vault(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "data")
    env["OATHDESK_DATABASE_URL"] = postgres.create_database(migrated=False)
    env["OATHDESK_KEY_FILE"] = str(tmp_path / "vault.key")
    first = start_serve(env)  # makes the vault, like `oathdesk init`
    try:
        assert any(line.startswith("created the vault at postgresql") for line in first.banner)
        second = start_serve(env)
        try:
            assert not any("created the vault" in line for line in second.banner)
            one, other = f"http://127.0.0.1:{first.port}", f"http://127.0.0.1:{second.port}"
            with new_client(one) as client:
                token = setup_link(first)
                post_form(
                    client,
                    f"/setup/{token}",
                    {"name": "root", "password": PASSWORD, "repeat": PASSWORD},
                    from_page=f"/setup/{token}",
                )
                admin = operator_from_qr(client.get("/enrol").text, "root", "admin", PASSWORD)
                confirm = {"password": PASSWORD, "code": admin.next_code()}
                assert post_form(client, "/enrol", confirm, from_page="/enrol").status_code == 303
                cookie = client.cookies[COOKIE_PLAIN]
            with new_client(other) as client:
                assert client.get(f"/setup/{setup_link(second)}").status_code == 404  # spent
                client.cookies.set(COOKIE_PLAIN, cookie)
                assert client.get("/operators").status_code == 200  # the same session
        finally:
            stop(second)
    finally:
        stop(first)
    assert first.process.returncode == 0
    assert second.process.returncode == 0
