"""Who is calling: ``Authorization: Bearer odk_...`` (never a key in the URL), and the per-key
throttle on reveals (the vault's own 24-hour per-operator and per-user limits apply as well)."""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oathdesk.services.alerts import AlertSink
from oathdesk.vault.api_keys import REFUSAL, ApiKeyRefused, ApiKeyStore
from oathdesk.vault.models import Actor
from oathdesk.vault.vault import Vault
from oathdesk.web.api.errors import ApiError

REVEALS_PER_MINUTE_ENV = "OATHDESK_API_REVEALS_PER_MINUTE"
DEFAULT_REVEALS_PER_MINUTE = 10

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


ApiActor = Annotated[Actor, Depends(api_actor)]
VaultDep = Annotated[Vault, Depends(api_vault)]
AlertsDep = Annotated[AlertSink, Depends(api_alerts)]


class RevealThrottle:
    """At most ``per_minute`` reveals per API key in any sliding minute, in this process."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def take(self, key_id: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent.setdefault(key_id, deque())
            while recent and moment - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self.per_minute:
                wait = max(1, math.ceil(60 - (moment - recent[0])))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"this API key may reveal {self.per_minute} codes a minute; "
                    f"try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            recent.append(moment)


def _configured_rate() -> int:
    text = os.environ.get(REVEALS_PER_MINUTE_ENV, "")
    try:
        return max(1, int(text)) if text else DEFAULT_REVEALS_PER_MINUTE
    except ValueError:
        return DEFAULT_REVEALS_PER_MINUTE


_THROTTLE_LOCK = threading.Lock()


async def reveal_throttle(request: Request) -> RevealThrottle:
    """The application's throttle (one per app; $OATHDESK_API_REVEALS_PER_MINUTE, default 10)."""
    state = request.app.state
    with _THROTTLE_LOCK:
        throttle = getattr(state, "api_reveal_throttle", None)
        if throttle is None:
            throttle = RevealThrottle(_configured_rate())
            state.api_reveal_throttle = throttle
    assert isinstance(throttle, RevealThrottle)
    return throttle
