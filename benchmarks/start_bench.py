"""Issue 15: how fast the reading commands start, beside ``python -c pass`` of the same
interpreter, whole processes all, on a small SQLite vault (output to a pipe, as scripts read it).

The runs are interleaved (one start of each command per round) so that a shared machine's
changing load weighs on every command alike; the ratio is what the target is about. Run it alone
with ``python -m benchmarks.run benchmarks.start_bench`` (``benchmarks.audit_bench`` runs it too,
after the million-record audit check).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Row, Section, verdict

STARTS = 20
TARGET = 8  # times python -c pass


def _interleaved_medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # warm the file cache
        subprocess.run(argv, capture_output=True, check=True)
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(found) for name, found in times.items()}


def token_list_start_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-start-bench-"))
    oathdesk = str(Path(sys.executable).with_name("oathdesk"))
    saved = dict(os.environ)
    try:
        os.environ["OATHDESK_VAULT"] = str(root / "vault.sqlite3")
        for name in ("OATHDESK_DATABASE_URL", "OATHDESK_MASTER_KEY", "OATHDESK_KEY_FILE"):
            os.environ.pop(name, None)
        # As installed: modules compiled once and their bytecode cached (the warm-up run writes
        # it), not compiled afresh by every start, as PYTHONDONTWRITEBYTECODE would have it.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([oathdesk, "init"], capture_output=True, check=True)
        subprocess.run([oathdesk, "user", "add", "a@contoso.com"], capture_output=True, check=True)
        for index in range(5):
            subprocess.run(
                [oathdesk, "token", "add", "--serial", f"S{index:04d}", "--generate"]
                + (["--user", "a@contoso.com"] if index < 2 else []),
                capture_output=True,
                check=True,
            )
        medians = _interleaved_medians(
            {
                "python -c pass": [sys.executable, "-c", "pass"],
                "oathdesk token list": [oathdesk, "token", "list"],
                "oathdesk token list --json": [oathdesk, "token", "list", "--json"],
                "oathdesk user show": [oathdesk, "user", "show", "a@contoso.com"],
                "oathdesk audit verify": [oathdesk, "audit", "verify"],
                "oathdesk drift": [oathdesk, "drift"],
            },
            STARTS,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)
    floor = medians["python -c pass"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return Section(
        "Start-up of a reading command",
        f"Median of {STARTS} process starts each, interleaved: reading commands on a small "
        "SQLite vault (5 tokens, output to a pipe), beside `python -c pass` of the same "
        "interpreter, bytecode cached as installed. They read through vault/quickread.py "
        "(sqlite3, no SQLAlchemy; the cipher only for audit verify) and draw tables without "
        f"rich (cli/table_text.py). Load average {load:.1f} on {os.cpu_count()} cores at the "
        "end of the run (a shared machine: the ratio is the figure to compare).",
        [
            Row(
                name,
                seconds * 1000,
                "ms",
                "" if name.startswith("python") else _ratio(seconds, floor),
            )
            for name, seconds in medians.items()
        ],
        [
            verdict(
                "oathdesk token list / python -c pass",
                medians["oathdesk token list"] / floor,
                TARGET,
                higher_is_better=False,
            )
        ],
    )


def _ratio(seconds: float, floor: float) -> str:
    return f"{seconds / floor:.1f}x python -c pass"


SECTIONS = [token_list_start_section]
