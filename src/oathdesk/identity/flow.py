"""The authorization code flow (PKCE, state, nonce) through msal, and the checked sign-in.

msal builds the authorization URL (with a fresh state, nonce and PKCE verifier: the "flow", which
the caller keeps server-side until the browser comes back) and redeems the code; oathdesk then
checks the ID token itself (``tokens.check_id_token``). Instance discovery is off so that msal
never calls a host other than the configured authority.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
import warnings
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from oathdesk.identity.discovery import DiscoveryCache
from oathdesk.identity.errors import IdentityUnreachable, SsoRefused
from oathdesk.identity.keys import JwksKeys
from oathdesk.identity.settings import CredentialKind, SsoSettings
from oathdesk.identity.tokens import AppClaims, IdentityClaims, check_access_token, check_id_token
from oathdesk.msal_failures import reaching

TIMEOUT_SECONDS = 30
# An unknown kid refetches the keys at most this often after a fetch (a stream of forged kids
# must not make us hammer Entra); a key Entra just rotated in may wait this long.
KEYS_COOLDOWN_SECONDS = 5.0
# msal adds openid and profile by itself; offline_access (a refresh token) is not needed: a
# session here ends by its own timeouts and the next sign-in goes to Entra again.
_EXCLUDED_SCOPES = ["offline_access"]

# What Entra's `error` parameter means, in words an operator can act on.
_IDP_ERRORS = {
    "access_denied": "you (or Entra) declined the sign-in; try again or ask an admin",
    "consent_required": "an admin must consent to the oathdesk app in Entra first",
    "interaction_required": "Entra needs you to sign in interactively; try again",
    "login_required": "Entra needs you to sign in; try again",
}
_OTHER_SIGN_IN = "Microsoft sign-in refused: this answer belongs to another sign-in; start again"


def nonce_claim(flow: Mapping[str, Any]) -> str:
    """The nonce the ID token must carry: msal sends the SHA-256 of the flow's secret nonce."""
    return hashlib.sha256(str(flow["nonce"]).encode("ascii")).hexdigest()


