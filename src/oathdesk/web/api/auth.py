"""Who is calling: ``Authorization: Bearer odk_...`` (an API key, acting as its operator) or
``Authorization: Bearer eyJ...`` (an Entra access token of an automation app, acting as
``app:<its application id>``; docs/api.md). Never a credential in the URL.

The two are told apart by their form before anything is looked up: an API key starts with
``odk_`` and has no dot; a JWT is three dot-separated base64url parts. The API-key path is the
one the reveal benchmark measures, so it stays first and unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from oathdesk.services.alerts import AlertSink
from oathdesk.services.reveal_queue import Reveals
from oathdesk.vault.api_keys import PREFIX, REFUSAL, ApiKeyRefused, ApiKeyStore, key_shape
from oathdesk.vault.models import Actor
from oathdesk.vault.vault import Vault

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="odk_<id>_<secret> or an Entra access token (JWT)",
    description="An API key from `oathdesk operator api-key create` (it acts as its operator), "
    "or an Entra v2.0 access token of an app with an oathdesk app role (docs/sso.md).",
)
_KEY_START = f"{PREFIX}_"


def is_entra_token(presented: str) -> bool:
    """A JWT (header.payload.signature; the header's JSON starts ``{"`` = ``eyJ``), not a key."""
    return not presented.startswith(_KEY_START) and (
        presented.startswith("eyJ") and presented.count(".") == 2
    )


def entra_actor(request: Request, vault: Vault, presented: str) -> Actor:
    """The app an Entra access token names (it may fetch the tenant's keys: call it in a
    worker thread). Its throttle and ``/me`` key id is ``app:<azp>``."""
    from oathdesk.services.sso import authenticate_app

    actor, _claims = authenticate_app(vault, presented)
    request.state.api_key_id = actor.name
    return actor


@dataclass(frozen=True)
class Presented:
    """The credential of a reveal: an API key, checked later in the reveal's own transaction,
    or an app already checked (an Entra access token), with its throttle key."""

    api_key: str | None = field(default=None, repr=False)
    actor: Actor | None = None
    key_id: str | None = None

    def checked(self, vault: Vault) -> tuple[Actor, str]:
        """Who calls and the throttle key, checking an API key now."""
        if self.actor is not None and self.key_id is not None:
            return self.actor, self.key_id
        return ApiKeyStore(vault).authenticate(self.api_key or "")


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
    if is_entra_token(credentials.credentials):
        return entra_actor(request, vault, credentials.credentials)
    actor, key_id = ApiKeyStore(vault).authenticate(credentials.credentials)
    request.state.api_key_id = key_id
    return actor


async def api_key_presented(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    vault: Annotated[Vault, Depends(api_vault)],
) -> Presented:
    """The key presented, unchecked but for its form (401 ``unauthorized`` for a missing or
    malformed one, before the request's body is looked at): for a route that checks the key
    in its own transaction (a reveal). An Entra access token is checked here, whole."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiKeyRefused(REFUSAL)
    presented = credentials.credentials
    if is_entra_token(presented):
        actor = await run_in_threadpool(entra_actor, request, vault, presented)
        return Presented(actor=actor, key_id=actor.name)
    key_shape(presented)
    return Presented(api_key=presented)


ApiActor = Annotated[Actor, Depends(api_actor)]
ApiKeyPresented = Annotated[Presented, Depends(api_key_presented)]
VaultDep = Annotated[Vault, Depends(api_vault)]
AlertsDep = Annotated[AlertSink, Depends(api_alerts)]
RevealsDep = Annotated[Reveals, Depends(api_reveal_queue)]
