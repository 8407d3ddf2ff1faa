"""The tenant's signing keys (its JWKS), through PyJWT's ``PyJWKClient``.

The client caches the key set and, when a token names a ``kid`` it has not seen, fetches the set
again once (Microsoft rotates its keys without notice); a ``kid`` still unknown after that is a
refusal, not an error of ours.
"""

from __future__ import annotations

import ssl
from typing import Any

import jwt

from oathdesk.identity.errors import IdentityUnreachable, SsoRefused

KEYS_CACHE_SECONDS = 3600


class JwksKeys:
    def __init__(
        self, jwks_uri: str, *, ca_bundle: str | None = None, cooldown: float = 5.0
    ) -> None:
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        self.jwks_uri = jwks_uri
        self._client = jwt.PyJWKClient(
            jwks_uri,
            cache_keys=True,
            lifespan=KEYS_CACHE_SECONDS,
            ssl_context=context,
            timeout=15,
            # A refetch for an unknown kid may come at most this often: a stream of forged
            # kids must not make us hammer the identity platform.
            cooldown_duration=cooldown,
        )

    def key_for(self, kid: str) -> Any:
        try:
            return self._client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError:
            raise IdentityUnreachable(
                "cannot read the identity platform's signing keys; check the network and try again"
            ) from None
        except jwt.PyJWKClientError:
            raise SsoRefused(
                "unknown_key",
                "Microsoft sign-in refused: the ID token was signed with a key the tenant does "
                "not publish; try again, and tell an admin if it persists",
            ) from None
