"""The app registration oathdesk signs operators in with: pure values, checked once.

The tenant must be a GUID: the ID token's issuer is pinned to it (``{tid}`` of the v2.0
issuer), and a domain name would not match ``tid``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from oathdesk.errors import InvalidInput

GLOBAL_AUTHORITY_HOST = "https://login.microsoftonline.com"
SCOPES = ("openid", "profile")  # all oathdesk asks for: who signed in, nothing more

# The app roles defined in the app registration, and the oathdesk role each one grants.
APP_ROLES: Mapping[str, str] = {
    "oathdesk.admin": "admin",
    "oathdesk.helpdesk": "helpdesk",
    "oathdesk.auditor": "auditor",
}
ROLE_NAMES = frozenset(APP_ROLES.values())

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class CredentialKind(StrEnum):
    CLIENT_SECRET = "client_secret"  # noqa: S105 (a kind of credential, not one)
    CERTIFICATE = "certificate"


class LocalSignIn(StrEnum):
    """Who may still sign in with a local name, password and TOTP (break-glass)."""

    ON = "on"
    ADMINS_ONLY = "admins-only"
    OFF = "off"

    @classmethod
    def parse(cls, text: str) -> LocalSignIn:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InvalidInput(
                f"unknown local sign-in policy {text!r}; use on, admins-only or off"
            ) from None


def is_guid(text: str) -> bool:
    return bool(_GUID.match(text))


def parse_api_audience(text: str) -> str:
    """The ``aud`` that Entra v2.0 access tokens for oathdesk's API carry: the Application
    (client) ID of the app registration that exposes the API, also when the token was asked
    for by its Application ID URI (``api://...``), which v2.0 tokens never carry."""
    value = text.strip().lower()
    value = value.removeprefix("api://")
    if not is_guid(value):
        raise InvalidInput(
            "the API audience is the Application (client) ID (a GUID) of the app registration "
            "that exposes oathdesk's API, usually the sign-in app's: e.g. --api-audience "
            "5e7c1a2b-..."
        )
    return value


@dataclass(frozen=True)
class SsoSettings:
    """A tenant, an app registration and where Entra sends the browser back; no secret here.

    ``group_roles`` optionally maps group object ids to oathdesk roles, beside the app roles.
    """

    tenant_id: str
    client_id: str
    credential: CredentialKind
    redirect_url: str
    authority_host: str = GLOBAL_AUTHORITY_HOST
    ca_bundle: str | None = None
    group_roles: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_guid(self.tenant_id):
            raise InvalidInput(
                "the tenant id is the Directory (tenant) ID, a GUID; copy it from the app "
                "registration's Overview page"
            )
        if not is_guid(self.client_id):
            raise InvalidInput(
                "the client id is the app registration's Application (client) ID, a GUID"
            )
        _check_url(self.authority_host, "--authority-host", allow_path=False)
        _check_url(self.redirect_url, "--redirect-url", allow_path=True)
        for group, role in self.group_roles.items():
            if not is_guid(group) or role not in ROLE_NAMES:
                raise InvalidInput(
                    "a group mapping is GROUP-OBJECT-ID=ROLE with a GUID and admin, helpdesk "
                    "or auditor, e.g. --group 0f5c...=helpdesk"
                )

    @property
    def tenant(self) -> str:
        return self.tenant_id.lower()

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant}"

    @property
    def issuer(self) -> str:
        """The issuer an ID token of this tenant carries (the v2.0 endpoint's)."""
        return f"{self.authority}/v2.0"

    @property
    def verify(self) -> str | bool:
        return self.ca_bundle or True


def _check_url(url: str, option: str, *, allow_path: bool) -> None:
    parts = urlsplit(url)
    # Entra itself accepts http only for a loopback redirect; so do we.
    plain_ok = option == "--redirect-url" and parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme not in ({"https", "http"} if plain_ok else {"https"}) or not parts.netloc:
        raise InvalidInput(
            f"{option} must be an https:// URL, e.g. "
            + (
                "https://oathdesk.contoso.com/auth/callback"
                if allow_path
                else GLOBAL_AUTHORITY_HOST
            )
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(f"{option} must be a plain URL without credentials, query or fragment")
    if not allow_path and parts.path not in {"", "/"}:
        raise InvalidInput(f"{option} is a host only, e.g. {GLOBAL_AUTHORITY_HOST}")
