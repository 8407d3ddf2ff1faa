"""Issue 6: emergency-code reveals per second through the REST API, each with its audit record,
against privacyIDEA 3.14's ``/validate/check`` on the same machine in the same run.

Every server is a real process on 127.0.0.1 (``oathdesk serve``; privacyIDEA from its own venv
under benchmarks/.peers). The load generator is a small keep-alive HTTP/1.1 client on asyncio
streams in this process (``wrk`` is not a dependency), with a fixed number of connections and a
bounded number of requests. The vault's reveal limits are raised through ``PATCH /settings``
(helpdesks keep them low) and the per-key throttle through its environment variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.harness import Row, Section, verdict
from oathdesk.otp import hotp, step_at
from oathdesk.vault.api_keys import ApiKeyStore
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import Actor, NewToken
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Vault

_T = TypeVar("_T")

OURS = int(os.environ.get("OATHDESK_BENCH_API_REQUESTS", "3000"))
# Fewer for privacyIDEA, which is slower, but of the same order (both runs last seconds).
THEIRS = int(os.environ.get("OATHDESK_BENCH_PI_REQUESTS", "1000"))
WARM_UP = 50  # requests per server before the clock starts, on WARM_CONNECTIONS connections
WARM_CONNECTIONS = 4  # enough for every worker of either server to get some
CONNECTIONS = 16
PEER_WORKERS = 2  # processes on each side: oathdesk serve --workers, gunicorn -w
USERS = 50  # the vault allows at most 1000 reveals per user per day, even raised
PEERS = Path(__file__).resolve().parent / ".peers"
OATHDESK = Path(sys.executable).parent / "oathdesk"
LOCAL = Actor("local:bench", "admin")
# Never used to sign in; it only has to pass the operator password policy (not the name in it).
OPERATOR_PASSWORD = "load-test only, never signed in with"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


@contextlib.contextmanager
def _running(argv: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    try:
        _wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the load generator --------------------------------------------------------------------------


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """Send one request, read its response: (status, whether the server keeps the line)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    keep = not head.startswith(b"HTTP/1.0")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() == b"keep-alive"
    await reader.readexactly(length)
    return status, keep


