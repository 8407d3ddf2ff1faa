"""Issue 5: bulk import into the SQLite vault, against privacyIDEA's `pi-manage token import`.

privacyIDEA runs from its own virtual environment (benchmarks/.peers/privacyidea, created on
first use with `pip install privacyidea==3.14`), on its own SQLite database, in the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Row, Section, verdict
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import Actor, NewToken, Vault

OURS = 100_000
THEIRS = 2_000
PEERS = Path(__file__).resolve().parent / ".peers"
PI_CONFIG = """SECRET_KEY = 'benchmark-only'
PI_PEPPER = 'benchmark-only'
SQLALCHEMY_DATABASE_URI = 'sqlite:///{root}/pi.sqlite'
PI_ENCFILE = '{root}/enckey'
PI_AUDIT_KEY_PRIVATE = '{root}/private.pem'
PI_AUDIT_KEY_PUBLIC = '{root}/public.pem'
PI_LOGFILE = '{root}/pi.log'
"""


REPEATS = 3


def ours_tokens_per_second() -> float:
    """The best of ``REPEATS`` imports, each into a new vault (the first warms the caches)."""
    return max(_one_import() for _ in range(REPEATS))


def _one_import() -> float:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-bench-"))
    path = root / "vault.sqlite3"
    vault = Vault.create(
        VaultLocation(f"sqlite:///{path}", root / "k", path), MasterKey.generate(), Actor("bench")
    )
    batch = [
        NewToken(f"B{i:08d}", "Token2", "C202", TokenKind.CLASSIC, os.urandom(20))
        for i in range(OURS)
    ]
    start = time.perf_counter()
    vault.add_tokens(Actor("bench"), batch, source="bench")
    elapsed = time.perf_counter() - start
    vault.close()
    shutil.rmtree(root, ignore_errors=True)
    return OURS / elapsed


def privacyidea_tokens_per_second() -> float | None:
    venv = PEERS / "privacyidea"
    manage = venv / "bin" / "pi-manage"
    if not manage.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "privacyidea==3.14"],
            capture_output=True,
            check=False,
        )
        if installed.returncode != 0:
            return None
    root = Path(tempfile.mkdtemp(prefix="pi-bench-"))
    (root / "pi.cfg").write_text(PI_CONFIG.format(root=root))
    env = {**os.environ, "PRIVACYIDEA_CONFIGFILE": str(root / "pi.cfg")}
    for step in ("create_enckey", "create_audit_keys", "create_tables"):
        subprocess.run([str(manage), "setup", step], env=env, capture_output=True, check=True)
    csv = root / "tokens.csv"
    csv.write_text(
        "".join(f"PIB{i:06d}, {os.urandom(20).hex()}, totp, 6, 30\n" for i in range(THEIRS))
    )
    start = time.perf_counter()
    subprocess.run(
        [str(manage), "token", "import", str(csv)], env=env, capture_output=True, check=True
    )
    return THEIRS / (time.perf_counter() - start)


def import_section() -> Section:
    ours = ours_tokens_per_second()
    theirs = privacyidea_tokens_per_second()
    rows = [
        Row(
            f"oathdesk vault, {OURS:,} tokens (encrypt + fingerprint + insert + audit)",
            ours,
            "tokens/s",
            f"best of {REPEATS}, each into a new vault",
        )
    ]
    verdicts = [verdict("oathdesk tokens/s", ours, 50_000)]
    if theirs is None:
        rows.append(
            Row(
                "privacyIDEA 3.14 pi-manage token import",
                0,
                "tokens/s",
                "could not be installed in this run",
            )
        )
    else:
        rows.append(
            Row(
                f"privacyIDEA 3.14 pi-manage token import, {THEIRS:,} tokens",
                theirs,
                "tokens/s",
                "whole command, including its start-up",
            )
        )
        verdicts.append(verdict("oathdesk / privacyIDEA", ours / theirs, 100))
    return Section(
        "Bulk import into a SQLite vault",
        "One transaction per import: every seed encrypted (AES-256-GCM bound to its token) and "
        "fingerprinted (HMAC-SHA256, checked against the vault's), one audit record that every "
        "token row points to.",
        rows,
        verdicts,
    )


SECTIONS = [import_section]
