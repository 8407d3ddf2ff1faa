"""`oathdesk serve --workers 2` killed outright (SIGKILL, the OOM killer, a crashed service
manager): its workers and vault writer notice that their parent is gone and stop, so nothing is
left answering on the port with no parent to stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import httpx

from tests.web.conftest import free_port
from tests.web.test_serve import clean_env, read_banner
from tests.web.test_serve_workers import _serve, _wait_for_workers

GONE_WITHIN = 15.0  # seconds: the workers leave after a 5 s grace; slack for a loaded machine


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigkill_of_the_server_stops_its_workers_and_writer(tmp_path: Path) -> None:
    port = free_port()
    process = _serve(clean_env(tmp_path / "data"), port)
    children: list[int] = []
    try:
        read_banner(process, timeout=30)
        writer, workers = _wait_for_workers(process.pid, 2)
        children = [writer, *workers]
        # A keep-alive connection open at the moment of the kill must not keep a worker alive.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as held:
            assert held.get("/signin").status_code in (200, 303)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)  # not communicate(): the children hold its pipes
            deadline = time.monotonic() + GONE_WITHIN
            while time.monotonic() < deadline and (
                any(_alive(pid) for pid in children) or _port_open(port)
            ):
                time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == [], "children still running"
        assert not _port_open(port), "the port still answers"
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
