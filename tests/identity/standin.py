"""A stand-in for Entra's sign-in (OpenID Connect), served over real HTTPS on 127.0.0.1.

It answers what msal and oathdesk ask of login.microsoftonline.com for one tenant: discovery
(``/{tenant}/v2.0/.well-known/openid-configuration``), the keys (``/{tenant}/discovery/v2.0/keys``,
with ``rotate()`` to sign with a new key), ``/authorize`` (auto-consents as ``user`` and redirects
back with a code) and ``/token`` (checks the client secret, the redirect URI and PKCE S256, then
returns an RS256 ID token; or, for ``grant_type=client_credentials`` from the automation app, an
app-only v2.0 access token for oathdesk's API with the app's roles). ``misbehave`` makes the
next tokens wrong in one way, so tests can see each refusal come from a real exchange. TLS uses
the fake Graph's throwaway CA (``tests.graph.fake_graph.tls``), trusted by oathdesk through its
CA bundle setting.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.graph.fake_graph.tls import write_tls_files

TENANT_ID = "8a6f3c2e-1d4b-4e5f-9a7b-0c1d2e3f4a5b"
OTHER_TENANT_ID = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
CLIENT_ID = "5e7c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
CLIENT_SECRET = "stand-in~client~secret~0123456789"
OTHER_CLIENT_ID = "00000000-0000-4000-8000-000000000abc"
# An automation app (a script, a ticketing tool) that calls oathdesk's API with client
# credentials; its service principal's object id is what Entra puts in the token's oid.
APP_CLIENT_ID = "7d3e9f10-2a4b-4c5d-8e6f-708192a3b4c5"
APP_CLIENT_SECRET = "stand-in~automation~secret~9876543210"
APP_SP_OID = "9c8b7a60-5f4e-4d3c-8b2a-190817263544"

# What ``misbehave`` may be set to: the ID or access token is then wrong in that one way
# ("v1" and "delegated" apply to access tokens only).
MISBEHAVIOURS = frozenset(
    {
        "aud",
        "iss",
        "tid",
        "expired",
        "signature",
        "replayed_nonce",
        "alg_none",
        "not_yet",
        "v1",
        "delegated",
        "no_auth_time",
        "old_auth_time",
    }
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TestUser:
    __test__ = False  # a person at the stand-in, not a pytest test class

    upn: str = "helen@contoso.onmicrosoft.com"
    name: str = "Helen Helpdesk"
    oid: str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    roles: list[str] = field(default_factory=lambda: ["oathdesk.helpdesk"])
    groups: list[str] | None = None
    groups_overage: bool = False


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    user: TestUser


class SigningKeys:
    """The published keys; the newest signs."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.rotate(keep_old=False)

    def rotate(self, *, keep_old: bool = True) -> str:
        kid = f"standin-{uuid.uuid4().hex[:12]}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = ([*self.keys] if keep_old else []) + [(kid, key)]
        return kid

    @property
    def current(self) -> tuple[str, rsa.RSAPrivateKey]:
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        published = []
        for kid, key in self.keys:
            numbers = key.public_key().public_numbers()
            published.append(
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": kid,
                    "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": b64url(numbers.e.to_bytes(3, "big")),
                }
            )
        return {"keys": published}