async def _load(targets: list[tuple[int, list[bytes]]], connections: int) -> tuple[float, int]:
    """Send every request over ``connections`` keep-alive connections spread over the targets
    (a new connection when a server closes one); returns (seconds, answers other than 200)."""
    failures = 0

    async def worker(port: int, requests: list[bytes]) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in requests:
            status, keep = await _exchange(reader, writer, request)
            failures += status != 200
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    jobs = []
    for port, requests in targets:
        per = max(1, connections // len(targets))
        jobs += [worker(port, requests[i::per]) for i in range(per)]
    start = time.perf_counter()
    await asyncio.gather(*jobs)
    return time.perf_counter() - start, failures


def _drive(job: Coroutine[Any, Any, _T]) -> _T:
    """Run the load generator on uvloop when it is there (the same for every server measured),
    so the generator takes less of the two cores the servers share with it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(job)
    return uvloop.run(job)


def _post(path: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


# -- oathdesk ------------------------------------------------------------------------------------


def _prepare_vault(location: VaultLocation) -> tuple[str, str]:
    """A vault with USERS users, each with a token, and API keys of a helpdesk operator and
    an admin."""
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, LOCAL)
    try:
        OperatorDirectory(vault).add(LOCAL, "bench", "helpdesk", OPERATOR_PASSWORD)
        vault.add_tokens(
            LOCAL,
            [
                NewToken(
                    f"BENCH{i:05d}",
                    "Token2",
                    "C202",
                    TokenKind.CLASSIC,
                    os.urandom(20),
                    upn=f"user{i}@contoso.com",
                )
                for i in range(USERS)
            ],
            source="bench",
            create_missing_users=True,
            # A callback goes to the number on file: a user without one cannot be verified so.
            people={
                f"user{i}@contoso.com": (f"User {i}", f"+4144555{i:04d}") for i in range(USERS)
            },
        )
        OperatorDirectory(vault).add(LOCAL, "boss", "admin", OPERATOR_PASSWORD)
        store = ApiKeyStore(vault)
        return (
            store.create(LOCAL, "bench", "bench").secret_text,
            store.create(LOCAL, "boss", "bench settings").secret_text,
        )
    finally:
        vault.close()


def _raise_limits(port: int, admin_key: str) -> None:
    """The vault's limits go up through the API's settings, as an admin would do it."""
    import httpx

    response = httpx.patch(
        f"http://127.0.0.1:{port}/api/v1/settings",
        json={"reveal_limit_per_user": 1000, "reveal_limit_per_operator": 100_000},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    response.raise_for_status()


def _first_reveal(port: int, key: str) -> None:
    """One reveal before the load, so that a refusal is told with its reason."""
    import httpx

    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/reveal",
        json={
            "upn": "user0@contoso.com",
            "method": "callback",
            "ticket": "BENCH-first",
            "channel": "phone",
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"a reveal was refused ({response.status_code}): {response.text}")


def _reveal_requests(key: str, count: int) -> list[bytes]:
    headers = {"Authorization": f"Bearer {key}"}
    return [
        _post(
            "/api/v1/reveal",
            {
                "upn": f"user{i % USERS}@contoso.com",
                "method": "callback",
                "ticket": f"BENCH-{i}",
                "channel": "phone",
            },
            headers,
        )
        for i in range(count)
    ]


def _server_env(location: VaultLocation) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    env["OATHDESK_KEY_FILE"] = str(location.key_file)
    env["OATHDESK_API_REVEALS_PER_MINUTE"] = "1000000"
    if location.sqlite_path is not None:
        env["OATHDESK_VAULT"] = str(location.sqlite_path)
    else:
        env["OATHDESK_DATABASE_URL"] = location.database_url
    return env


def oathdesk_reveals_per_second(
    locations: list[VaultLocation], count: int, *, workers: int = 1, threads: int | None = None
) -> float:
    """Reveals/s through ``len(locations)`` servers (one vault: the same location twice), each
    with ``workers`` processes of ``threads`` request threads (``oathdesk serve``'s options)."""
    key, admin = _prepare_vault(locations[0])
    ports = [_free_port() for _ in locations]
    with contextlib.ExitStack() as stack:
        for location, port in zip(locations, ports, strict=True):
            argv = [str(OATHDESK), "serve", "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--workers", str(workers)]
            argv += ["--threads", str(threads)] if threads else []
            stack.enter_context(_running(argv, _server_env(location), port))
        _raise_limits(ports[0], admin)
        _first_reveal(ports[0], key)
        warming = len(ports) * WARM_UP
        requests = _reveal_requests(key, count + warming)
        warm = [(port, requests[i * WARM_UP : (i + 1) * WARM_UP]) for i, port in enumerate(ports)]
        # connections, caches, the first last-used update (every worker gets some)
        _drive(_load(warm, len(ports) * WARM_CONNECTIONS))
        measured = requests[warming:]
        targets = [(port, measured[i :: len(ports)]) for i, port in enumerate(ports)]
        seconds, failures = _drive(_load(targets, CONNECTIONS))
    if failures:
        raise RuntimeError(f"{failures} of {count} reveals failed")
    return count / seconds


# -- privacyIDEA ---------------------------------------------------------------------------------

PI_CONFIG = """SECRET_KEY = 'benchmark-only'
PI_PEPPER = 'benchmark-only'
SQLALCHEMY_DATABASE_URI = 'sqlite:///{root}/pi.sqlite'
PI_ENCFILE = '{root}/enckey'
PI_AUDIT_KEY_PRIVATE = '{root}/private.pem'
PI_AUDIT_KEY_PUBLIC = '{root}/public.pem'
PI_LOGFILE = '{root}/pi.log'
PI_LOGLEVEL = 30
"""
PI_WSGI = """from privacyidea.app import create_app
application = create_app(config_name="production", config_file="{root}/pi.cfg", silent=True)
"""


def _privacyidea_venv() -> Path | None:
    venv = PEERS / "privacyidea"
    if not (venv / "bin" / "pi-manage").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "privacyidea==3.14"],
            capture_output=True,
            check=False,
        )
        if installed.returncode != 0:
            return None
    if not (venv / "bin" / "gunicorn").exists():
        # privacyIDEA is deployed behind a WSGI server; gunicorn is the one its docs name.
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "gunicorn"],
            capture_output=True,
            check=False,
        )
    return venv


