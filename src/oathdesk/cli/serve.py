"""`oathdesk serve`: the web console and REST API on uvicorn.

On a fresh machine it makes the vault first (exactly as `oathdesk init` does), and while the
vault has no operator it prints a one-time link that creates the first admin. The link is a
bearer: it is printed only here, on the server's own terminal, works once, and expires.

``--workers N`` serves from N processes (as gunicorn does for WSGI apps), so a reveal's Python
work uses every core; each has its own socket on the port (SO_REUSEPORT), so the kernel spreads
connections evenly. The parent initialises the vault and prints the link once, before any worker
starts; the workers share everything through the vault (sessions, limits, the audit chain: each
write is one transaction), and the console's import jobs through a private directory the parent
makes and removes. Their reveals go to one more process, the vault writer, which runs
them in batches, a transaction each (services/reveal_queue.py); it stops when the workers have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from oathdesk.cli.vault_context import local_actor, location, vault_option
from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.platform_io import SHARES_PORT, parent_sentinel, when_parent_exits


class PortInUse(OathdeskError):
    code = "port_in_use"
    exit_code = 1


def _listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind before printing the URL, so a busy port is one clear line, not a log message.

    ``reuse_port``: one of several sockets on the same port, one per worker process; the kernel
    spreads new connections over them evenly. (Workers sharing one socket do not share the
    work: the first to wake accepts every waiting connection, and keep-alive keeps them.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # without it Nagle holds a response's second write for the client's delayed ACK (40 ms per
    # request on a keep-alive connection, e.g. behind a proxy or from an API client).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise PortInUse(
            f"cannot listen on {host} port {port} ({error.strerror or 'refused'}); "
            "pass another --port or stop what uses it"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _proxy_address(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise InvalidInput(
            f"--trusted-proxy takes the proxy's IP address (e.g. 127.0.0.1), not {text!r}"
        ) from None


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 (display only)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def log_config() -> dict[str, Any]:
    """uvicorn's own messages at warning level; our access log (no query strings, set-up
    tokens masked: see ``oathdesk.web.security``) to standard error. Every handler formats with
    ``SafeFormatter``: a request's path or headers, quoted in any record (ours, uvicorn's, a
    library's through ``guard_unhandled``'s last resort, a traceback), cannot forge a line or
    reach the terminal as control characters."""
    from oathdesk.logsafe import DATE_FORMAT, LINE_FORMAT, SafeFormatter

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"()": SafeFormatter, "format": LINE_FORMAT, "datefmt": DATE_FORMAT}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "oathdesk": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


def uvicorn_options() -> dict[str, Any]:
    """How uvicorn runs the console (tests serve the app with the same options)."""
    return {
        "log_config": log_config(),
        "access_log": False,  # ours instead: no query strings, set-up tokens masked
        "proxy_headers": False,  # oathdesk.web.security believes only --trusted-proxy
        "server_header": False,
        "lifespan": "on",
    }


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port.")
@vault_option
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Served over HTTPS (e.g. behind a TLS proxy): Secure __Host- cookie and HSTS.",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="IP",
    help="Believe X-Forwarded-Proto/-For from this proxy address (repeatable).",
)
@click.option(
    "--session-idle",
    default=15,
    show_default=True,
    type=click.IntRange(1, 24 * 60),
    metavar="MINUTES",
    help="Sign an operator out after this much inactivity.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (e.g. one per CPU core); all share the vault.",
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 200),
    help="Request threads per worker (default 40). Fewer contend less for Python's GIL: with a "
    "SQLite vault, one thread per worker and a worker per core serve the most requests.",
)
@click.option(
    "--housekeeping-every",
    "housekeeping_every",
    default="1h",
    show_default=True,
    envvar="OATHDESK_HOUSEKEEPING_EVERY",
    metavar="INTERVAL",
    help="Run housekeeping (Entra sync, purge --due, undelivered warning, audit check) this "
    "often, e.g. 15m, 1h, 1d; 0 or off: never (docs/housekeeping.md). "
    "Env: OATHDESK_HOUSEKEEPING_EVERY.",
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    host: str,
    port: int,
    vault_path: str | None,
    secure_cookies: bool,
    trusted_proxies: tuple[str, ...],
    session_idle: int,
    workers: int,
    threads: int | None,
    housekeeping_every: str,
) -> None:
    """Run the web console and the REST API (initialises the vault on first run)."""
    from oathdesk.vault import db
    from oathdesk.vault.config import load_master_key
    from oathdesk.vault.vault import Vault

    if not 0 < port < 65536:
        raise InvalidInput("--port must be between 1 and 65535")
    if workers > 1 and not SHARES_PORT:
        raise InvalidInput(
            "--workers above 1 needs processes sharing a port (SO_REUSEPORT: Linux, macOS, BSD), "
            "which this system lacks; serve with one worker (drop --workers)"
        )
    proxies = frozenset(_proxy_address(text) for text in trusted_proxies)
    from oathdesk.services.housekeeping import parse_interval

    housekeeping = parse_interval(housekeeping_every)
    reveals_per_minute = _reveals_per_minute()
    from oathdesk.services.alerts import alert_settings

    alerts = alert_settings(os.environ)  # a mistake in them: one line, before anything is made
    where = location(vault_path)
    revision, created = Vault.inspect(where)
    if not created or revision != db.SCHEMA_HEAD:
        from oathdesk.cli.vault_admin import init_command

        ctx.invoke(init_command, vault_path=vault_path, passphrase=False)
    master_key = load_master_key(where)

    from oathdesk.web.config import WebConfig

    config = WebConfig(
        where,
        master_key,
        secure_cookies=secure_cookies,
        trusted_proxies=proxies,
        session_idle=timedelta(minutes=session_idle),
        request_threads=threads,
        api_reveals_per_minute=reveals_per_minute,
        alerts=alerts,
    )
    # With workers, one socket each; the first bind tells whether the port is free.
    socks = [_listening_socket(host, port, reuse_port=workers > 1) for _ in range(workers)]
    if not secure_cookies and not _is_loopback(host):
        click.echo(
            f"warning: listening on {host} over plain HTTP; put a TLS proxy in front and pass "
            "--secure-cookies (see docs/web-deploy.md)",
            err=True,
        )
    try:
        if workers == 1:
            _run(config, socks[0], _base_url(host, port), housekeeping)
        else:
            _run_workers(config, socks, _base_url(host, port), housekeeping)
    finally:
        for sock in socks:
            sock.close()


def _announce(config: Any, vault: Any, base_url: str) -> None:
    """The URL, and the one-time set-up link while the vault has no operator."""
    from oathdesk.vault.console import create_setup_token, has_operators

    click.echo(f"oathdesk console: {base_url}/  (vault: {config.location.display})")
    # Said once, so that an admin who configured nothing knows where a limit's alert goes.
    click.echo(f"alerts: {config.alerts.describe()}")
    if not has_operators(vault):
        token = create_setup_token(vault, local_actor(), lifetime=config.setup_link_lifetime)
        minutes = int(config.setup_link_lifetime / timedelta(minutes=1))
        click.echo(
            "no operator yet: create the first admin with this one-time link "
            f"(works once, expires in {minutes} minutes; keep it to yourself):"
        )
        click.echo(f"  {base_url}/setup/{token}")


@contextlib.contextmanager
def _housekeeping(config: Any, interval: timedelta | None) -> Iterator[None]:
    """Housekeeping on its schedule, in a thread of this process only (never in each worker):
    its own vault connection, its alerts through the server's sinks, its lines in the server's
    log. Several servers on one vault each run this; the vault's lease and the cycle records
    let one of them run each cycle (services/housekeeping.py)."""
    import logging.config

    from oathdesk.services.alerts import AlertSink
    from oathdesk.services.housekeeping import Schedule, describe_interval
    from oathdesk.vault.vault import Vault

    click.echo(f"housekeeping: {describe_interval(interval)}")
    if interval is None:
        yield
        return
    logging.config.dictConfig(log_config())  # the same escaping formatter as the workers'
    vault = Vault.open(config.location, config.master_key)
    schedule = Schedule(vault, AlertSink(config.alerts, vault), interval)
    schedule.start()
    try:
        yield
    finally:
        schedule.stop()
        vault.close()


def _run(
    config: Any, sock: socket.socket, base_url: str, housekeeping: timedelta | None = None
) -> None:
    import uvicorn

    from oathdesk.logsafe import guard_unhandled
    from oathdesk.web.app import create_app

    guard_unhandled()  # a thread that dies, a library's stray warning: escaped lines of our log
    app = create_app(config)
    _announce(config, app.state.vault, base_url)
    server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options()))
    # From here a Ctrl-C only asks the server to stop. Raised as KeyboardInterrupt it could land
    # anywhere: inside a lock the housekeeping thread then waits on for ever, or between
    # uvicorn's coroutine and its loop (a RuntimeWarning on the terminal). uvicorn takes the
    # signals over while it runs and gives them back to this handler when it stops.
    with stop_signals_ask(server), _housekeeping(config, housekeeping):
        if not server.should_exit:
            click.echo("press Ctrl-C to stop")
            sys.stdout.flush()
            server.run(sockets=[sock])
    click.echo("oathdesk console stopped")


@contextlib.contextmanager
def stop_signals_ask(server: Any) -> Iterator[None]:
    """SIGINT and SIGTERM set ``server.should_exit`` instead of raising, until the block ends."""
    import signal

    def ask(_number: int, _frame: object) -> None:
        server.should_exit = True

    numbers = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, ask) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class WorkerFailed(OathdeskError):
    code = "worker_failed"
    exit_code = 1


REVEALS_PER_MINUTE_ENV = "OATHDESK_API_REVEALS_PER_MINUTE"


def _reveals_per_minute() -> int:
    """The REST API's per-key throttle on reveals, from $OATHDESK_API_REVEALS_PER_MINUTE."""
    from oathdesk.services.reveal_throttle import DEFAULT_REVEALS_PER_MINUTE

    text = os.environ.get(REVEALS_PER_MINUTE_ENV, "").strip()
    if not text:
        return DEFAULT_REVEALS_PER_MINUTE
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(
            f"{REVEALS_PER_MINUTE_ENV} must be a whole number of reveals a minute, 1 or more "
            f"(default {DEFAULT_REVEALS_PER_MINUTE}); correct or unset it"
        )
    return int(text)


