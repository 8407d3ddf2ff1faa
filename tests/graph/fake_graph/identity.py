"""The fake identity platform: OIDC discovery, client credentials, device code, token checks.

What msal 1.39 does against an authority ``https://HOST/{tenant}`` (read in msal/authority.py and
msal/oauth2cli/oauth2.py): with ``instance_discovery=False`` (or ``validate_authority=False``) it
GETs ``/{tenant}/v2.0/.well-known/openid-configuration``; otherwise it first GETs
``/common/discovery/instance`` on login.microsoftonline.com unless told another URL (the fake
serves that path too). Tokens come from ``/{tenant}/oauth2/v2.0/token``; the device flow starts at
``/{tenant}/oauth2/v2.0/devicecode`` and polls the token endpoint, sleeping ``interval`` seconds.

Access tokens are RS256 JWTs like Entra's v1 Graph tokens: app-only ones carry ``roles``,
delegated ones ``scp``; the Graph side verifies the signature, audience and expiry.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.graph.fake_graph.errors import GraphError, OAuthError
from tests.graph.fake_graph.state import Tenant, User
from tests.graph.fake_graph.tls import certificate_thumbprints

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_REFRESH = "refresh_token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
SIGNING_KEY_ID = "oathdesk-fake-graph-key"


# The fake's id for Microsoft's first-party My Sign-ins app (the security info page).
MY_SIGN_INS_APP_ID = "19db86c3-b2b9-44cc-b339-36da233a3be2"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class DeviceCodeFlow:
    device_code: str
    user_code: str
    scopes: list[str]
    expires_at: float
    approved_by: str | None = None  # user id
    declined: bool = False
    redeemed: bool = False


@dataclass
class Identity:
    tenant: Tenant
    client_id: str
    client_secret: str
    public_client_id: str
    client_cert_pem: bytes
    signing_key: rsa.RSAPrivateKey
    origin: str = ""  # "https://127.0.0.1:PORT", set when the server is listening
    granted: set[str] = field(default_factory=set)
    token_lifetime: int = 3599
    device_code_interval: int = 1
    device_code_user: str = ""  # UPN that "signs in" when a device code is approved
    issued: set[str] = field(default_factory=set)  # "uti" of every access token issued
    expired: set[str] = field(default_factory=set)  # those made to expire by expire_tokens()
    flows: dict[str, DeviceCodeFlow] = field(default_factory=dict)
    approve_next_flow: bool = False
    refresh_tokens: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    # -- discovery --------------------------------------------------------------------------
    def known_tenant(self, tenant: str) -> bool:
        names = {self.tenant.tenant_id, self.tenant.domain, "organizations", "common"}
        return tenant.casefold() in {n.casefold() for n in names}

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.origin}/{tenant}"
        tid = self.tenant.tenant_id
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.origin}/{tid}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.origin}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "name"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def instance_discovery(self, authorization_endpoint: str) -> dict[str, Any]:
        # msal sends the authority's authorize URL; answer as login.microsoftonline.com does.
        # msal drops the port from the authority's host here, so only the path is used.
        host = self.origin.removeprefix("https://")
        path = urlsplit(authorization_endpoint).path.strip("/")
        tenant = path.split("/")[0] if path else "common"
        discovery = f"{self.origin}/{tenant}/v2.0/.well-known/openid-configuration"
        return {
            "tenant_discovery_endpoint": discovery,
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.signing_key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": SIGNING_KEY_ID,
                    "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": b64url(numbers.e.to_bytes(3, "big")),
                }
            ]
        }

    # -- token endpoint ---------------------------------------------------------------------
    def token(self, form: dict[str, str], token_endpoint: str) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant == GRANT_CLIENT_CREDENTIALS:
            self._authenticate_confidential(form, token_endpoint)
            resource = _single_default_scope(form.get("scope", ""))
            return self._app_token(resource)
        if grant == GRANT_DEVICE_CODE:
            return self._redeem_device_code(form)
        if grant == GRANT_REFRESH:
            return self._redeem_refresh_token(form)
        raise OAuthError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant '{grant}'.",
        )

    def _authenticate_confidential(self, form: dict[str, str], token_endpoint: str) -> None:
        client_id = form.get("client_id", "")
        if client_id == self.public_client_id:
            raise OAuthError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        if client_id != self.client_id:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if "client_assertion" in form:
            self._check_assertion(form, token_endpoint)
            return
        secret = form.get("client_secret", "")
        if not secret:
            raise OAuthError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        if not secrets.compare_digest(secret.encode(), self.client_secret.encode()):
            raise OAuthError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID.",
            )

    def _check_assertion(self, form: dict[str, str], token_endpoint: str) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(400, "invalid_request", 700024, "Unsupported client_assertion_type.")
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise OAuthError(
                401, "invalid_client", 700027, "Client assertion is not a valid JWT."
            ) from exc
        sha1_hex, sha256_hex = certificate_thumbprints(self.client_cert_pem)
        known = {bytes.fromhex(sha1_hex), bytes.fromhex(sha256_hex)}
        presented = {_thumbprint(header.get("x5t")), _thumbprint(header.get("x5t#S256"))}
        if not presented & known:
            raise OAuthError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not "
                "registered on application.",
            )
        public_key = x509.load_pem_x509_certificate(self.client_cert_pem).public_key()
        try:
            claims = jwt.decode(
                assertion,
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=[token_endpoint, self.origin + "/" + self.tenant.tenant_id],
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise OAuthError(401, "invalid_client", 700024, "Client assertion is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise OAuthError(
                401,
                "invalid_client",
                700212,
                "Client assertion audience is not the token endpoint.",
            ) from exc
        except jwt.PyJWTError as exc:
            raise OAuthError(
                401, "invalid_client", 700027, "Client assertion failed signature validation."
            ) from exc
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise OAuthError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )

    def expire_all(self) -> None:
        self.expired |= self.issued

    def _sign(self, claims: dict[str, Any]) -> str:
        if "uti" in claims:
            self.issued.add(claims["uti"])
        return jwt.encode(
            claims, self.signing_key, algorithm="RS256", headers={"kid": SIGNING_KEY_ID}
        )

    def _base_claims(self, resource: str) -> dict[str, Any]:
        now = int(time.time())
        tid = self.tenant.tenant_id
        return {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tid}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "tid": tid,
            "ver": "1.0",
            "uti": secrets.token_urlsafe(16),
        }

    def _app_token(self, resource: str) -> dict[str, Any]:
        claims = self._base_claims(resource)
        service_principal = str(uuid.uuid5(uuid.NAMESPACE_URL, self.client_id))
        claims.update(
            appid=self.client_id,
            app_displayname="oathdesk",
            idtyp="app",
            oid=service_principal,
            sub=service_principal,
            roles=sorted(self.granted),
        )
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": self._sign(claims),
        }

    # -- device code ------------------------------------------------------------------------
    def start_device_flow(self, form: dict[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "")
        if client_id not in (self.public_client_id, self.client_id):
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        scopes = form.get("scope", "").split()
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        flow = DeviceCodeFlow(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            scopes=scopes,
            expires_at=time.time() + 900,
        )
        if self.approve_next_flow:
            self.approve_next_flow = False
            flow.approved_by = self._device_code_user().id
        self.flows[flow.device_code] = flow
        verification_uri = f"{self.origin}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": flow.device_code,
            "verification_uri": verification_uri,
            "expires_in": 900,
            "interval": self.device_code_interval,
            "message": f"To sign in, use a web browser to open the page {verification_uri} "
            f"and enter the code {user_code} to authenticate.",
        }

    def _device_code_user(self) -> User:
        return self.tenant.user(self.device_code_user)

    def approve(self, upn: str | None) -> None:
        user = self.tenant.user(upn or self.device_code_user)
        pending = [f for f in self.flows.values() if not f.redeemed and f.approved_by is None]
        if not pending:
            self.approve_next_flow = True
            self.device_code_user = user.upn
        for flow in pending:
            flow.approved_by = user.id

    def decline(self) -> None:
        for flow in self.flows.values():
            if not flow.redeemed and flow.approved_by is None:
                flow.declined = True

    def _redeem_device_code(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("client_id") != self.public_client_id:
            raise OAuthError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        flow = self.flows.get(form.get("device_code", ""))
        if flow is None or flow.redeemed:
            raise OAuthError(400, "invalid_grant", 70000, "The provided device code is invalid.")
        if time.time() > flow.expires_at:
            raise OAuthError(400, "expired_token", 70020, "The device code has expired.")
        if flow.declined:
            raise OAuthError(400, "authorization_declined", 70019, "The user declined.")
        if flow.approved_by is None:
            raise OAuthError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        flow.redeemed = True
        return self._delegated_token(self.tenant.users[flow.approved_by], flow.scopes)

    def _redeem_refresh_token(self, form: dict[str, str]) -> dict[str, Any]:
        entry = self.refresh_tokens.get(form.get("refresh_token", ""))
        if entry is None or form.get("client_id") != self.public_client_id:
            raise OAuthError(400, "invalid_grant", 9002313, "Invalid refresh token.")
        user_id, scopes = entry
        return self._delegated_token(self.tenant.users[user_id], scopes)

    def _delegated_token(self, user: User, scopes: list[str]) -> dict[str, Any]:
        resource, wanted = _delegated_scopes(scopes)
        granted = sorted(self.granted if wanted is None else self.granted & wanted)
        claims = self._base_claims(resource)
        claims.update(
            appid=self.public_client_id,
            app_displayname="oathdesk",
            idtyp="user",
            oid=user.id,
            sub=user.id,
            upn=user.upn,
            unique_name=user.upn,
            name=user.display_name,
            scp=" ".join(granted),
        )
        refresh = secrets.token_urlsafe(48)
        self.refresh_tokens[refresh] = (user.id, scopes)
        now = int(time.time())
        id_token = self._sign(
            {
                "aud": self.public_client_id,
                "iss": f"{self.origin}/{self.tenant.tenant_id}/v2.0",
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime,
                "name": user.display_name,
                "oid": user.id,
                "preferred_username": user.upn,
                "sub": user.id,
                "tid": self.tenant.tenant_id,
                "ver": "2.0",
            }
        )
        client_info = {"uid": user.id, "utid": self.tenant.tenant_id}
        return {
            "token_type": "Bearer",
            "scope": " ".join([f"{resource}/{p}" for p in granted] + ["openid", "profile"]),
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": self._sign(claims),
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": b64url(json.dumps(client_info).encode()),
        }

    def self_service_token(self, user: User) -> str:
        """A user's token from Microsoft's own My Sign-ins app (https://aka.ms/mysecurityinfo),
        as the page holds it when the user registers a hardware token: delegated, the "self"
        permission, first-party (no admin consent of this tenant's apps involved)."""
        claims = self._base_claims(GRAPH_RESOURCE)
        claims.update(
            appid=MY_SIGN_INS_APP_ID,
            app_displayname="My Signins",
            idtyp="user",
            oid=user.id,
            sub=user.id,
            upn=user.upn,
            unique_name=user.upn,
            name=user.display_name,
            scp="UserAuthenticationMethod.ReadWrite",
        )
        return self._sign(claims)

    # -- Graph side: who is calling ---------------------------------------------------------
    def verify_access_token(self, authorization: str | None) -> dict[str, Any]:
        if not authorization or not authorization.startswith("Bearer "):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.signing_key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_RESOURCE, self.origin, GRAPH_RESOURCE + "/", self.origin + "/"],
            )
        except jwt.ExpiredSignatureError as exc:
            raise _expired() from exc
        except jwt.InvalidAudienceError as exc:
            raise GraphError(
                401, "InvalidAuthenticationToken", "Invalid audience: the token is not for Graph."
            ) from exc
        except jwt.PyJWTError as exc:
            raise GraphError(
                401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."
            ) from exc
        if claims.get("uti") in self.expired:
            raise _expired()
        return claims


def _thumbprint(value: Any) -> bytes | None:
    """x5t / x5t#S256 header -> digest bytes (msal pads; RFC 7515 says unpadded base64url)."""
    if not isinstance(value, str):
        return None
    text = value.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None


def _expired() -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    )


def _single_default_scope(scope: str) -> str:
    scopes = scope.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise OAuthError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    return scopes[0].removesuffix("/.default")


def _delegated_scopes(scopes: list[str]) -> tuple[str, set[str] | None]:
    """(resource, permissions asked for, or None for ``/.default`` meaning all consented)."""
    resource = GRAPH_RESOURCE
    wanted: set[str] = set()
    everything = False
    for scope in scopes:
        if scope in OIDC_SCOPES:
            continue
        if "/" in scope:
            resource, _, name = scope.rpartition("/")
        else:
            name = scope
        if name == ".default":
            everything = True
        else:
            wanted.add(name)
    return resource, None if everything or not wanted else wanted
