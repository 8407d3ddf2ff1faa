"""Issue 15: every list call of the REST API and every list page of the console on a big vault
(100,000 users, 100,000 tokens, 1,000,000 audit records), on SQLite and on PostgreSQL, beside
the same call on a vault of 1,000 tokens built the same way.

Each vault is built once per run by benchmarks/big_vault.py (bulk import, executemany / COPY).
A real ``oathdesk serve`` answers for each vault on 127.0.0.1; a keep-alive httpx client per
server times whole requests, one after the other, alternating between the big vault and the
small one so that both see the same load from the rest of the machine: an admin's API key for
the API, a signed-in console session (password and TOTP) for the pages. Every call is warmed
up first (a server's first console /audit view checks the whole chain; later views check only
what is new, as in production), then timed REQUESTS times on each vault or for at most twice
SECONDS_PER_CALL, whichever ends first. Scheduled housekeeping is off in these servers.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

from benchmarks.api_bench import _free_port, _server_env, _wait_for_port
from benchmarks.big_vault import build_big_vault, serial_of, upn_of
from benchmarks.harness import Row, Section, verdict
from oathdesk.otp import hotp, step_at
from oathdesk.seed import parse_seed
from oathdesk.vault.api_keys import ApiKeyStore
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Vault

BIG = {"users": 100_000, "tokens": 100_000, "audit_records": 1_000_000}
SMALL = {"users": 1_000, "tokens": 1_000, "audit_records": 10_000}
REQUESTS = int(os.environ.get("OATHDESK_BENCH_LIST_REQUESTS", "200"))
SECONDS_PER_CALL = float(os.environ.get("OATHDESK_BENCH_LIST_SECONDS", "3"))
WARM_UP = 5
DEEP = 50  # pages followed by cursor before the deep page is timed
MEASURED = 0.01  # share of the tokens with a drift measurement (the drift lists)
P95_MS = 20.0
RATIO = 3.0
OATHDESK = Path(sys.executable).parent / "oathdesk"
LOCAL = Actor("local:bench", "admin")
PASSWORD = "list bench only, never used elsewhere"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Shape:
    users: int
    tokens: int


@dataclass(frozen=True)
class Prepared:
    location: VaultLocation
    api_key: str
    totp_secret: bytes
    shape: Shape


def _prepare(location: VaultLocation, size: dict[str, int]) -> Prepared:
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = build_big_vault(location, key, **size)
    try:
        enrolment = OperatorDirectory(vault).add(LOCAL, "boss", "admin", PASSWORD)
        api_key = ApiKeyStore(vault).create(LOCAL, "boss", "list bench").secret_text
        _measure_some(vault, size["tokens"])
    finally:
        vault.close()
    secret = parse_seed(enrolment.otpauth_uri).secret
    return Prepared(location, api_key, secret, Shape(size["users"], size["tokens"]))


def _measure_some(vault: Vault, count: int) -> None:
    """A drift measurement on every hundredth token, a few on the window's edge."""
    with vault.transaction() as conn:
        for index in range(0, count, int(1 / MEASURED)):
            token = vault.get_token(serial_of(index), conn)
            vault.record_drift(conn, token, 75 if index % 700 == 0 else 5)


# -- one server, its calls ------------------------------------------------------------------


