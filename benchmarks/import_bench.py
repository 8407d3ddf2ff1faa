"""Issues 5 and 15: bulk import into the SQLite vault, against privacyIDEA's `pi-manage token
import`, and the whole `oathdesk import` process beside a floor program (import_floor.py).

privacyIDEA runs from its own virtual environment (benchmarks/.peers/privacyidea, created on
first use with `pip install privacyidea==3.14`), on its own SQLite database, in the same run.
"""

from __future__ import annotations

import base64
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Row, Section, settle_disk, verdict
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import Actor, NewToken, Vault

OURS = 100_000
OATHDESK = Path(sys.executable).parent / "oathdesk"
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


def _entra_csv(path: Path) -> None:
    """OURS rows, each a new user (the issue's case: a company's first order)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("upn,serial number,secret key,time interval,manufacturer,model\r\n")
        handle.writelines(
            f"person{i:06d}@contoso.com,{60000000 + i},"
            f"{base64.b32encode(os.urandom(20)).decode()},30,Token2,C202\r\n"
            for i in range(OURS)
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def whole_import_seconds(source: Path) -> tuple[float, float, float, float, float]:
    """Median seconds of `oathdesk import SOURCE`, of the floor program on it and of the floor
    with a new vault's 16 KiB pages (for comparison), whole processes, each run into a new vault
    (database), and the median CPU seconds of the first two; the three alternate run by run, so
    that the shared machine's load weighs on them alike."""
    ours: list[float] = []
    floor: list[float] = []
    floor16: list[float] = []
    ours_cpu: list[float] = []
    floor_cpu: list[float] = []
    for _ in range(REPEATS):
        root = Path(tempfile.mkdtemp(prefix="oathdesk-import-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
        env.update(OATHDESK_VAULT=str(root / "vault.sqlite3"), OATHDESK_KEY_FILE=str(root / "k"))
        subprocess.run([str(OATHDESK), "init"], env=env, capture_output=True, check=True)
        settle_disk()
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(
            [str(OATHDESK), "import", str(source)], env=env, capture_output=True, check=True
        )
        ours.append(time.perf_counter() - start)
        ours_cpu.append(_children_cpu() - cpu)
        for database, page_size, times in (("f.db", [], floor), ("f16.db", ["16384"], floor16)):
            settle_disk()
            start, cpu = time.perf_counter(), _children_cpu()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.import_floor",
                    str(source),
                    str(root / database),
                    *page_size,
                ],
                capture_output=True,
                check=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
            times.append(time.perf_counter() - start)
            if not page_size:
                floor_cpu.append(_children_cpu() - cpu)
        shutil.rmtree(root, ignore_errors=True)
    median = statistics.median
    return median(ours), median(floor), median(floor16), median(ours_cpu), median(floor_cpu)


def import_section() -> Section:
    source = Path(tempfile.mkdtemp(prefix="oathdesk-import-csv-")) / "order.csv"
    _entra_csv(source)
    load = os.getloadavg()[0]
    whole, floor, floor16, whole_cpu, floor_cpu = whole_import_seconds(source)
    shutil.rmtree(source.parent, ignore_errors=True)
    ours = ours_tokens_per_second()
    theirs = privacyidea_tokens_per_second()
    rows = [
        Row(
            f"`oathdesk import` of a {OURS:,}-row Entra CSV, {OURS:,} new users, whole process",
            OURS / whole,
            "tokens/s",
            f"{whole:.2f} s ({whole_cpu:.2f} s of CPU); median of {REPEATS}, each into a new "
            "vault: read, decode, check, create the users, encrypt, fingerprint, insert, audit, "
            f"commit; load average {load:.1f} on the machine as the run began",
        ),
        Row(
            "floor program (benchmarks/import_floor.py), the same file, whole process",
            OURS / floor,
            "tokens/s",
            f"{floor:.2f} s ({floor_cpu:.2f} s of CPU); median of {REPEATS}: stdlib csv, "
            "AES-GCM, HMAC, sqlite3 executemany into users and tokens, WAL, synchronous=FULL, "
            "one commit",
        ),
        Row(
            "the floor program with 16 KiB pages (as a new vault's), for comparison only",
            OURS / floor16,
            "tokens/s",
            f"{floor16:.2f} s, median of {REPEATS}; the target's floor is the one above, as "
            f"the issue set it (SQLite's default 4 KiB pages): oathdesk takes "
            f"{whole / floor16:.2f}x this one",
        ),
        Row(
            f"oathdesk vault, {OURS:,} tokens (encrypt + fingerprint + insert + audit)",
            ours,
            "tokens/s",
            f"the inner step only; best of {REPEATS}, each into a new vault",
        ),
    ]
    verdicts = [
        verdict("`oathdesk import` tokens/s, whole process", OURS / whole, 50_000),
        verdict("`oathdesk import` time / floor time", whole / floor, 2, higher_is_better=False),
        verdict("oathdesk vault tokens/s (inner step)", ours, 50_000),
    ]
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
        verdicts.append(
            verdict("`oathdesk import` (whole) / privacyIDEA", OURS / whole / theirs, 500)
        )
    return Section(
        "Bulk import into a SQLite vault",
        "One transaction per import: every seed encrypted (AES-256-GCM bound to its token) and "
        "fingerprinted (HMAC-SHA256, checked against the vault's), one audit record for the "
        "users it creates and one that every token row points to. The whole `oathdesk import` "
        "process is timed beside a floor program doing the least an import must (no checks, no "
        "audit, no secondary indexes), run by run in the same conditions. Where the time goes "
        "(measured phase by phase, about 4.1 s in all): SQLite's inserts 2.0 s (tokens 1.05 s: "
        "the table and the seven indexes a new token enters; secrets 0.63 s, 0.2 s of it the "
        "fingerprint index; users 0.27 s), start-up 0.4 s (importing SQLAlchemy alone: 0.25 s), "
        "reading and checking the file 0.43 s, fingerprints 0.16 s, encryption and rows 0.29 s, "
        "the vault's own checks 0.3 s, the commit 0.2 s. Since then: command modules are "
        "imported with the garbage collector paused (start-up 0.05 s shorter), fingerprints "
        "with cryptography's HMAC (0.06 s), and no progress bar off a terminal (0.04 s). A new "
        "vault is written in 16 KiB pages "
        "(db.SQLITE_PAGE_SIZE; it was 4 KiB, SQLite's default, until 2026-12-05): a quarter as "
        "many pages to split, fill and copy at the checkpoint took 0.3-0.4 s off the import's "
        "SQLite work (a vault made before keeps its pages). The floor's SQLite work is 0.7 s: "
        "it writes 4 B-trees and 21 MB where a vault writes 14 B-trees and 86 MB (text UUID "
        "keys, each in its own index; timestamps as text; an index per list that must not cost "
        "more as the vault grows). The floor is also timed with 16 KiB pages, for comparison "
        "only. Tried and left: a bigger page cache (no change, with 4 or 16 KiB pages), WITHOUT "
        "ROWID tables (slower), secure_delete off and foreign keys off (within the noise), the "
        "secrets in the token rows (no faster: the wider rows cost what the saved index did). "
        "Integer row keys would take 0.3-0.5 s more off (measured on a copy of the schema), at "
        "the price of re-encrypting every secret (each is bound to its token's text id).",
        rows,
        verdicts,
    )


SECTIONS = [import_section]
