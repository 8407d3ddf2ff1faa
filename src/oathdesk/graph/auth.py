"""Access tokens from the Microsoft identity platform, through msal.

Three ways in: a client secret or a certificate (app-only, application permissions), or a
device-code sign-in by an admin (delegated permissions, refreshed from msal's token cache). The
authority host is configurable for national clouds and tests; instance discovery is off so that
msal never calls a host other than the configured one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from oathdesk.errors import InvalidInput
from oathdesk.graph.claims import granted_permissions, signed_in_as, token_claims
from oathdesk.graph.errors import GraphError, GraphSignInError, sign_in_error
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.msal_failures import reaching

TIMEOUT_SECONDS = 30


class TokenSource:
    """Gets (and caches, for this process) an access token for Graph.

    ``secret`` is the client secret or the certificate's PEM (private key and certificate);
    ``cache_text`` is msal's serialised token cache of a device-code sign-in.
    """

    def __init__(
        self, settings: GraphSettings, *, secret: str | None = None, cache_text: str | None = None
    ) -> None:
        self.settings = settings
        self._secret = secret
        self._cache_text = cache_text
        self._app: Any = None
        self._cache: Any = None
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"TokenSource(tenant={self.settings.tenant_id!r}, auth={self.settings.auth.value!r})"

    # -- tokens ------------------------------------------------------------------------------

    def token(self, *, fresh: bool = False) -> str:
        if self._token is None or fresh:
            self._token = self._acquire(fresh)
        return self._token

    def claims(self) -> dict[str, Any]:
        return token_claims(self.token())

    def permissions(self) -> frozenset[str]:
        return granted_permissions(self.claims())

    def who(self) -> str:
        return signed_in_as(self.claims(), f"app {self.settings.client_id}")

    def _acquire(self, fresh: bool) -> str:
        settings = self.settings
        if fresh and settings.auth.app_only:
            # msal refuses force_refresh for client credentials: a new application object has
            # an empty in-memory cache, so it asks the identity platform again.
            self._app = None
        app = self._application()
        with _reaching(settings):
            if settings.auth.app_only:
                result = app.acquire_token_for_client(scopes=settings.app_scopes)
            else:
                accounts = app.get_accounts()
                result = (
                    app.acquire_token_silent(
                        settings.delegated_scopes, account=accounts[0], force_refresh=fresh
                    )
                    if accounts
                    else None
                )
                if not result:
                    raise GraphSignInError(
                        "the device-code sign-in has expired; run `oathdesk entra login "
                        "--device-code` again"
                    )
        return self._token_of(result)

    def _token_of(self, result: dict[str, Any]) -> str:
        token = result.get("access_token")
        if not isinstance(token, str):
            raise sign_in_error(result, secrets=[self._secret or ""])
        return token

    # -- device code ---------------------------------------------------------------------------

    def device_code_sign_in(self, show: Callable[[str], None]) -> str:
        """Run a device-code sign-in: ``show`` gets the instruction (URL and user code) for the
        admin; returns the access token once they approved it in a browser."""
        if self.settings.auth is not AuthKind.DEVICE_CODE:
            raise InvalidInput("device-code sign-in needs --device-code")
        app = self._application()
        with _reaching(self.settings):
            flow = app.initiate_device_flow(scopes=self.settings.delegated_scopes)
            if "user_code" not in flow:
                raise sign_in_error(flow)
            show(str(flow.get("message") or _default_instruction(flow)))
            result = app.acquire_token_by_device_flow(flow)
        self._token = self._token_of(result)
        return self._token

    def cache_text(self) -> str | None:
        """msal's token cache when a device-code sign-in changed it (to store, encrypted)."""
        if self._cache is not None and self._cache.has_state_changed:
            return str(self._cache.serialize())
        return None

    # -- msal ----------------------------------------------------------------------------------

    def _application(self) -> Any:
        if self._app is not None:
            return self._app
        import msal

        settings = self.settings
        common: dict[str, Any] = {
            "authority": settings.authority,
            "validate_authority": False,
            "instance_discovery": False,
            "http_client": _http_session(settings),
        }
        if settings.auth is AuthKind.DEVICE_CODE:
            self._cache = msal.SerializableTokenCache()
            if self._cache_text:
                self._cache.deserialize(self._cache_text)
            with _reaching(settings):
                self._app = msal.PublicClientApplication(
                    settings.client_id, token_cache=self._cache, **common
                )
            return self._app
        if not self._secret:
            raise InvalidInput(
                "no client secret or certificate is stored; run `oathdesk entra login`"
            )
        credential: Any = self._secret
        if settings.auth is AuthKind.CERTIFICATE:
            key_pem, cert_pem = split_certificate_pem(self._secret)
            credential = {"private_key": key_pem, "public_certificate": cert_pem}
        with _reaching(settings):
            self._app = msal.ConfidentialClientApplication(
                settings.client_id, client_credential=credential, **common
            )
        return self._app