def _serve_worker(config: Any, sock: socket.socket, writer: Any) -> None:
    """One worker process: its own app (its own vault connections) on its own socket; its
    reveals go to the vault writer process through ``writer``, its end of a pipe."""
    import uvicorn

    from oathdesk.logsafe import guard_unhandled
    from oathdesk.services.reveal_queue import RemoteRevealQueue
    from oathdesk.web.app import create_app

    guard_unhandled()
    with contextlib.suppress(KeyboardInterrupt):
        app = create_app(config, reveals=RemoteRevealQueue(writer))
        server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options()))
        when_parent_exits(lambda: _orphaned(server))
        server.run(sockets=[sock])


ORPHAN_GRACE_SECONDS = 5.0  # for the requests in flight when the parent died


def _orphaned(server: Any) -> None:
    """The parent is gone (killed outright, or it would have stopped us): stop as on Ctrl-C,
    closing the socket at once, and leave for good if requests in flight still hold us after
    ORPHAN_GRACE_SECONDS. Nobody is left to stop this worker or to restart the server, and a
    worker answering on with no parent would keep the port from a restarted server."""
    import threading

    server.should_exit = True
    leave = threading.Timer(ORPHAN_GRACE_SECONDS, os._exit, args=(1,))
    leave.daemon = True  # a worker that stopped in time just ends
    leave.start()


