"""A real PostgreSQL server for the test run, started from Debian's binaries on a free port.

We run as root in CI; PostgreSQL refuses that, so the server runs as the ``postgres`` OS user
(through ``runuser``) with its data directory in a temporary folder it owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


class PostgresServer:
    def __init__(self) -> None:
        if not PG_BIN_CANDIDATES:
            raise RuntimeError("PostgreSQL is not installed; run `make test`, which installs it")
        self.bin = PG_BIN_CANDIDATES[0]
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="oathdesk-pg-"))
        self.data = self.root / "data"
        self._template: str | None = None
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)

    def start(self) -> None:
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.root / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        # The data directory holds every test's database (a few hundred, ~300 files each):
        # removing it took 10-30 s at the end of each test process, so a process of its own
        # removes it while the run goes on.
        subprocess.run(
            ["sh", "-c", 'rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(self.root)],
            stdin=subprocess.DEVNULL,
            check=True,
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin_execute(self, statement: str) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, *, migrated: bool = True) -> str:
        """A fresh database; by default a copy of one with the vault's schema already migrated
        (copying a template takes milliseconds, migrating takes a good part of a second)."""
        template = self._migrated_template() if migrated else "template1"
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def _migrated_template(self) -> str:
        if self._template is None:
            from oathdesk.vault import db

            name = "oathdesk_migrated"
            self._admin_execute(f'CREATE DATABASE "{name}"')
            engine = db.create_engine(self.url(name))
            db.upgrade(engine)
            engine.dispose()  # a template must have no open connections
            self._template = name
        return self._template


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
