"""Issue 15: checking a million-record audit chain, and how fast a reading command starts.

The chain check is set beside its floor: a plain loop of ``hmac.digest`` over the same records'
MACed bytes, held in memory (no database, no parsing). A reading command's start-up is set
beside ``python -c pass`` of the same interpreter, whole processes both.
"""

from __future__ import annotations

import hmac
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.big_vault import build_big_vault, chain_bytes
from benchmarks.harness import Row, Section, best_seconds, median_process_seconds, verdict
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey

RECORDS = 1_000_000
STARTS = 20


def audit_verify_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-audit-bench-"))
    try:
        path = root / "vault.sqlite3"
        location = VaultLocation(f"sqlite:///{path}", root / "vault.key", path)
        vault = build_big_vault(
            location, MasterKey.generate(), users=1_000, tokens=1_000, audit_records=RECORDS
        )
        ours = best_seconds(lambda: _intact(vault.verify_audit()), repeat=3)
        messages = list(chain_bytes(vault))
        vault.close()
        key = os.urandom(32)

        def floor_loop() -> None:
            digest = hmac.digest
            for message in messages:
                digest(key, message, "sha256")

        floor = best_seconds(floor_loop, repeat=3)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Section(
        "Audit chain check of 1,000,000 records",
        "`Vault.verify_audit` (what `oathdesk audit verify` and `GET /api/v1/audit/verify` run) "
        "on a SQLite vault built by benchmarks/big_vault.py; best of 3. The floor hashes the "
        "same records' MACed bytes from memory with `hmac.digest`, one call each.",
        [
            Row("oathdesk verify_audit, SQLite", ours, "s", "reads, MACs and checks every record"),
            Row("stdlib hmac.digest loop (floor)", floor, "s", "bytes already in memory"),
        ],
        [
            verdict("audit verify of 1,000,000 records, s", ours, 3, higher_is_better=False),
            verdict("audit verify speed / floor", floor / ours, 0.3),
        ],
    )


def _intact(problems: list[str]) -> None:
    if problems:
        raise RuntimeError(f"the benchmark's chain does not verify: {problems[:3]}")


def token_list_start_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-start-bench-"))
    oathdesk = str(Path(sys.executable).with_name("oathdesk"))
    saved = dict(os.environ)
    try:
        os.environ["OATHDESK_VAULT"] = str(root / "vault.sqlite3")
        os.environ.pop("OATHDESK_DATABASE_URL", None)
        os.environ.pop("OATHDESK_MASTER_KEY", None)
        subprocess.run([oathdesk, "init"], capture_output=True, check=True)
        for index in range(5):
            subprocess.run(
                [oathdesk, "token", "add", "--serial", f"S{index:04d}", "--generate"],
                capture_output=True,
                check=True,
            )
        python = median_process_seconds([sys.executable, "-c", "pass"], runs=STARTS)
        ours = median_process_seconds([oathdesk, "token", "list"], runs=STARTS)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)
    return Section(
        "Start-up of a reading command",
        f"Median of {STARTS} process starts: `oathdesk token list` on a small SQLite vault, "
        "beside `python -c pass` of the same interpreter.",
        [
            Row("python -c pass", python * 1000, "ms"),
            Row("oathdesk token list", ours * 1000, "ms", "opens the vault, prints a table"),
        ],
        [verdict("oathdesk token list / python -c pass", ours / python, 8, higher_is_better=False)],
    )


SECTIONS = [audit_verify_section, token_list_start_section]
