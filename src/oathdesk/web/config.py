"""The console's configuration: where the vault is, its key, and the security knobs.

Built by ``oathdesk serve`` from its options and by tests directly; nothing here reads the
environment, so two apps with different settings can run in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from oathdesk.services.alerts import AlertSettings
from oathdesk.services.reveal_throttle import DEFAULT_REVEALS_PER_MINUTE
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey


@dataclass(frozen=True)
class WebConfig:
    location: VaultLocation
    master_key: MasterKey = field(repr=False)
    # Mark the session cookie Secure (and use the __Host- prefix, send HSTS). Set it when the
    # console is reached over HTTPS, usually through a TLS-terminating proxy.
    secure_cookies: bool = False
    # Proxies whose X-Forwarded-Proto / X-Forwarded-For are believed (exact client addresses).
    trusted_proxies: frozenset[str] = frozenset()
    session_idle: timedelta = timedelta(minutes=15)
    session_lifetime: timedelta = timedelta(hours=10)
    # Sign-in rate limit: failures counted over the window, per client address and per name.
    signin_window: timedelta = timedelta(minutes=15)
    signin_failures_per_ip: int = 20
    signin_failures_per_name: int = 10
    setup_link_lifetime: timedelta = timedelta(minutes=30)
    # Threads that run the requests' blocking work (vault reads and writes) in one process.
    # Fewer threads contend less for Python's GIL; more keep serving while some wait on the
    # database. None: anyio's default (40).
    request_threads: int | None = None
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # Reveals through the REST API per key and minute (the vault's 24-hour limits apply too).
    api_reveals_per_minute: int = DEFAULT_REVEALS_PER_MINUTE
    # Where the console's import jobs keep their state (web/import_jobs.py): a server's worker
    # processes share one. None: a private directory of this app's own, removed when it stops.
    import_jobs_dir: Path | None = None
