"""A whole lifecycle through the real console script, then every byte at rest is searched: the
database files (SQLite: file, WAL, journal; PostgreSQL: the data directory and its WAL), the
session's output, the server log and the backup hold no secret in any form. After the purge, not
even the secret's ciphertext is left in the vault's files (PostgreSQL: after the steps
docs/vault.md gives, each checked for what it removes)."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.seed import encode_base32
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.schema import token_secrets
from tests.conftest import RunCli
from tests.pg import PostgresServer

SECRET = bytes.fromhex("3132333435363738393031323334353637383930aabbccdd")
UPN = "helga@contoso.com"
SERIAL = "86596120001"


def secret_forms() -> list[bytes]:
    b32 = encode_base32(SECRET)
    return [
        SECRET,
        SECRET.hex().encode(),
        SECRET.hex().upper().encode(),
        b32.encode(),
        b32.lower().encode(),
        b32.rstrip("=").encode(),
        base64.b64encode(SECRET),
        SECRET.hex().encode("utf-16-le"),  # as a PostgreSQL or Windows tool might write text
    ]


def ciphertexts(location: VaultLocation) -> list[bytes]:
    engine = sa.create_engine(location.database_url)
    with engine.connect() as conn:
        found = [bytes(row.ciphertext) for row in conn.execute(sa.select(token_secrets))]
    engine.dispose()
    return found


def files_under(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        found += [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return found


@pytest.mark.slow
def test_lifecycle_leaves_no_secret_at_rest(
    location: VaultLocation,
    env: dict[str, str],
    cli: RunCli,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    transcript: list[str] = []
    holder = None
    if location.sqlite_path is not None:
        # An idle connection kept open, as a long-running console would: SQLite then keeps the
        # WAL and shared-memory files between commands, and they are searched too.
        holder = sqlite3.connect(location.sqlite_path)
        holder.execute("SELECT count(*) FROM sqlite_master").fetchall()

    def run(*args: str, input: str | None = None) -> str:
        result = cli(*args, input=input, env=env)
        transcript.extend([" ".join(args), result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("user", "add", UPN, "--name", "Helga", "--phone", "+41790000000")
    run("token", "add", "--serial", SERIAL, "--user", UPN, input=encode_base32(SECRET) + "\n")
    run("token", "burned", SERIAL)
    run("token", "registered", SERIAL)
    run("token", "ship", SERIAL, "--carrier", "DHL", "--tracking", "JD014600003")
    backup = tmp_path / "vault.bak"
    run("backup", str(backup))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    shown = json.loads(run("token", "show", SERIAL, "--json"))
    assert (shown["state"], shown["has_secret"]) == ("shipped", True)
    sealed = ciphertexts(location)
    assert len(sealed) == 1, "the secret is stored, encrypted"
    run("token", "deliver", SERIAL, "--override-reason", "user read a code on the phone")
    run("token", "purge", SERIAL, "--yes")
    run("audit", "verify")
    run("audit", "export")
    log = tmp_path / "session.log"
    log.write_text("\n".join(transcript))

    if location.sqlite_path is not None:
        assert stat.S_IMODE(location.sqlite_path.stat().st_mode) == 0o600
        vault_files = sorted(location.sqlite_path.parent.glob(location.sqlite_path.name + "*"))
        assert {p.name for p in vault_files} >= {"vault.sqlite3", "vault.sqlite3-wal"}
        for path in vault_files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        vault_files = purge_postgresql_as_documented(location, server, sealed)
    everything = files_under(*vault_files, log, backup)
    if location.sqlite_path is None:
        # The server's whole data directory (its WAL included) and its log: no plaintext.
        everything += files_under(server.data, server.root / "log")
    for path in everything:
        data = path.read_bytes()
        for form in secret_forms():
            assert form not in data, f"the secret ({form[:6]!r}...) is in {path}"
    for path in vault_files:
        data = path.read_bytes()
        for ciphertext in sealed:
            assert ciphertext not in data, f"the purged ciphertext is still in {path}"
    if holder is not None:
        holder.close()


def holding(paths: list[Path], needles: list[bytes]) -> list[Path]:
    return [path for path in paths if any(needle in path.read_bytes() for needle in needles)]


def purge_postgresql_as_documented(
    location: VaultLocation, server: PostgresServer, sealed: list[bytes]
) -> list[Path]:
    """docs/vault.md, "Purging", step by step, and what each step leaves where: the table's files
    lose a purged ciphertext at VACUUM FULL, the write-ahead log only when its segment is gone.
    Returns every file of the server's data directory, which then holds it nowhere."""
    engine = sa.create_engine(location.database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        database_oid = conn.exec_driver_sql(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).scalar_one()
        conn.exec_driver_sql("CHECKPOINT")  # the pages on disk, not only in shared buffers
        table_files = files_under(server.data / "base" / str(database_oid))
        # A deleted row version stays in the table's pages until its space is reclaimed.
        assert holding(table_files, sealed), "expected the dead row version before VACUUM"
        conn.exec_driver_sql("VACUUM (FULL) token_secrets")
        conn.exec_driver_sql("CHECKPOINT")
        table_files = files_under(server.data / "base" / str(database_oid))
        assert not holding(table_files, sealed), "VACUUM FULL left the ciphertext in the table"
        # The WAL segment the row was written to is still live: CHECKPOINT does not remove it.
        assert holding(files_under(server.data / "pg_wal"), sealed)
        # wal_recycle = off: a finished segment is deleted, not renamed for reuse with its old
        # bytes (with the default, they stay until new WAL overwrites them: up to min_wal_size).
        conn.exec_driver_sql("ALTER SYSTEM SET wal_recycle = off")
        try:
            reload_configuration(conn, server)
            conn.exec_driver_sql("SELECT pg_switch_wal()")
            conn.exec_driver_sql("CHECKPOINT")
            everything = files_under(server.data)
            assert not holding(everything, sealed), "the documented procedure left it"
        finally:
            conn.exec_driver_sql("ALTER SYSTEM RESET wal_recycle")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
    engine.dispose()
    return everything


def reload_configuration(conn: sa.Connection, server: PostgresServer) -> None:
    """pg_reload_conf() only signals the server: wait until its log says the setting changed,
    so the CHECKPOINT that follows runs with it."""
    log = server.root / "log"
    seen = log.read_text(errors="replace").count('"wal_recycle" changed to "off"')
    conn.exec_driver_sql("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 30
    while log.read_text(errors="replace").count('"wal_recycle" changed to "off"') == seen:
        assert time.monotonic() < deadline, "PostgreSQL did not reload its configuration"
        time.sleep(0.01)
    time.sleep(0.2)  # the postmaster logs, then signals the checkpointer
