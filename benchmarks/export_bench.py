"""Issue 15: an Entra CSV export of 100,000 tokens, as a whole `oathdesk export` command and as
a whole `POST /api/v1/export/entra-csv` request to `oathdesk serve` on 127.0.0.1 (time to the
first byte and to the last). Target: 1.5 s.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.api_bench import LOCAL, OATHDESK, _free_port, _server_env, _wait_for_port
from benchmarks.harness import Row, Section, settle_disk, verdict
from oathdesk.vault.api_keys import ApiKeyStore
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import NewToken
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Vault

TOKENS = 100_000
REPEATS = 3
TARGET_SECONDS = 1.5


def _vault(root: Path) -> tuple[VaultLocation, str]:
    """A vault with TOKENS tokens, each assigned to its own user, and an admin's API key."""
    path = root / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", root / "vault.key", path)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, LOCAL)
    try:
        vault.add_tokens(
            LOCAL,
            [
                NewToken(
                    f"{60000000 + i}",
                    "Token2",
                    "C202",
                    TokenKind.CLASSIC,
                    os.urandom(20),
                    upn=f"person{i:06d}@contoso.com",
                )
                for i in range(TOKENS)
            ],
            source="bench",
            create_missing_users=True,
        )
        OperatorDirectory(vault).add(LOCAL, "boss", "admin", "export bench only, never used")
        return location, ApiKeyStore(vault).create(LOCAL, "boss", "export bench").secret_text
    finally:
        vault.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_seconds(location: VaultLocation, root: Path) -> tuple[float, float]:
    """Median wall and CPU time of the whole `oathdesk export entra-csv -o FILE` process."""
    env = _server_env(location)
    times, cpus = [], []
    for run in range(REPEATS):
        output = root / f"export-{run}.csv"
        settle_disk()
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(
            [str(OATHDESK), "export", "entra-csv", "-o", str(output)],
            env=env,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
        output.unlink()
    return statistics.median(times), statistics.median(cpus)


def _server_cpu(process: psutil.Process) -> float:
    """CPU seconds of the server and its worker processes so far."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += times.user + times.system
    return total


def api_seconds(location: VaultLocation, admin_key: str) -> tuple[float, float, float]:
    """Median seconds to the first byte and to the last of the whole request, on a server
    started once (`oathdesk serve` defaults), and the server's CPU seconds for it."""
    port = _free_port()
    argv = [str(OATHDESK), "serve", "--host", "127.0.0.1", "--port", str(port)]
    firsts, wholes, cpus = [], [], []
    server = subprocess.Popen(
        argv, env=_server_env(location), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, server)
        watched = psutil.Process(server.pid)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=120,
        ) as client:
            for _ in range(REPEATS):
                cpu = _server_cpu(watched)
                settle_disk()
                start = time.perf_counter()
                with client.stream("POST", "/export/entra-csv") as response:
                    response.raise_for_status()
                    pieces = response.iter_bytes()
                    size = len(next(pieces))
                    firsts.append(time.perf_counter() - start)
                    size += sum(len(piece) for piece in pieces)
                wholes.append(time.perf_counter() - start)
                cpus.append(_server_cpu(watched) - cpu)
                if size < TOKENS * 40:
                    raise RuntimeError(f"the export was {size} bytes")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return statistics.median(firsts), statistics.median(wholes), statistics.median(cpus)


def export_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-export-bench-"))
    try:
        location, admin_key = _vault(root)
        load = os.getloadavg()[0]
        cli, cli_cpu = cli_seconds(location, root)
        first, whole, api_cpu = api_seconds(location, admin_key)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Section(
        "Entra CSV export of 100,000 tokens",
        "The tokens are chosen and the audit record naming all of them is committed first, with "
        "the secrets read still encrypted in that transaction; then they are decrypted a chunk "
        "at a time and streamed (the API's answer starts at once, the CLI writes the file as it "
        "goes). Each token is assigned to its own user; SQLite vault, synchronous=FULL.",
        [
            Row(
                f"oathdesk export entra-csv, {TOKENS:,} tokens, whole process",
                cli * 1000,
                "ms",
                f"median of {REPEATS}; {cli_cpu:.2f} s of CPU; load average {load:.1f} on the "
                "machine as the run began",
            ),
            Row(
                f"POST /api/v1/export/entra-csv, {TOKENS:,} tokens, whole request",
                whole * 1000,
                "ms",
                f"median of {REPEATS}; {api_cpu:.2f} s of the server's CPU; `oathdesk serve` "
                "defaults",
            ),
            Row(
                "the same request, to its first byte",
                first * 1000,
                "ms",
                "the audit record is committed before it",
            ),
        ],
        [
            verdict("CLI export, s", cli, TARGET_SECONDS, higher_is_better=False),
            verdict("API export, s", whole, TARGET_SECONDS, higher_is_better=False),
        ],
    )


SECTIONS = [export_section]