def privacyidea_checks_per_second(count: int, *, threads: int = 1) -> tuple[float, str] | None:
    """/validate/check requests per second against a TOTP token (serial and code); gunicorn's
    sync workers with ``threads=1``, its threaded workers (keep-alive) otherwise."""
    import httpx

    venv = _privacyidea_venv()
    if venv is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="pi-api-bench-"))
    (root / "pi.cfg").write_text(PI_CONFIG.format(root=root))
    (root / "pi_wsgi.py").write_text(PI_WSGI.format(root=root))
    env = {**os.environ, "PRIVACYIDEA_CONFIGFILE": str(root / "pi.cfg")}
    manage = str(venv / "bin" / "pi-manage")
    for step in ("create_enckey", "create_audit_keys", "create_tables"):
        subprocess.run([manage, "setup", step], env=env, capture_output=True, check=True)
    subprocess.run(
        [manage, "admin", "add", "admin", "-p", "benchmark-only"],
        env=env,
        capture_output=True,
        check=True,
    )
    port = _free_port()
    gunicorn = venv / "bin" / "gunicorn"
    if gunicorn.exists():
        how = f"gunicorn, {PEER_WORKERS} sync workers"
        argv = [str(gunicorn), "-w", str(PEER_WORKERS), "-b", f"127.0.0.1:{port}"]
        if threads > 1:
            how = f"gunicorn, {PEER_WORKERS} workers of {threads} threads"
            argv += ["-k", "gthread", "--threads", str(threads)]
        argv += ["--chdir", str(root)]
        argv += ["pi_wsgi:application"]
    else:
        how = "Flask's threaded server"
        argv = [str(venv / "bin" / "flask"), "--app", "pi_wsgi", "run", "-p", str(port)]
        argv += ["--with-threads"]
    secret = os.urandom(20)
    serial = "PIBENCH0001"
    base = f"http://127.0.0.1:{port}"
    with _running(argv, {**env, "PYTHONPATH": str(root)}, port):
        token = httpx.post(
            f"{base}/auth", data={"username": "admin", "password": "benchmark-only"}, timeout=60
        ).json()["result"]["value"]["token"]
        auth = {"Authorization": token}
        httpx.post(
            f"{base}/token/init",
            data={"type": "totp", "otpkey": secret.hex(), "serial": serial, "genkey": "0"},
            headers=auth,
            timeout=60,
        ).raise_for_status()
        # A reused code fails like a wrong one (replay protection), and each failure counts:
        # without this the token would lock after ten and answer early.
        httpx.post(
            f"{base}/token/set",
            data={"serial": serial, "max_failcount": "1000000"},
            headers=auth,
            timeout=60,
        ).raise_for_status()
        code = hotp(secret, step_at(time.time()))
        first = httpx.post(
            f"{base}/validate/check", data={"serial": serial, "pass": code}, timeout=60
        ).json()
        if not first["result"]["value"]:
            raise RuntimeError("privacyIDEA did not accept the token's code")
        requests = [
            _form(
                "/validate/check",
                {"serial": serial, "pass": hotp(secret, step_at(time.time()))},
            )
            for _ in range(count + WARM_UP)
        ]
        _drive(_load([(port, requests[:WARM_UP])], WARM_CONNECTIONS))
        seconds, failures = _drive(_load([(port, requests[WARM_UP:])], CONNECTIONS))
    shutil.rmtree(root, ignore_errors=True)
    if failures:
        raise RuntimeError(f"{failures} of {count} privacyIDEA checks failed")
    return count / seconds, how


