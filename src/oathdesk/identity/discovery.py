"""The tenant's OpenID configuration (``/.well-known/openid-configuration``), read and cached.

Read over TLS from the configured authority, it says where the keys are and which issuer the
tenant's ID tokens carry. Microsoft's multi-tenant documents give the issuer as a template
(``https://login.microsoftonline.com/{tenantid}/v2.0``); a tenant's own gives it filled in.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass

from oathdesk.identity.errors import IdentityUnreachable
from oathdesk.identity.settings import SsoSettings

CACHE_SECONDS = 24 * 3600  # the document changes rarely; keys rotate through the JWKS, not here
TIMEOUT_SECONDS = 15
TENANT_TEMPLATE = "{tenantid}"


@dataclass(frozen=True)
class Discovery:
    issuer: str  # possibly the {tenantid} template
    jwks_uri: str
    authorization_endpoint: str
    token_endpoint: str

    def issuer_for(self, tid: str) -> str:
        """The issuer a token of tenant ``tid`` must carry."""
        return self.issuer.replace(TENANT_TEMPLATE, tid)


def discovery_url(settings: SsoSettings) -> str:
    return f"{settings.issuer}/.well-known/openid-configuration"


def fetch_discovery(settings: SsoSettings) -> Discovery:
    # httpx here, not at import: importing it also loads its command line (click, rich), which
    # an adapter must not pull in (tests/test_layering.py).
    import httpx

    url = discovery_url(settings)
    try:
        verify = (
            ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True
        )
        response = httpx.get(url, verify=verify, timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except httpx.HTTPError as error:
        raise IdentityUnreachable(
            f"cannot read the OpenID configuration of {settings.authority_host} "
            f"({type(error).__name__}); check the tenant, --authority-host and the network"
        ) from None
    except ValueError:
        raise IdentityUnreachable(
            f"{settings.authority_host} did not answer with an OpenID configuration; check "
            "--authority-host"
        ) from None
    try:
        found = Discovery(
            issuer=str(document["issuer"]),
            jwks_uri=str(document["jwks_uri"]),
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
        )
    except (KeyError, TypeError):
        raise IdentityUnreachable(
            f"the OpenID configuration of {settings.authority_host} lacks the issuer or the "
            "keys' address; check --authority-host"
        ) from None
    if not found.jwks_uri.startswith("https://"):
        raise IdentityUnreachable("the OpenID configuration names keys that are not https")
    return found


class DiscoveryCache:
    """One document per settings, fetched on first use and again after ``CACHE_SECONDS``."""

    def __init__(self, settings: SsoSettings, *, seconds: float = CACHE_SECONDS) -> None:
        self.settings = settings
        self.seconds = seconds
        self._lock = threading.Lock()
        self._document: Discovery | None = None
        self._fetched = 0.0

    def get(self) -> Discovery:
        with self._lock:
            stale = time.monotonic() - self._fetched > self.seconds
            if self._document is None or stale:
                self._document = fetch_discovery(self.settings)
                self._fetched = time.monotonic()
            return self._document