def _api_calls(shape: Shape, client: httpx.Client) -> list[tuple[str, str]]:
    middle = shape.users // 2
    upn, serial = upn_of(middle), serial_of(middle)
    calls = [
        ("GET /tokens", "/api/v1/tokens"),
        ("GET /tokens?state=assigned", "/api/v1/tokens?state=assigned"),
        ("GET /tokens?kind=classic", "/api/v1/tokens?kind=classic"),
        (
            "GET /tokens?state=in_stock&kind=classic (none)",
            "/api/v1/tokens?state=in_stock&kind=classic",
        ),
        ("GET /tokens?upn=", f"/api/v1/tokens?upn={upn}"),
        ("GET /users", "/api/v1/users"),
        ("GET /audit", "/api/v1/audit"),
        ("GET /audit?upn=", f"/api/v1/audit?upn={upn}"),
        ("GET /audit?serial=", f"/api/v1/audit?serial={serial}"),
        ("GET /audit?action=", "/api/v1/audit?action=token.revealed"),
        ("GET /audit?operator=", "/api/v1/audit?operator=helpdesk:hugo"),
        (
            "GET /audit?action=&operator= (a pair no record has)",
            "/api/v1/audit?action=token.revealed&operator=helpdesk:nobody",
        ),
        ("GET /audit?since= (a week ago)", "/api/v1/audit?since=" + _days_ago(7)),
        ("GET /audit?until= (old records)", "/api/v1/audit?until=" + _days_ago(360)),
        (
            "GET /audit?operator=&until= (old records)",
            "/api/v1/audit?operator=helpdesk:hugo&until=" + _days_ago(360),
        ),
        ("GET /drift", "/api/v1/drift"),
        ("GET /operators", "/api/v1/operators"),
        ("GET /operators/boss/keys", "/api/v1/operators/boss/keys"),
    ]
    for name, path in (("tokens", "/api/v1/tokens"), ("audit", "/api/v1/audit")):
        calls.append((f"GET /{name}, page {DEEP + 1} by cursor", _deep(client, path)))
    return calls


