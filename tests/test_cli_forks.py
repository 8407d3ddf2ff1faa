"""The tests' fork server (tests/cli_forks.py) is itself tested: a flaky runner fails any test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import threading
from pathlib import Path

from tests.cli_forks import ForkServer
from tests.sockets import listening_unix_socket


def test_a_unix_socket_is_listening_as_soon_as_its_name_exists(tmp_path: Path) -> None:
    # The client connects the moment the name appears. Bound first and listening after, a
    # socket refused ~3% of such connections here (seen in CI as a ConnectionRefusedError).
    refused = 0
    for attempt in range(300):
        path = str(tmp_path / f"s{attempt}")
        outcome: list[str] = []

        def connect_once_named(path: str = path, outcome: list[str] = outcome) -> None:
            while not os.path.exists(path):
                pass
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                try:
                    client.connect(path)
                    outcome.append("connected")
                except ConnectionRefusedError:
                    outcome.append("refused")

        client_thread = threading.Thread(target=connect_once_named)
        client_thread.start()
        listener = listening_unix_socket(path)
        client_thread.join(timeout=10)
        listener.close()
        refused += outcome == ["refused"]
        assert outcome, "the client never connected"
    assert refused == 0
    assert sorted(os.listdir(tmp_path)) == sorted(f"s{n}" for n in range(300))  # no .binding left


def test_a_fork_server_that_died_is_replaced_and_the_command_runs() -> None:
    forks = ForkServer()
    try:
        argv = [str(Path(sys.executable).parent / "oathdesk"), "--version"]
        first = forks.run(argv, "", os.environ, 60, None)
        assert first[0] == 0
        assert "oathdesk" in first[1]
        process = forks._process
        assert process is not None
        process.send_signal(signal.SIGKILL)  # as a test killing its process group would
        process.wait(timeout=10)
        shutil.rmtree(os.path.dirname(forks._path))  # what it would have removed as it left
        again = forks.run(argv, "", os.environ, 60, None)
        assert again == first
        assert forks._process is not None
        assert forks._process.pid != process.pid
    finally:
        forks.stop()