class StandInIdP:
    """State and behaviour; ``serve()`` puts it behind HTTPS."""

    def __init__(self, tls_dir: Path) -> None:
        self.tls = write_tls_files(tls_dir)
        self.keys = SigningKeys()
        self.user = TestUser()
        self.misbehave: str | None = None
        self.deny_next = False  # /authorize answers error=access_denied once
        self.client_secret = CLIENT_SECRET
        self.app_roles: list[str] = ["oathdesk.helpdesk"]  # the automation app's app roles
        self.origin = ""
        self.issued_nonces: list[str] = []
        self.authorize_queries: list[dict[str, str]] = []  # what each /authorize was asked
        self.jwks_fetches = 0
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what tests use ------------------------------------------------------------------------

    @property
    def ca_bundle(self) -> str:
        return str(self.tls.ca_bundle)

    def id_token(
        self, *, nonce: str, user: TestUser | None = None, without: tuple[str, ...] = ()
    ) -> str:
        """A signed ID token as the token endpoint would issue it, less the claims ``without``
        names."""
        user = user or self.user
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": f"{self.origin}/{TENANT_ID}/v2.0",
            "aud": CLIENT_ID,
            "tid": TENANT_ID,
            "oid": user.oid,
            "sub": b64url(hashlib.sha256(user.oid.encode()).digest()),
            "preferred_username": user.upn,
            "name": user.name,
            "nonce": nonce,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
            # When the person entered their credentials: just now, as the auto-consent does
            # (Entra sends it only as an optional claim; docs/sso.md).
            "auth_time": now,
        }
        if user.roles:
            claims["roles"] = list(user.roles)
        if user.groups is not None:
            claims["groups"] = list(user.groups)
        if user.groups_overage:
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {"endpoint": "https://graph.microsoft.com/v1.0"}}
        claims = self._misbehaved(claims)
        for name in without:
            claims.pop(name, None)
        return self.sign(claims)

    def access_token(self) -> str:
        """An app-only v2.0 access token for oathdesk's API (``aud`` its client id), as the
        token endpoint issues it to the automation app for ``api://CLIENT_ID/.default``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": f"{self.origin}/{TENANT_ID}/v2.0",
            "aud": CLIENT_ID,
            "tid": TENANT_ID,
            "oid": APP_SP_OID,
            "sub": APP_SP_OID,
            "azp": APP_CLIENT_ID,
            "azpacr": "1",
            "idtyp": "app",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
        }
        if self.app_roles:
            claims["roles"] = list(self.app_roles)
        claims = self._misbehaved(claims)
        if self.misbehave == "v1":
            claims.update(iss=f"https://sts.windows.net/{TENANT_ID}/", ver="1.0")
            claims["aud"] = f"api://{CLIENT_ID}"
        elif self.misbehave == "delegated":
            claims.update(scp="user_impersonation", idtyp="user")
        return self.sign(claims)

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        key_id, key = self.keys.current
        if self.misbehave == "alg_none":
            return jwt.encode(claims, "", algorithm="none", headers={"kid": key_id})
        if self.misbehave == "signature":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or key_id})

    def _misbehaved(self, claims: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        match self.misbehave:
            case "aud":
                claims["aud"] = OTHER_CLIENT_ID
            case "iss":
                claims["iss"] = f"https://evil.example/{TENANT_ID}/v2.0"
            case "tid":
                claims["tid"] = OTHER_TENANT_ID
                claims["iss"] = f"{self.origin}/{OTHER_TENANT_ID}/v2.0"
            case "expired":
                claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
            case "not_yet":
                claims.update(iat=now + 3600, nbf=now + 3600, exp=now + 7200)
            case "no_auth_time":
                claims.pop("auth_time", None)
            case "old_auth_time":
                claims["auth_time"] = now - 3600  # a sign-in an hour ago (an old Entra session)
            case "replayed_nonce" if self.issued_nonces:
                claims["nonce"] = self.issued_nonces[0]
        return claims

    # -- endpoints -----------------------------------------------------------------------------

    def openid_configuration(self) -> dict[str, Any]:
        base = f"{self.origin}/{TENANT_ID}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect (a URL) after the auto-consent."""
        self.authorize_queries.append(dict(query))
        redirect = query.get("redirect_uri", "")
        state = query.get("state", "")
        if self.deny_next:
            self.deny_next = False
            return _with_query(redirect, error="access_denied", state=state)
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return _with_query(redirect, error="unauthorized_client", state=state)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return _with_query(redirect, error="invalid_request", state=state)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                CLIENT_ID, redirect, query["code_challenge"], query.get("nonce", ""), self.user
            )
        return _with_query(redirect, code=code, state=state)

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") == "client_credentials":
            return self._client_credentials(form)
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "code unknown or used"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        id_token = self.id_token(nonce=grant.nonce, user=grant.user)
        self.issued_nonces.append(grant.nonce)
        return 200, {
            "token_type": "Bearer",
            "scope": "openid profile",
            "expires_in": 3600,
            "access_token": b64url(secrets.token_bytes(32)),
            "id_token": id_token,
        }

    def _client_credentials(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != APP_CLIENT_ID or form.get("client_secret") != (
            APP_CLIENT_SECRET
        ):
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215"}
        if form.get("scope") not in {f"api://{CLIENT_ID}/.default", f"{CLIENT_ID}/.default"}:
            return 400, {"error": "invalid_scope", "error_description": "AADSTS70011"}
        return 200, {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": self.access_token(),
        }

    # -- HTTPS ---------------------------------------------------------------------------------

    def serve(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls.server_cert), str(self.tls.server_key))
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                path = parts.path
                if path == f"/{TENANT_ID}/v2.0/.well-known/openid-configuration":
                    self._json(200, idp.openid_configuration())
                elif path == f"/{TENANT_ID}/discovery/v2.0/keys":
                    idp.jwks_fetches += 1
                    self._json(200, idp.keys.jwks())
                elif path == f"/{TENANT_ID}/oauth2/v2.0/authorize":
                    self.send_response(302)
                    self.send_header("Location", idp.authorize(query))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if urlsplit(self.path).path == f"/{TENANT_ID}/oauth2/v2.0/token":
                    self._json(*idp.token(form))
                else:
                    self._json(404, {"error": "not_found"})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """Quiet: a browser refusing the throwaway CA once, resets, timeouts."""

        server = Server(("127.0.0.1", 0), Handler)
        # The handshake then happens in the handler's thread: a stuck client blocks only itself.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self.origin = f"https://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextlib.contextmanager
def running(tls_dir: Path) -> Iterator[StandInIdP]:
    """A stand-in serving on a free port until the block ends."""
    standin = StandInIdP(tls_dir)
    standin.serve()
    try:
        yield standin
    finally:
        standin.stop()


def _with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