def _days_ago(days: int) -> str:
    from oathdesk.vault.models import utc_now

    return (utc_now() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _deep(client: httpx.Client, path: str) -> str:
    """The path of the page DEEP cursors down ``path``."""
    url = path
    for _ in range(DEEP):
        response = client.get(url)
        response.raise_for_status()
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
        url = f"{path}?cursor={cursor}"
    return url


def _console_calls(shape: Shape) -> list[tuple[str, str]]:
    middle = shape.users // 2
    return [
        ("console /", "/"),
        ("console /audit", "/audit"),
        ("console /audit?upn=", f"/audit?upn={upn_of(middle)}"),
        ("console /search?q= (a user)", f"/search?q={upn_of(middle)[:10]}"),
        ("console /search?q= (nothing)", "/search?q=nobody-by-that-name"),
        ("console /drift", "/drift"),
        ("console /users/{upn}", f"/users/{upn_of(middle)}"),
        ("console /tokens/{serial}", f"/tokens/{serial_of(middle)}"),
    ]


def _get(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    took = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")
    return took


def _p95_pair_ms(
    big: tuple[httpx.Client, str], small: tuple[httpx.Client, str]
) -> tuple[float, float]:
    """p95 of the same call on both vaults, their requests alternating, so that both see the
    same load from the rest of the machine (the ratio is what the target is about)."""
    for _ in range(WARM_UP):
        _get(*big)
        _get(*small)
    on_big: list[float] = []
    on_small: list[float] = []
    deadline = time.monotonic() + 2 * SECONDS_PER_CALL
    while len(on_big) < REQUESTS and (len(on_big) < 20 or time.monotonic() < deadline):
        on_big.append(_get(*big))
        on_small.append(_get(*small))
    return (
        statistics.quantiles(on_big, n=20)[-1] * 1000,
        statistics.quantiles(on_small, n=20)[-1] * 1000,
    )


def _sign_in(client: httpx.Client, secret: bytes) -> None:
    form = CSRF_FIELD.search(client.get("/signin").text)
    if form is None:
        raise RuntimeError("the sign-in page has no form")
    code = hotp(secret, step_at(time.time()))
    response = client.post(
        "/signin",
        data={"name": "boss", "password": PASSWORD, "code": code, "csrf_token": form.group(1)},
    )
    if response.status_code != 303:
        raise RuntimeError(f"sign-in refused ({response.status_code})")


@contextlib.contextmanager
def _serving(prepared: Prepared) -> Iterator[str]:
    port = _free_port()
    argv = [str(OATHDESK), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = os.environ.get("OATHDESK_BENCH_LIST_LOG")  # the server's stderr, to look into a failure
    with contextlib.ExitStack() as stack:
        errors = stack.enter_context(Path(log).open("a")) if log else subprocess.DEVNULL
        env = _server_env(prepared.location)
        # The scheduled housekeeping cycle checks the whole chain when the server starts: on
        # 1,000,000 records it would share the server's interpreter with the first calls timed.
        env["OATHDESK_HOUSEKEEPING_EVERY"] = "off"
        server = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=tempfile.gettempdir(),
        )
        try:
            _wait_for_port(port, server)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)


def _progress(name: str, big: float, small: float) -> None:
    print(f"  {name:<40} {big:8.1f} ms p95 {small:8.1f} ms small", file=sys.stderr, flush=True)


def measure(big: Prepared, small: Prepared) -> tuple[dict[str, float], dict[str, float]]:
    """p95 in ms of each call, by name, on the big vault and on the small one."""
    on_big: dict[str, float] = {}
    on_small: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        bases = [stack.enter_context(_serving(prepared)) for prepared in (big, small)]
        apis = [
            stack.enter_context(
                httpx.Client(
                    base_url=base,
                    headers={"Authorization": f"Bearer {prepared.api_key}"},
                    timeout=120,
                )
            )
            for base, prepared in zip(bases, (big, small), strict=True)
        ]
        consoles = [stack.enter_context(httpx.Client(base_url=base, timeout=120)) for base in bases]
        for console, prepared in zip(consoles, (big, small), strict=True):
            _sign_in(console, prepared.totp_secret)
        for clients, calls in (
            (apis, [_api_calls(p.shape, c) for p, c in zip((big, small), apis, strict=True)]),
            (consoles, [_console_calls(p.shape) for p in (big, small)]),
        ):
            for (name, big_path), (_, small_path) in zip(*calls, strict=True):
                on_big[name], on_small[name] = _p95_pair_ms(
                    (clients[0], big_path), (clients[1], small_path)
                )
                _progress(name, on_big[name], on_small[name])
    return on_big, on_small


# -- the sections -----------------------------------------------------------------------------


def _sqlite(root: Path, name: str) -> VaultLocation:
    folder = root / name
    folder.mkdir(parents=True)
    path = folder / "vault.sqlite3"
    return VaultLocation(f"sqlite:///{path}", folder / "vault.key", path)


KNOWN = (
    "Found by this bench and fixed: an audit page filtered by time read every newer record "
    "(0.4 s; now in time order from an (at, seq) index, migration 0014); `serial=` and the "
    "console's token page walked the whole log on PostgreSQL (0.9 s; now a UNION of the "
    "token's records and its import's); the start page read every waiting token for its "
    "late list (0.2 s; index on (state, waiting since), migration 0015); the user page's "
    "events page with a cursor, each UPN and serial from its own index; console search read "
    "every user and token that did not match (0.2-0.3 s; now a trigram index, pg_trgm GIN on "
    "PostgreSQL and FTS5 trigram tables on SQLite, migration 0018); the start page counted "
    "the tokens per state over the whole (state, serial) index on each view (PostgreSQL "
    "62.6 ms, 4.3x the small vault; now the vault's writes keep the figures, migration 0019, "
    "and late tokens are counted up to 1,000). On "
    "PostgreSQL a page cost about as much on the small vault, so what missed 20 ms was per "
    "request, not the vault's size, and is fixed: each read was wrapped in BEGIN and "
    "ROLLBACK and each pooled connection pinged when checked out (three round trips per "
    "connection, five or six connections per console page; reads now run in autocommit and "
    "a closed connection is seen on its socket), and a page's owners and secrets were two IN "
    "lists of 100 parameters that psycopg parsed again on every page (now one look-up with "
    "an array parameter); building 100 tokens by Row attribute took 5 ms on both databases "
    "(now by position, half that). Then the drift pages on PostgreSQL (22.5 ms, 1.9x the small "
    "vault): psycopg prepares a statement run five times, and the generic plan of "
    "``token_id = ANY($1)`` compared every row it scanned with each of the page's keys in "
    "turn (the drift history: 4.8 ms; 0.2 ms with the array written in); the keys are now "
    "joined as a set (``IN (SELECT unnest($1))``). Two filters at once, a pair no row "
    "has, read on SQLite every token of the kind (a state with a kind) or every record of "
    "the action (an action with an operator: the million reveals here); an operator's "
    "records in a time range were read newest first down to the range. Found by tests, now "
    "an index for each, migration 0020. The console's drift page looked at 100 measured tokens "
    "(16.5-21.2 ms on PostgreSQL, twice the tokens of an audit page's records); now 50."
)


def _section(
    database: str, big: dict[str, float], small: dict[str, float], built: float
) -> Section:
    load = os.getloadavg()[0]
    rows: list[Row] = [
        Row("load average (1 min) when the calls were done", load, "", f"{os.cpu_count()} cores")
    ]
    verdicts: list[str] = []
    for name, p95 in big.items():
        ratio = p95 / small[name]
        rows.append(Row(name, p95, "ms p95", f"{small[name]:.1f} ms on 1,000 tokens: {ratio:.1f}x"))
        verdicts.append(verdict(f"{database} {name} p95 ms", p95, P95_MS, higher_is_better=False))
        verdicts.append(
            verdict(f"{database} {name} / 1,000-token vault", ratio, RATIO, higher_is_better=False)
        )
    return Section(
        f"List calls and pages on a big vault, {database}",
        f"p95 of up to {REQUESTS} whole requests (at most {2 * SECONDS_PER_CALL:g} s a call, one "
        "keep-alive httpx client per server, after a warm-up; each request on the big vault "
        "followed by the same on the small one, so both see the same load) to `oathdesk serve` "
        "on 127.0.0.1 with default paging, on a vault of 100,000 users, 100,000 tokens (1% "
        "drift-measured) and 1,000,000 audit records, beside the same call on a vault of 1,000 "
        "users and tokens and 10,000 records. The API as an admin's API key, the console as a "
        "signed-in admin. Both vaults "
        f"built by benchmarks/big_vault.py in {built:.0f} s. " + KNOWN,
        rows,
        verdicts,
    )


def sqlite_section() -> Section:
    root = Path(tempfile.mkdtemp(prefix="oathdesk-list-bench-"))
    try:
        start = time.perf_counter()
        big = _prepare(_sqlite(root, "big"), BIG)
        small = _prepare(_sqlite(root, "small"), SMALL)
        built = time.perf_counter() - start
        return _section("SQLite", *measure(big, small), built)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def postgres_section() -> Section:
    from tests.pg import running_postgres

    root = Path(tempfile.mkdtemp(prefix="oathdesk-list-bench-pg-"))
    try:
        with running_postgres() as server:
            start = time.perf_counter()
            big = _prepare(VaultLocation(server.create_database(), root / "big.key", None), BIG)
            small_url = server.create_database()
            small = _prepare(VaultLocation(small_url, root / "small.key", None), SMALL)
            built = time.perf_counter() - start
            # Fresh statistics, as autovacuum would gather them soon after a bulk load.
            for url in (big.location.database_url, small_url):
                _analyze(url)
            return _section("PostgreSQL", *measure(big, small), built)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _analyze(url: str) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


SECTIONS = [sqlite_section, postgres_section]

if __name__ == "__main__":  # quick look at one database without writing the docs
    chosen = sqlite_section if sys.argv[1:] != ["postgres"] else postgres_section
    made = chosen()
    for row in made.rows:
        print(f"{row.subject:<40} {row.value:8.1f} {row.unit}  {row.note}")
    for line in made.verdicts:
        if line.startswith("MISSED"):
            print(line)
