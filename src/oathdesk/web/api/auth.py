"""Who is calling: ``Authorization: Bearer odk_...`` (never a key in the URL)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oathdesk.services.alerts import AlertSink
from oathdesk.services.reveal_queue import Reveals
from oathdesk.vault.api_keys import REFUSAL, ApiKeyRefused, ApiKeyStore, key_shape
from oathdesk.vault.models import Actor
from oathdesk.vault.vault import Vault

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="odk_<id>_<secret>",
    description="An API key from `oathdesk operator api-key create`; it acts as its operator.",
)


# The application's objects, handed out by ``async`` dependencies: FastAPI runs a plain ``def``
# dependency in the thread pool, a round trip per request that these few attribute reads do not
# need (the API is benchmarked: see docs/benchmarks.md).


async def api_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def api_alerts(request: Request) -> AlertSink:
    alerts: AlertSink = request.app.state.alerts
    return alerts


async def api_reveal_queue(request: Request) -> Reveals:
    reveals: Reveals = request.app.state.reveal_queue
    return reveals


def api_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    vault: Annotated[Vault, Depends(api_vault)],
) -> Actor:
    """The operator the presented key acts for (401 ``unauthorized`` otherwise)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiKeyRefused(REFUSAL)
    actor, key_id = ApiKeyStore(vault).authenticate(credentials.credentials)
    request.state.api_key_id = key_id
    return actor


async def api_key_presented(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The key presented, unchecked but for its form (401 ``unauthorized`` for a missing or
    malformed one, before the request's body is looked at): for a route that checks the key
    in its own transaction (a reveal)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiKeyRefused(REFUSAL)
    key_shape(credentials.credentials)
    return credentials.credentials


ApiActor = Annotated[Actor, Depends(api_actor)]
ApiKeyPresented = Annotated[str, Depends(api_key_presented)]
VaultDep = Annotated[Vault, Depends(api_vault)]
AlertsDep = Annotated[AlertSink, Depends(api_alerts)]
RevealsDep = Annotated[Reveals, Depends(api_reveal_queue)]
