"""Where oathdesk signs in and which Graph it calls: the global cloud by default, a national
cloud or a test server when configured. Pure values, checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from oathdesk.errors import InvalidInput

GLOBAL_AUTHORITY_HOST = "https://login.microsoftonline.com"
GLOBAL_GRAPH_URL = "https://graph.microsoft.com/beta"

# The delegated permissions a device-code sign-in asks for (see operations.NEEDED).
DELEGATED_PERMISSIONS = (
    "Policy.ReadWrite.AuthenticationMethod",
    "UserAuthenticationMethod.ReadWrite.All",
)

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class AuthKind(StrEnum):
    CLIENT_SECRET = "client_secret"  # noqa: S105 (a kind of credential, not one)
    CERTIFICATE = "certificate"
    DEVICE_CODE = "device_code"

    @property
    def app_only(self) -> bool:
        return self is not AuthKind.DEVICE_CODE


@dataclass(frozen=True)
class GraphSettings:
    """A tenant, an app registration and the endpoints; no secret in here."""

    tenant_id: str
    client_id: str
    auth: AuthKind
    authority_host: str = GLOBAL_AUTHORITY_HOST
    graph_url: str = GLOBAL_GRAPH_URL
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if not _TENANT.match(self.tenant_id):
            raise InvalidInput(
                "the tenant id is a GUID or a domain such as contoso.onmicrosoft.com; copy it "
                "from the Entra admin center, Overview page"
            )
        if not _GUID.match(self.client_id):
            raise InvalidInput(
                "the client id is the app registration's Application (client) ID, a GUID"
            )
        _check_https(self.authority_host, "--authority-host")
        _check_https(self.graph_url, "--graph-url")

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    @property
    def graph_base(self) -> str:
        return self.graph_url.rstrip("/")

    @property
    def resource(self) -> str:
        """The Graph resource the tokens are for: the Graph URL's scheme and host."""
        parts = urlsplit(self.graph_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def app_scopes(self) -> list[str]:
        return [f"{self.resource}/.default"]

    @property
    def delegated_scopes(self) -> list[str]:
        return [f"{self.resource}/{name}" for name in DELEGATED_PERMISSIONS]

    @property
    def verify(self) -> str | bool:
        """What TLS verification uses: the configured CA bundle, else the system's."""
        return self.ca_bundle or True


def _check_https(url: str, option: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise InvalidInput(f"{option} must be an https:// URL, e.g. {_example(option)}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(f"{option} must be a plain https:// URL without credentials or query")


def _example(option: str) -> str:
    return GLOBAL_AUTHORITY_HOST if option == "--authority-host" else GLOBAL_GRAPH_URL