def _serve_vault_writer(config: Any, workers: list[Any]) -> None:
    """The vault writer process: the workers' reveals, in batches, until every worker has
    hung up (Ctrl-C reaches it too, but it finishes what the workers still send)."""
    import logging.config
    import signal

    from oathdesk.logsafe import guard_unhandled
    from oathdesk.services.reveal_queue import serve_workers
    from oathdesk.services.reveal_throttle import KeyThrottle
    from oathdesk.vault.vault import Vault

    # The writer's own failures (a reveal batch that failed) go to the server's log, formatted
    # like the workers' lines, not through Python's bare last-resort handler.
    logging.config.dictConfig(log_config())
    guard_unhandled()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    vault = Vault.open(config.location, config.master_key)
    try:
        serve_workers(
            vault, workers, KeyThrottle(config.api_reveals_per_minute), parent=parent_sentinel()
        )
    finally:
        vault.close()


def _stop(processes: list[Any], *, after: float = 0) -> None:
    """Stop ``processes``: wait up to ``after`` seconds for them to end by themselves, then ask
    (SIGTERM) and, 30 seconds later, insist."""
    import signal

    for process in processes:
        if process.pid is not None:
            process.join(after)
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        if process.pid is not None:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()


def _run_workers(
    config: Any,
    socks: list[socket.socket],
    base_url: str,
    housekeeping: timedelta | None = None,
) -> None:
    """Start a worker per socket and wait; Ctrl-C or SIGTERM stops them all cleanly. A worker
    that dies stops the others too (and the command fails), for the service manager to restart
    the whole server rather than run on with fewer workers than asked for."""
    import multiprocessing
    import signal
    import threading

    from oathdesk.vault.vault import Vault

    vault = Vault.open(config.location, config.master_key)
    try:
        _announce(config, vault, base_url)
    finally:
        vault.close()
    # The console's import jobs, seen by every worker (a progress poll may reach any of them).
    jobs_dir = Path(tempfile.mkdtemp(prefix="oathdesk-imports-"))
    config = dataclasses.replace(config, import_jobs_dir=jobs_dir)
    # spawn: a fresh interpreter per worker, nothing inherited from this process but the socket
    # and the configuration, which goes through a pipe (the master key: never a file, an
    # argument or the environment).
    context = multiprocessing.get_context("spawn")
    # A pipe per worker to the vault writer, which runs every worker's reveals.
    pipes = [context.Pipe(duplex=True) for _ in socks]
    writer = context.Process(
        target=_serve_vault_writer,
        args=(config, [writer_end for writer_end, _ in pipes]),
        name="oathdesk-vault-writer",
    )
    workers = [
        context.Process(
            target=_serve_worker, args=(config, sock, worker_end), name=f"oathdesk-worker-{n}"
        )
        for n, (sock, (_, worker_end)) in enumerate(zip(socks, pipes, strict=True), 1)
    ]
    processes = [writer, *workers]
    stop = threading.Event()
    previous = {
        number: signal.signal(number, lambda _number, _frame: stop.set())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        for process in processes:
            process.start()
        # The children have their ends now; ours would keep the writer from seeing a worker
        # hang up.
        for writer_end, worker_end in pipes:
            writer_end.close()
            worker_end.close()
        click.echo(f"serving from {len(workers)} worker processes")
        with _housekeeping(config, housekeeping):  # here in the parent, not in every worker
            click.echo("press Ctrl-C to stop")
            sys.stdout.flush()
            failed = None
            while not stop.wait(0.2):
                failed = next((p for p in processes if p.exitcode is not None), None)
                if failed is not None:
                    # Ctrl-C reaches the workers too; one may be quicker to stop than we are
                    # to hear of it.
                    if stop.wait(0.5):
                        failed = None
                    break
    finally:
        # The workers first: the writer answers what they still send, then sees them hang up
        # and stops by itself.
        _stop(workers)
        _stop([writer], after=30)
        for number, handler in previous.items():
            signal.signal(number, handler)
        shutil.rmtree(jobs_dir, ignore_errors=True)
    if failed is not None:
        raise WorkerFailed(
            f"{failed.name} stopped unexpectedly (exit code {failed.exitcode}); the "
            "server stopped too; see the messages above, then start it again"
        )
    click.echo("oathdesk console stopped")