def _form(path: str, fields: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    payload = urlencode(fields).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


# -- the section ---------------------------------------------------------------------------------


def _sqlite_location(root: Path) -> VaultLocation:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "vault.sqlite3"
    return VaultLocation(f"sqlite:///{path}", root / "vault.key", path)


def api_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-api-bench-"))
    single = oathdesk_reveals_per_second([_sqlite_location(root / "one")], OURS)
    sqlite = oathdesk_reveals_per_second(
        [_sqlite_location(root / "two")], OURS, workers=PEER_WORKERS, threads=1
    )
    rows = [
        Row(
            f"oathdesk POST /api/v1/reveal, SQLite vault, 1 worker, {OURS:,} requests",
            single,
            "requests/s",
            f"`serve` defaults (one process: the writer is a thread of it); {CONNECTIONS} "
            "connections; key check, limits, decrypt, audit record each, synchronous=FULL",
        ),
        Row(
            f"oathdesk POST /api/v1/reveal, SQLite vault, {PEER_WORKERS} workers, "
            f"{OURS:,} requests",
            sqlite,
            "requests/s",
            f"`serve --workers {PEER_WORKERS} --threads 1`: {PEER_WORKERS} web processes like "
            f"privacyIDEA's {PEER_WORKERS} sync gunicorn workers, plus the vault writer process "
            f"(gunicorn has its master process); {CONNECTIONS} connections",
        ),
    ]
    verdicts: list[str] = []
    postgres = _postgres_pair(OURS)
    if postgres is not None:
        rows.append(
            Row(
                f"oathdesk POST /api/v1/reveal, 2 instances on one PostgreSQL, {OURS:,} requests",
                postgres,
                "requests/s",
                "one vault behind both (test PostgreSQL: fsync off); requests alternate; "
                "each `serve --threads 1`, each with its own writer thread",
            )
        )
    try:
        theirs = privacyidea_checks_per_second(THEIRS)
    except (RuntimeError, OSError, subprocess.CalledProcessError, KeyError, ValueError) as error:
        theirs = None
        print(f"privacyIDEA could not be measured: {type(error).__name__}: {error}")
    if theirs is None:
        rows.append(
            Row("privacyIDEA 3.14 /validate/check", 0, "requests/s", "could not be run here")
        )
    else:
        rate, how = theirs
        rows.append(
            Row(
                f"privacyIDEA 3.14 POST /validate/check, {THEIRS:,} requests",
                rate,
                "requests/s",
                f"{how} (threaded workers measured no faster here), SQLite, TOTP token by serial; "
                f"{CONNECTIONS} connections, reopened as sync workers close them",
            )
        )
        # Like for like: both on SQLite, one machine, the same connections and processes.
        verdicts.append(verdict("oathdesk reveal / privacyIDEA validate-check", sqlite / rate, 20))
    shutil.rmtree(root, ignore_errors=True)
    return Section(
        "Emergency-code reveals through the REST API",
        "Requests per second on loopback, each a complete reveal: API key check, the vault's "
        "24-hour limits counted, the seed decrypted, the codes computed and the audit record "
        "appended, durably (synchronous=FULL), before the answer. The load generator runs in "
        "the benchmark process (on uvloop, for every server alike) and shares the two cores "
        "with the servers. Reveals are group-committed (services/reveal_queue.py): the vault "
        "writer runs whatever reveals wait as one transaction, key checks included, with one "
        "audit append and one fsync, and answers after the commit. With several workers the "
        "writer is a process of its own: SQLite takes one writer at a time, and a writer "
        "thread inside each worker held the write lock longer for sharing its interpreter "
        "with that worker's HTTP work (two such workers served no more than one). Where the "
        "CPU goes now: FastAPI and uvicorn about half of it, the vault writer the rest.",
        rows,
        verdicts,
    )


def _postgres_pair(count: int) -> float | None:
    try:
        from tests.pg import running_postgres
    except ImportError:
        return None
    try:
        with running_postgres() as server:
            url = server.create_database()
            root = Path(tempfile.mkdtemp(prefix="oathdesk-api-bench-pg-"))
            location = VaultLocation(url, root / "vault.key", None)
            try:
                return oathdesk_reveals_per_second([location, location], count, threads=1)
            finally:
                shutil.rmtree(root, ignore_errors=True)
    except (RuntimeError, OSError, subprocess.CalledProcessError):
        return None


SECTIONS = [api_section]
