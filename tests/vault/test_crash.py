"""SIGKILL in the middle of a large write: the vault opens afterwards, consistent, with all or
none of it.

The writer announces the moment its INSERT of the tokens starts (a statement hook), and is
killed a moment later, while the database is taking the rows.
"""

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
from tests.vault.conftest import classic, read_secret, secret_for
from tests.vault_fixtures import ADMIN

ROWS = 60_000

WRITER = textwrap.dedent(
    """
    import re, sys
    from pathlib import Path
    import sqlalchemy as sa
    from oathdesk.vault.config import VaultLocation
    from oathdesk.vault.keys import read_key_file
    from oathdesk.vault.lifecycle import TokenKind
    from oathdesk.vault.vault import Actor, NewToken, Vault

    url, key_file, sqlite_path, rows = sys.argv[1:5]
    where = VaultLocation(url, Path(key_file), Path(sqlite_path) if sqlite_path else None)
    vault = Vault.open(where, read_key_file(where.key_file))
    batch = [NewToken(f"K{i:08d}", "Token2", "C202", TokenKind.CLASSIC, i.to_bytes(20, "big"))
             for i in range(int(rows))]
    announced = False

    def announce(conn, cursor, statement, parameters, context, executemany):
        global announced
        if not announced and re.match(r'INSERT INTO "?tokens"?', statement):
            announced = True
            print("inserting", flush=True)

    sa.event.listen(vault.engine, "before_cursor_execute", announce)
    vault.add_tokens(Actor("local:crash-test"), batch, source="crash test")
    print("committed", flush=True)
    """
)


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_sigkill_mid_bulk_write(
    vault: Vault, location: VaultLocation, master_key: MasterKey
) -> None:
    vault.add_token(ADMIN, classic("before"))
    audited = vault.audit_count()
    vault.close()  # the writer opens it in its own process
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
    assert proc.stdout.readline().strip() == "inserting"
    time.sleep(0.05)  # inside the insert: 60,000 rows take several times longer
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout.read() == "", "the write finished before the kill; make it larger"

    reopened = Vault.open(location, master_key)
    try:
        assert count(reopened.engine, tokens) == 1
        assert count(reopened.engine, token_secrets) == 1
        assert count(reopened.engine, audit_log) == audited
        assert reopened.verify_audit() == []
        if location.sqlite_path is not None:
            with reopened.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # Usable as before: the same serials go in now.
        reopened.add_tokens(ADMIN, [classic(f"K{i:08d}") for i in range(100)])
        assert read_secret(reopened, "K00000042") == secret_for("K00000042")
        assert reopened.verify_audit() == []
    finally:
        reopened.close()
