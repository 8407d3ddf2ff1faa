"""A fork server for the tests' command runs (started by tests/cli_forks.py, one per test process).

It imports once what every ``oathdesk`` command imports (SQLAlchemy, click, cryptography,
phonenumbers, oathdesk itself), then forks a child for each run. The child is a separate
process with the run's own stdin, stdout, stderr, working directory, environment and arguments,
and it runs the console script's entry point as the script would; what it skips is the
interpreter's start-up and the imports, about 0.7 s of a command's 0.9 s on the test machine.

Protocol, per connection: the client sends a 4-byte length with three file descriptors (stdin,
stdout, stderr), then that many bytes of JSON ({"argv", "env", "cwd"}). The child answers with
its pid (8 bytes), then, once the command has finished, its exit status (8 bytes). A child
killed by a signal closes the connection without the status.

Only the standard library (and tests/sockets.py, tests/fork_protocol.py) is imported before
the preload, and nothing is run that reads the environment or the clock: a child must not
inherit anything the run would not get fresh.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

# The test helpers it uses, from the project's root; then the same sys.path as the console
# script: its own bin directory first (not this folder).
sys.path[0] = str(Path(__file__).resolve().parents[1])
from tests.fork_protocol import LENGTH, NUMBER  # noqa: E402
from tests.sockets import listening_unix_socket, receive_exactly  # noqa: E402

sys.path[0] = str(Path(sys.executable).parent)

PRELOAD = (
    "oathdesk.cli.main",
    "oathdesk.vault.vault",
    "oathdesk.vault.db",
    "oathdesk.people",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.postgresql",
    "psycopg",
    "alembic.command",
    "rich.console",
    "rich.table",
)


def preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def exit_status(code: object) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_child(conn: socket.socket, request: dict[str, object], fds: list[int]) -> None:
    """The command, in the forked child; never returns."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server's SIG_IGN would break waits
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(str(request["cwd"]))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update(env)
        time.tzset()  # TZ as the run gives it, as a fresh process reads it
        argv = request["argv"]
        assert isinstance(argv, list)
        sys.argv = [str(arg) for arg in argv]
        conn.sendall(NUMBER.pack(os.getpid()))
        try:
            from oathdesk.cli.entry import main

            status = exit_status(main())
        except SystemExit as stop:
            status = exit_status(stop.code)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            status = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                status = status or 120  # as the interpreter does when it cannot flush
        try:
            conn.sendall(NUMBER.pack(status))
        finally:
            os._exit(status)


def serve(path: str, lifeline: int) -> None:
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = listening_unix_socket(path)  # the client connects once the name exists
    events = selectors.DefaultSelector()
    events.register(listener, selectors.EVENT_READ)
    events.register(lifeline, selectors.EVENT_READ)  # EOF: the test process has gone
    while True:
        for key, _ in events.select():
            if key.fileobj == lifeline:
                os.unlink(path)
                os.rmdir(os.path.dirname(path))  # the client made it for this server alone
                return
            conn, _ = listener.accept()
            try:
                header, fds, _, _ = socket.recv_fds(conn, LENGTH.size, 3)
                (size,) = LENGTH.unpack(header)
                body = receive_exactly(conn, size)
                if len(body) < size:
                    raise EOFError
                request = json.loads(body)
            except (OSError, EOFError, ValueError, struct.error):
                conn.close()
                continue
            if os.fork() == 0:
                listener.close()
                events.close()
                os.close(lifeline)
                run_child(conn, request, fds)
            for fd in fds:
                os.close(fd)
            conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