class Provider:
    """One app registration's sign-in: discovery, keys and msal, reused across requests."""

    def __init__(
        self,
        settings: SsoSettings,
        credential: str,
        *,
        keys_cooldown: float = KEYS_COOLDOWN_SECONDS,
    ) -> None:
        self.settings = settings
        self._credential = credential
        self._discovery = DiscoveryCache(settings)
        self._keys: JwksKeys | None = None
        self._keys_cooldown = keys_cooldown
        self._app: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Provider(tenant={self.settings.tenant!r}, client={self.settings.client_id!r})"

    # -- the flow -------------------------------------------------------------------------------

    def start(
        self, *, state: str | None = None, prompt: str | None = None, max_age: int | None = None
    ) -> dict[str, Any]:
        """A new flow: ``flow["auth_uri"]`` is where the browser goes; keep the rest secret.
        An approval asks for a fresh sign-in (``prompt="login"``, ``max_age``) and marks its
        ``state`` so the shared redirect URL can tell it from a sign-in."""
        # response_mode=query, not msal's recommended form_post: a cross-site POST carries no
        # SameSite cookie, and the cookie is what ties the answer to this browser's flow. The
        # code in the URL is worthless without the PKCE verifier, which never leaves the server.
        with _reaching(self.settings), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*form_post.*")
            flow: dict[str, Any] = self._application().initiate_auth_code_flow(
                scopes=[],
                redirect_uri=self.settings.redirect_url,
                response_mode="query",
                state=state,
                prompt=prompt,
                max_age=max_age,
            )
        return flow

    def finish(
        self, flow: Mapping[str, Any], params: Mapping[str, str], *, now: float | None = None
    ) -> IdentityClaims:
        """Redeem the code the browser brought back and check the ID token."""
        if params.get("error"):
            error = str(params["error"])
            what = _IDP_ERRORS.get(error, f"Entra answered {error[:64]!r}; try again")
            raise SsoRefused("idp_error", f"Microsoft sign-in refused: {what}")
        if params.get("state") != flow.get("state"):
            raise SsoRefused("state", _OTHER_SIGN_IN)
        with _reaching(self.settings):
            try:
                # Without max_age: msal would check auth_time itself and raise the same
                # RuntimeError as for a nonce; the caller checks it (check_recent_sign_in) and
                # says what was wrong.
                redeemed = {name: value for name, value in flow.items() if name != "max_age"}
                result = self._application().acquire_token_by_auth_code_flow(redeemed, dict(params))
            except ValueError:
                raise SsoRefused("state", _OTHER_SIGN_IN) from None
            except RuntimeError:
                # msal's own nonce check; ours below would refuse the same token.
                raise SsoRefused(
                    "nonce", "Microsoft sign-in refused: the ID token belongs to another sign-in"
                ) from None
        raw = result.get("id_token") if isinstance(result, dict) else None
        if not isinstance(raw, str):
            error = str(result.get("error", "no ID token")) if isinstance(result, dict) else ""
            raise SsoRefused(
                "token_endpoint",
                f"Microsoft sign-in refused: Entra did not issue an ID token ({error[:64]}); "
                "check the client secret or certificate (`oathdesk sso configure`)",
            )
        return self.check(raw, expected_nonce=nonce_claim(flow), now=now)

    def check(self, raw: str, *, expected_nonce: str, now: float | None = None) -> IdentityClaims:
        discovery = self._discovery.get()
        return check_id_token(
            raw,
            settings=self.settings,
            keys=self._jwks(discovery.jwks_uri),
            issuer_template=discovery.issuer,
            expected_nonce=expected_nonce,
            now=time.time() if now is None else now,
        )

    def check_access_token(self, raw: str, *, audience: str, now: float | None = None) -> AppClaims:
        """An automation app's access token for the REST API, checked with the same discovery
        document and keys as the sign-ins (msal plays no part: no flow, no credential)."""
        discovery = self._discovery.get()
        return check_access_token(
            raw,
            tenant=self.settings.tenant,
            audience=audience,
            keys=self._jwks(discovery.jwks_uri),
            issuer_template=discovery.issuer,
            now=time.time() if now is None else now,
        )

    # -- parts ----------------------------------------------------------------------------------

    def _jwks(self, uri: str) -> JwksKeys:
        with self._lock:
            if self._keys is None or self._keys.jwks_uri != uri:
                self._keys = JwksKeys(
                    uri, ca_bundle=self.settings.ca_bundle, cooldown=self._keys_cooldown
                )
            return self._keys

    def _application(self) -> Any:
        with self._lock:
            if self._app is None:
                self._app = self._new_application()
            return self._app

    def _new_application(self) -> Any:
        import msal

        from oathdesk.graph.auth import split_certificate_pem

        settings = self.settings
        credential: Any = self._credential
        if settings.credential is CredentialKind.CERTIFICATE:
            key_pem, cert_pem = split_certificate_pem(self._credential)
            credential = {"private_key": key_pem, "public_certificate": cert_pem}
        return msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=credential,
            authority=settings.authority,
            validate_authority=False,
            instance_discovery=False,
            exclude_scopes=_EXCLUDED_SCOPES,
            http_client=_http_session(settings),
        )


def _http_session(settings: SsoSettings) -> Any:
    """A requests session that really uses the configured CA bundle (REQUESTS_CA_BUNDLE would
    otherwise override a session's ``verify``): every request passes it explicitly."""
    import requests

    session = requests.Session()
    session.request = functools.partial(  # type: ignore[method-assign]
        session.request, timeout=TIMEOUT_SECONDS, verify=settings.verify
    )
    return session


def _reaching(settings: SsoSettings) -> AbstractContextManager[None]:
    return reaching(
        settings.authority_host,
        IdentityUnreachable,
        tls_advice="check the CA bundle",
        network_advice="check the network and try again",
    )
