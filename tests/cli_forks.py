"""Command runs forked from a server that has the libraries imported (tests/cli_forkserver.py).

``run_cli`` runs most commands this way: each is still a process of its own, with its own
stdin, stdout, stderr, environment, working directory and exit status, running the console
script's entry point, but without 0.7 s of interpreter start-up and imports, in a suite that runs
over a thousand of them. What a fork cannot reproduce gets a fresh process (``can_run`` says
no): an environment that changes how the interpreter starts (PYTHON*, LANG, LC_*), and a test
that asks for one (one that measures the process's CPU time, or its start-up).
OATHDESK_TEST_FRESH_PROCESSES=1 runs every command fresh.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from tests.fork_protocol import LENGTH, NUMBER
from tests.sockets import receive_exactly

SERVER = Path(__file__).parent / "cli_forkserver.py"


def _startup_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables the interpreter reads as it starts (a fork has started already)."""
    return {
        key: value
        for key, value in env.items()
        if key.startswith(("PYTHON", "LC_")) or key in ("LANG", "LANGUAGE")
    }


class ForkServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None  # the test process the server was started for
        self._path = ""
        self._env: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline = -1

    def can_run(self, env: Mapping[str, str]) -> bool:
        if os.environ.get("OATHDESK_TEST_FRESH_PROCESSES") == "1":
            return False
        return _startup_environment(env) == _startup_environment(self._server_env())

    def _server_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}

    def _address(self) -> str:
        with self._lock:
            if (
                self._pid != os.getpid()
                or self._process is None
                or self._process.poll() is not None
            ):
                self._start()
            return self._path

    def _start(self) -> None:
        if self._pid == os.getpid():  # the last server has died: its lifeline goes too
            os.close(self._lifeline)
        else:
            atexit.register(self.stop)
        folder = tempfile.mkdtemp(prefix="oathdesk-forks-")
        self._path = os.path.join(folder, "socket")
        read_end, self._lifeline = os.pipe()
        self._env = self._server_env()
        self._process = subprocess.Popen(
            [sys.executable, str(SERVER), self._path, str(read_end)],
            env=self._env,
            pass_fds=(read_end,),
            cwd="/",  # never inside a directory a test may unmount; each run has its own cwd
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        os.close(read_end)
        self._pid = os.getpid()
        deadline = time.monotonic() + 120
        while not os.path.exists(self._path):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the tests' fork server did not start (see stderr)")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._process is not None and self._pid == os.getpid():
            os.close(self._lifeline)  # the server sees EOF and leaves
            self._process.wait(timeout=30)
            self._process = None

    def run(
        self, argv: list[str], stdin: str, env: Mapping[str, str], timeout: float, cwd: Path | None
    ) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) as subprocess.run(..., text=True) gives them."""
        with (
            tempfile.TemporaryFile() as given,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            given.write(stdin.encode(locale.getpreferredencoding(False)))
            given.seek(0)
            request = json.dumps(
                {"argv": argv, "env": dict(env), "cwd": str(cwd or os.getcwd())}
            ).encode()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self._address())
                socket.send_fds(
                    conn,
                    [LENGTH.pack(len(request))],
                    [given.fileno(), out.fileno(), err.fileno()],
                )
                conn.sendall(request)
                conn.settimeout(timeout)
                status = self._wait(conn, argv, timeout)
            return status, _text(out), _text(err)

    def _wait(self, conn: socket.socket, argv: list[str], timeout: float) -> int:
        started = receive_exactly(conn, NUMBER.size)
        if len(started) < NUMBER.size:
            raise RuntimeError(f"the tests' fork server could not start {argv[1:3]}")
        pid = NUMBER.unpack(started)[0]
        try:
            answer = receive_exactly(conn, NUMBER.size)
            # The status is sent just before the child exits: wait until it has (its files,
            # the vault's among them, closed), as subprocess.run does. A test that unmounts
            # the vault's directory next found it busy.
            receive_exactly(conn, 1)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(argv, timeout) from None
        _wait_until_gone(pid, time.monotonic() + timeout)
        if len(answer) < NUMBER.size:
            return -signal.SIGKILL  # killed or crashed: no status was sent
        status: int = NUMBER.unpack(answer)[0]
        return status


def _wait_until_gone(pid: int, deadline: float) -> None:
    """Until the process has exited (the server's children are reaped by the kernel, so an
    exited one is gone at once; a zombie counts as gone too: it holds nothing)."""
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    return
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        time.sleep(0.0005)


def _text(file: IO[bytes]) -> str:
    file.seek(0)
    text = file.read().decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as text=True


FORKS = ForkServer()
