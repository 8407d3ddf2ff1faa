"""The fake Graph's contract, pinned with plain httpx and msal (the client's tests rely on it)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msal
import pyotp
import pytest
import requests

from tests.graph.fake_graph import ADMIN_UPN, FakeGraph

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
DEVICES = "/directory/authenticationMethodDevices/hardwareOathDevices"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
HELGA = "helga@contoso.onmicrosoft.com"


def msal_http(fake: FakeGraph) -> requests.Session:
    # msal's verify= loses to REQUESTS_CA_BUNDLE in the environment; a session that ignores
    # the environment trusts exactly the fake's CA.
    session = requests.Session()
    session.trust_env = False
    session.verify = fake.ca_bundle  # requests takes a path
    return session


def confidential_app(fake: FakeGraph, credential: Any = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        fake.client_id,
        client_credential=credential if credential is not None else fake.client_secret,
        authority=fake.authority_url,
        instance_discovery=False,
        http_client=msal_http(fake),
    )


def app_token(fake: FakeGraph) -> str:
    result = confidential_app(fake).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result
    return str(result["access_token"])


@pytest.fixture
def graph(fake_graph: FakeGraph) -> Iterator[httpx.Client]:
    """An httpx client for Graph holding an app-only token with the default grants."""
    token = app_token(fake_graph)
    with httpx.Client(
        base_url=fake_graph.graph_url,
        verify=fake_graph.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        yield client


def device_body(serial: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serialNumber": serial,
        "manufacturer": "Token2",
        "model": "C202",
        "secretKey": SECRET,
        "timeIntervalInSeconds": 30,
        "hashFunction": "hmacsha1",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def create(graph: httpx.Client, serial: str, **changes: Any) -> dict[str, Any]:
    response = graph.post(DEVICES, json=device_body(serial, **changes))
    assert response.status_code == 201, response.text
    return dict(response.json())


def steady_step(interval: int) -> int:
    """The current time step, after waiting out the last 3 s of a step (no boundary races)."""
    if time.time() % interval > interval - 3:
        time.sleep(interval - time.time() % interval + 0.05)
    return int(time.time()) // interval


def code_at_step(step: int, interval: int = 30, secret: str = SECRET, digest: Any = None) -> str:
    otp = pyotp.TOTP(secret, interval=interval, digest=digest or hashlib.sha1)
    return str(otp.at(step * interval))


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "innerError"} <= set(body["error"]), body
    return str(body["error"]["code"])


# -- identity platform with msal -----------------------------------------------------------------


def test_msal_client_secret_gets_a_graph_token_with_the_granted_roles(
    fake_graph: FakeGraph,
) -> None:
    import jwt

    token = app_token(fake_graph)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == fake_graph.tenant_id
    assert claims["appid"] == fake_graph.client_id
    assert set(claims["roles"]) == fake_graph.permissions
    assert "scp" not in claims


def test_msal_wrong_client_secret_is_invalid_client(fake_graph: FakeGraph) -> None:
    result = confidential_app(fake_graph, "not-the-secret").acquire_token_for_client(GRAPH_SCOPE)
    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    assert "not-the-secret" not in str(result)


@pytest.mark.parametrize("by", ["public_certificate", "thumbprint"])
def test_msal_certificate_assertion_gets_a_token(fake_graph: FakeGraph, by: str) -> None:
    credential = {"private_key": fake_graph.client_key_pem}
    if by == "public_certificate":
        credential["public_certificate"] = fake_graph.client_certificate_pem  # PS256, x5t#S256
    else:
        credential["thumbprint"] = fake_graph.client_certificate_thumbprint  # RS256, x5t
    result = confidential_app(fake_graph, credential).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result


def test_msal_certificate_not_registered_is_refused(fake_graph: FakeGraph) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    credential = {"private_key": pem, "thumbprint": fake_graph.client_certificate_thumbprint}
    result = confidential_app(fake_graph, credential).acquire_token_for_client(GRAPH_SCOPE)
    assert result["error"] == "invalid_client"
    assert "AADSTS700027" in result["error_description"]


def test_msal_instance_discovery_can_be_served_by_the_fake(fake_graph: FakeGraph) -> None:
    app = msal.ConfidentialClientApplication(
        fake_graph.client_id,
        client_credential=fake_graph.client_secret,
        authority=fake_graph.authority_url,
        instance_discovery=fake_graph.instance_discovery_url,
        http_client=msal_http(fake_graph),
    )
    assert "access_token" in app.acquire_token_for_client(GRAPH_SCOPE)
    assert fake_graph.requests[0][1].startswith("/common/discovery/instance?")


def test_client_credentials_need_a_default_scope(fake_graph: FakeGraph) -> None:
    scope = ["https://graph.microsoft.com/User.Read.All"]
    result = confidential_app(fake_graph).acquire_token_for_client(scope)
    assert result["error"] == "invalid_scope"


def test_unknown_tenant_fails_discovery(fake_graph: FakeGraph) -> None:
    with pytest.raises(ValueError, match="no-such-tenant"):
        msal.ConfidentialClientApplication(
            fake_graph.client_id,
            client_credential=fake_graph.client_secret,
            authority=f"{fake_graph.authority_host}/no-such-tenant",
            instance_discovery=False,
            http_client=msal_http(fake_graph),
        )
    assert fake_graph.requests == [
        ("GET", "/no-such-tenant/v2.0/.well-known/openid-configuration", 400)
    ]


def public_app(fake: FakeGraph) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        fake.public_client_id,
        authority=fake.authority_url,
        instance_discovery=False,
        http_client=msal_http(fake),
    )


def test_msal_device_code_polls_until_the_user_signs_in(fake_graph: FakeGraph) -> None:
    import jwt

    app = public_app(fake_graph)
    flow = app.initiate_device_flow(scopes=GRAPH_SCOPE)
    assert flow["user_code"] in flow["message"]
    threading.Timer(0.3, fake_graph.approve_device_code).start()
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ADMIN_UPN
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert set(claims["scp"].split()) == fake_graph.permissions
    assert claims["upn"] == ADMIN_UPN
    statuses = [status for _, path, status in fake_graph.requests if path.endswith("/token")]
    assert statuses[0] == 400  # authorization_pending ...
    assert statuses[-1] == 200  # ... then the token
    # The refresh token works: msal renews silently for the signed-in account.
    account = app.get_accounts()[0]
    assert "access_token" in app.acquire_token_silent(GRAPH_SCOPE, account, force_refresh=True)


def test_device_code_approved_before_the_flow_starts_and_declined(fake_graph: FakeGraph) -> None:
    app = public_app(fake_graph)
    fake_graph.approve_device_code()  # the next flow is approved on its first poll
    assert "access_token" in app.acquire_token_by_device_flow(app.initiate_device_flow(GRAPH_SCOPE))
    flow = app.initiate_device_flow(scopes=GRAPH_SCOPE)
    fake_graph.decline_device_code()
    assert app.acquire_token_by_device_flow(flow)["error"] == "authorization_declined"


def test_device_code_with_named_scopes_gets_only_those_granted(fake_graph: FakeGraph) -> None:
    import jwt

    app = public_app(fake_graph)
    fake_graph.approve_device_code()
    scopes = [
        "https://graph.microsoft.com/User.Read.All",
        "https://graph.microsoft.com/Directory.Read.All",  # not granted
    ]
    result = app.acquire_token_by_device_flow(app.initiate_device_flow(scopes))
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["scp"] == "User.Read.All"


# -- Graph: authentication and authorization ----------------------------------------------------


def test_graph_without_token_is_401(fake_graph: FakeGraph) -> None:
    response = httpx.get(fake_graph.graph_url + "/users", verify=fake_graph.ssl_context())
    assert response.status_code == 401
    assert error_code(response) == "InvalidAuthenticationToken"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_graph_with_garbled_or_expired_token_is_401(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    garbled = httpx.get(
        fake_graph.graph_url + "/users",
        verify=fake_graph.ssl_context(),
        headers={"Authorization": "Bearer eyJhbGciOi.garbage.x"},
    )
    assert garbled.status_code == 401
    assert graph.get("/users").status_code == 200
    fake_graph.expire_tokens()
    expired = graph.get("/users")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


def test_revoked_permission_is_403_at_once(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    fake_graph.revoke("User.Read.All")
    response = graph.get("/users")
    assert response.status_code == 403
    assert error_code(response) == "Authorization_RequestDenied"
    fake_graph.revoke("Policy.ReadWrite.AuthenticationMethod")
    response = graph.post(DEVICES, json=device_body("1001"))
    assert response.status_code == 403
    assert error_code(response) == "accessDenied"
    assert fake_graph.devices == []
    # Reading the inventory needs only Policy.Read.All, still granted.
    assert graph.get(DEVICES).status_code == 200


def test_grant_needs_a_new_token(fake_graph: FakeGraph) -> None:
    fake_graph.revoke("User.Read.All")
    old = app_token(fake_graph)
    fake_graph.grant("User.Read.All")
    headers = {"Authorization": f"Bearer {old}"}
    url = fake_graph.graph_url + "/users"
    assert httpx.get(url, headers=headers, verify=fake_graph.ssl_context()).status_code == 403
    headers = {"Authorization": f"Bearer {app_token(fake_graph)}"}
    assert httpx.get(url, headers=headers, verify=fake_graph.ssl_context()).status_code == 200


# -- Graph: inventory --------------------------------------------------------------------------


def test_create_device_returns_201_and_never_the_secret(
    fake_graph: FakeGraph, graph: httpx.Client
) -> None:
    created = create(graph, "86596120001", displayName="Token 1")
    assert created["secretKey"] is None
    assert created["status"] == "available"
    assert created["assignedTo"] is None
    assert created["timeIntervalInSeconds"] == 30
    assert graph.get(f"{DEVICES}/{created['id']}").json() == created
    assert fake_graph.device("86596120001")["secretKey"] == SECRET
    assert SECRET not in str(fake_graph.request_bodies)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"secretKey": None}, "secretKey"),
        ({"serialNumber": None}, "serialNumber"),
        ({"manufacturer": None}, "manufacturer"),
        ({"model": None}, "model"),
        ({"timeIntervalInSeconds": None}, "timeIntervalInSeconds"),
        ({"timeIntervalInSeconds": 45}, "timeIntervalInSeconds"),
        ({"hashFunction": "hmacmd5"}, "hashFunction"),
        ({"secretKey": "00ff00ff00ff00ff18"}, "base32"),
        ({"secretKey": "A" * 129}, "128"),
        ({"color": "red"}, "color"),
    ],
)
def test_create_device_refuses_bad_fields(
    graph: httpx.Client, change: dict[str, Any], why: str
) -> None:
    response = graph.post(DEVICES, json=device_body("1", **change))
    assert response.status_code == 400
    assert why in response.json()["error"]["message"]


def test_create_device_duplicate_serial_is_409(graph: httpx.Client) -> None:
    create(graph, "2001")
    response = graph.post(DEVICES, json=device_body("2001"))
    assert response.status_code == 409
    assert error_code(response) == "conflict"


def test_create_device_assigned_to_a_user(fake_graph: FakeGraph, graph: httpx.Client) -> None:
    user_id = fake_graph.add_user(HELGA, "Helga")
    created = create(graph, "3001", assignTo={"id": user_id})
    assert created["status"] == "assigned"
    assert created["assignedTo"] == {"id": user_id, "displayName": "Helga"}
    assert [m["id"] for m in fake_graph.methods_of(HELGA)] == [created["id"]]
