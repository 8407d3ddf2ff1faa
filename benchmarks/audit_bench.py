"""Issue 15: checking a million-record audit chain, and how fast a reading command starts.

The chain check is set beside its floor: a plain loop of ``hmac.digest`` over the same records'
MACed bytes, held in memory (no database, no parsing). A reading command's start-up is set
beside ``python -c pass`` of the same interpreter, whole processes both.
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.big_vault import build_big_vault, chain_bytes
from benchmarks.harness import Row, Section, best_seconds, verdict
from benchmarks.start_bench import token_list_start_section
from oathdesk.vault import audit_verify
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey

RECORDS = 1_000_000


def audit_verify_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-audit-bench-"))
    try:
        path = root / "vault.sqlite3"
        location = VaultLocation(f"sqlite:///{path}", root / "vault.key", path)
        vault = build_big_vault(
            location, MasterKey.generate(), users=1_000, tokens=1_000, audit_records=RECORDS
        )
        ours = best_seconds(lambda: _intact(vault.verify_audit()), repeat=3)
        with_one_core = audit_verify.PARALLEL_ROWS
        audit_verify.PARALLEL_ROWS = RECORDS + 1  # the same check in one pass, for comparison
        try:
            one_pass = best_seconds(lambda: _intact(vault.verify_audit()), repeat=3)
        finally:
            audit_verify.PARALLEL_ROWS = with_one_core
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
        "same records' MACed bytes from memory with `hmac.digest`, one call each. A log this "
        "long is checked in two halves at once (two processes); the one-pass row is the same "
        f"check in one process. Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "at the end of the section (a shared machine: compare the ratios).",
        [
            Row("oathdesk verify_audit, SQLite", ours, "s", "reads, MACs and checks every record"),
            Row("the same, in one pass", one_pass, "s", "one process"),
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


SECTIONS = [audit_verify_section, token_list_start_section]
