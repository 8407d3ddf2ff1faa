"""An open connection to Entra for one command: the stored settings and credentials, a token
source, a Graph client whose every call lands in the audit chain, and the hardware OATH calls.

Graph calls are made outside any vault transaction; each call's audit record is its own small
transaction (operation, target, HTTP status, result; never a body or a secret).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from oathdesk.graph.api import HardwareOath
from oathdesk.graph.auth import TokenSource
from oathdesk.graph.client import GraphCall, GraphClient
from oathdesk.graph.throttle import RetryPolicy
from oathdesk.services.entra_store import StoredConnection, load_connection, save_token_cache
from oathdesk.vault.models import Actor
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault


class EntraSession:
    """Use as a context manager; a refreshed device-code token cache is saved on the way out."""

    def __init__(
        self,
        vault: Vault,
        actor: Actor,
        connection: StoredConnection,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vault = vault
        self.actor = actor
        self.connection = connection
        self.settings = connection.settings
        self.tokens = TokenSource(
            connection.settings, secret=connection.secret, cache_text=connection.cache_text
        )
        self.client = GraphClient(self.tokens, retry=retry, observer=self._audit, sleep=sleep)
        self.api = HardwareOath(self.client)

    def __repr__(self) -> str:
        return f"EntraSession(tenant={self.settings.tenant_id!r})"

    def _audit(self, call: GraphCall) -> None:
        with self.vault.unit_of_work(self.actor) as work:
            work.audit(
                "graph.call",
                details={
                    "operation": call.operation,
                    "method": call.method,
                    "object": call.target,
                    "status": call.status,
                    "result": call.result,
                },
            )

    def close(self) -> None:
        self.client.close()
        refreshed = self.tokens.cache_text()
        if refreshed is not None:
            save_token_cache(self.vault, self.settings, refreshed)

    def __enter__(self) -> EntraSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(
    vault: Vault,
    actor: Actor,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> EntraSession:
    """A session acting for ``actor``; the entra commands are the admin's (MANAGE_TOKENS)."""
    require(actor, Permission.MANAGE_TOKENS)
    return EntraSession(vault, actor, load_connection(vault), retry=retry, sleep=sleep)