def _http_session(settings: GraphSettings) -> Any:
    """A requests session for msal that really uses the configured CA bundle.

    requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's ``verify`` unless each
    request passes it explicitly, so every request here does (proxies still come from the
    environment).
    """
    import functools

    import requests

    session = requests.Session()
    session.request = functools.partial(  # type: ignore[method-assign]
        session.request, timeout=TIMEOUT_SECONDS, verify=settings.verify
    )
    return session


def split_certificate_pem(pem: str) -> tuple[str, str]:
    """The private key and the certificate from one PEM text; InvalidInput if either is missing
    or unreadable. The message never quotes the file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_start = pem.find("-----BEGIN ")
    blocks = _pem_blocks(pem[key_start:] if key_start >= 0 else "")
    keys = [block for label, block in blocks if label.endswith("PRIVATE KEY")]
    certs = [block for label, block in blocks if label == "CERTIFICATE"]
    if not keys or not certs:
        raise InvalidInput(
            "the certificate file needs both the private key and the certificate in PEM; "
            "e.g. `cat key.pem cert.pem > oathdesk.pem` (from a .pfx: `openssl pkcs12 -in "
            "app.pfx -out oathdesk.pem -nodes`)"
        )
    try:
        serialization.load_pem_private_key(keys[0].encode(), password=None)
        x509.load_pem_x509_certificate(certs[0].encode())
    except (ValueError, TypeError):
        raise InvalidInput(
            "the certificate file's key or certificate cannot be read (an encrypted key? "
            "export it without a passphrase, into a file only you can read)"
        ) from None
    return keys[0], certs[0]


def certificate_thumbprint(pem: str) -> str:
    """The SHA-256 thumbprint of the certificate (as the app registration shows it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    _, cert_pem = split_certificate_pem(pem)
    return x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA256()).hex()


def _pem_blocks(text: str) -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = []
    rest = text
    while True:
        start = rest.find("-----BEGIN ")
        if start < 0:
            return blocks
        label_end = rest.find("-----", start + 11)
        label = rest[start + 11 : label_end]
        end_marker = f"-----END {label}-----"
        end = rest.find(end_marker, label_end)
        if label_end < 0 or end < 0:
            return blocks
        blocks.append((label, rest[start : end + len(end_marker)] + "\n"))
        rest = rest[end + len(end_marker) :]


def _default_instruction(flow: dict[str, Any]) -> str:
    return (
        f"To sign in, open {flow.get('verification_uri', 'https://microsoft.com/devicelogin')} "
        f"and enter the code {flow.get('user_code', '')}"
    )


@contextmanager
def _reaching(settings: GraphSettings) -> Iterator[None]:
    """Network and TLS failures inside msal as one line naming the host (msal_failures), and
    an authority that is not Entra's."""
    try:
        with reaching(
            settings.authority_host,
            GraphError,
            tls_advice="check --ca-bundle",
            network_advice="check --authority-host and the network",
        ):
            yield
    except ValueError as error:
        # msal raises ValueError when the authority's OpenID configuration cannot be read.
        if "authority" in str(error).lower() or "openid" in str(error).lower():
            raise GraphError(
                f"{settings.authority} did not answer as an Entra authority; check "
                "--tenant and --authority-host"
            ) from None
        raise
