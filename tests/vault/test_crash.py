"""SIGKILL in the middle of a large write: the vault opens afterwards with all or none of it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.schema import audit_log, token_secrets, tokens
from oathdesk.vault.vault import Vault

ROWS = 60_000

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from oathdesk.vault.config import VaultLocation
    from oathdesk.vault.keys import read_key_file
    from oathdesk.vault.lifecycle import TokenKind
    from oathdesk.vault.vault import Actor, NewToken, Vault

    url, key_file, sqlite_path, rows = sys.argv[1:5]
    where = VaultLocation(url, Path(key_file), Path(sqlite_path) if sqlite_path else None)
    vault = Vault.open(where, read_key_file(where.key_file))
    batch = [NewToken(f"K{i:08d}", "Token2", "C202", TokenKind.CLASSIC, i.to_bytes(20, "big"))
             for i in range(int(rows))]
    print("writing", flush=True)
    vault.add_tokens(Actor("local:crash-test"), batch, source="crash test")
    print("done", flush=True)
    """
)


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_sigkill_mid_bulk_write(
    vault: Vault, location: VaultLocation, master_key: MasterKey
) -> None:
    del vault  # created; the writer opens it in its own process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            location.database_url,
            str(location.key_file),
            str(location.sqlite_path or ""),
            str(ROWS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.4)  # well inside the write: the batch takes seconds
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reopened = Vault.open(location, master_key)
    try:
        written = count(reopened.engine, tokens)
        assert written in (0, ROWS)
        assert count(reopened.engine, token_secrets) == written
        assert count(reopened.engine, audit_log) == 1 + written  # vault.created + one per token
        assert reopened.verify_audit() == []
        assert written == 0, "the kill came after the commit; make the batch larger"
    finally:
        reopened.close()
