"""`oathdesk serve`: the web console and REST API on uvicorn.

On a fresh machine it makes the vault first (exactly as `oathdesk init` does), and while the
vault has no operator it prints a one-time link that creates the first admin. The link is a
bearer: it is printed only here, on the server's own terminal, works once, and expires.

``--workers N`` serves from N processes on the one listening socket (uvicorn's supervisor, as
gunicorn does for WSGI apps), so a reveal's Python work uses every core. The parent initialises
the vault and prints the link once, before any worker starts; the workers share everything
through the vault (sessions, limits, the audit chain: each write is one transaction).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from datetime import timedelta
from typing import Any

import click

from oathdesk.cli.vault_context import local_actor, location, vault_option
from oathdesk.errors import InvalidInput, OathdeskError


class PortInUse(OathdeskError):
    code = "port_in_use"
    exit_code = 1


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind before printing the URL, so a busy port is one clear line, not a log message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # without it Nagle holds a response's second write for the client's delayed ACK (40 ms per
    # request on a keep-alive connection, e.g. behind a proxy or from an API client).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    tokens masked: see ``oathdesk.web.security``) to standard error."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {
                "format": "%(asctime)s %(levelname)s %(message)s",
                "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            }
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
) -> None:
    """Run the web console and the REST API (initialises the vault on first run)."""
    from oathdesk.vault import db
    from oathdesk.vault.config import load_master_key
    from oathdesk.vault.vault import Vault

    if not 0 < port < 65536:
        raise InvalidInput("--port must be between 1 and 65535")
    proxies = frozenset(_proxy_address(text) for text in trusted_proxies)
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
    )
    sock = _listening_socket(host, port)
    if not secure_cookies and not _is_loopback(host):
        click.echo(
            f"warning: listening on {host} over plain HTTP; put a TLS proxy in front and pass "
            "--secure-cookies (see docs/web-deploy.md)",
            err=True,
        )
    try:
        if workers == 1:
            _run(config, sock, _base_url(host, port))
        else:
            _run_workers(config, sock, _base_url(host, port), workers)
    finally:
        sock.close()


def _announce(config: Any, vault: Any, base_url: str) -> None:
    """The URL, and the one-time set-up link while the vault has no operator."""
    from oathdesk.vault.console import create_setup_token, has_operators

    click.echo(f"oathdesk console: {base_url}/  (vault: {config.location.display})")
    if not has_operators(vault):
        token = create_setup_token(vault, local_actor(), lifetime=config.setup_link_lifetime)
        minutes = int(config.setup_link_lifetime / timedelta(minutes=1))
        click.echo(
            "no operator yet: create the first admin with this one-time link "
            f"(works once, expires in {minutes} minutes; keep it to yourself):"
        )
        click.echo(f"  {base_url}/setup/{token}")


def _run(config: Any, sock: socket.socket, base_url: str) -> None:
    import uvicorn

    from oathdesk.web.app import create_app

    app = create_app(config)
    _announce(config, app.state.vault, base_url)
    # On Ctrl-C uvicorn shuts down cleanly, then re-raises the signal for us; one that comes
    # before uvicorn has taken over the signals stops us just as cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options()))
        click.echo("press Ctrl-C to stop")
        sys.stdout.flush()
        server.run(sockets=[sock])
    click.echo("oathdesk console stopped")


class AppFactory:
    """Builds the app inside a worker process. uvicorn starts workers with ``spawn`` and hands
    them this object through a pipe (pickled with the master key: never a file, an argument or
    the environment), so each worker opens the vault itself: connections are not shared."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def __repr__(self) -> str:
        return "AppFactory(<config hidden>)"

    def __call__(self) -> Any:
        from oathdesk.web.app import create_app

        return create_app(self.config)


def _run_workers(config: Any, sock: socket.socket, base_url: str, workers: int) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from oathdesk.vault.vault import Vault

    vault = Vault.open(config.location, config.master_key)
    try:
        _announce(config, vault, base_url)
    finally:
        vault.close()
    factory = AppFactory(config)
    settings = uvicorn.Config(factory, factory=True, workers=workers, **uvicorn_options())
    click.echo(f"serving from {workers} worker processes")
    click.echo("press Ctrl-C to stop")
    sys.stdout.flush()
    # The supervisor turns Ctrl-C and SIGTERM into a clean stop of every worker.
    Multiprocess(settings, sockets=[sock]).run()
    click.echo("oathdesk console stopped")
