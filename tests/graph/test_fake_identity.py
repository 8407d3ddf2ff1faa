"""The fake identity platform, driven by msal itself (client secret, certificate, device code)."""

from __future__ import annotations

import threading

import httpx
import jwt
import msal
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.graph.fake_graph import ADMIN_UPN, FakeGraph
from tests.graph.fake_graph.helpers import (
    GRAPH_SCOPE,
    app_token,
    confidential_app,
    msal_http,
    public_app,
)

# -- identity platform with msal -----------------------------------------------------------------


def test_msal_client_secret_gets_a_graph_token_with_the_granted_roles(
    fake_graph: FakeGraph,
) -> None:
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


def test_msal_device_code_polls_until_the_user_signs_in(fake_graph: FakeGraph) -> None:
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
    app = public_app(fake_graph)
    fake_graph.approve_device_code()
    scopes = [
        "https://graph.microsoft.com/User.Read.All",
        "https://graph.microsoft.com/Directory.Read.All",  # not granted
    ]
    result = app.acquire_token_by_device_flow(app.initiate_device_flow(scopes))
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["scp"] == "User.Read.All"


def token_request(fake: FakeGraph, **form: str) -> httpx.Response:
    with httpx.Client(verify=fake.ssl_context()) as client:
        return client.post(fake.token_endpoint, data=form)


def test_token_endpoint_errors_are_oauth_shaped(fake_graph: FakeGraph) -> None:
    unsupported = token_request(fake_graph, grant_type="password", client_id=fake_graph.client_id)
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"
    assert unsupported.json()["error_codes"] == [70003]
    unknown = token_request(
        fake_graph,
        grant_type="client_credentials",
        client_id="00000000-0000-0000-0000-000000000000",
        client_secret="x",
        scope="https://graph.microsoft.com/.default",
    )
    assert unknown.json()["error"] == "unauthorized_client"
    # The public client has no secret: client credentials and device flow do not mix.
    public = token_request(
        fake_graph,
        grant_type="client_credentials",
        client_id=fake_graph.public_client_id,
        scope="https://graph.microsoft.com/.default",
    )
    assert public.status_code == 401
    assert public.json()["error"] == "invalid_client"


def test_client_secret_basic_is_accepted(fake_graph: FakeGraph) -> None:
    with httpx.Client(verify=fake_graph.ssl_context()) as client:
        response = client.post(
            fake_graph.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "scope": "https://graph.microsoft.com/.default",
            },
            auth=(fake_graph.client_id, fake_graph.client_secret),
        )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_discovery_document_points_at_the_fake(fake_graph: FakeGraph) -> None:
    url = f"{fake_graph.authority_url}/v2.0/.well-known/openid-configuration"
    config = httpx.get(url, verify=fake_graph.ssl_context()).json()
    assert config["token_endpoint"] == fake_graph.token_endpoint
    assert config["device_authorization_endpoint"].startswith(fake_graph.authority_url)
    assert config["issuer"] == f"{fake_graph.authority_url}/v2.0"
    keys = httpx.get(config["jwks_uri"], verify=fake_graph.ssl_context()).json()["keys"]
    token = app_token(fake_graph)
    signing_key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(
        token, signing_key, algorithms=["RS256"], audience="https://graph.microsoft.com"
    )
    assert claims["tid"] == fake_graph.tenant_id


def test_a_bug_in_the_fake_is_a_500_and_recorded(
    fake_graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.graph.fake_graph.graph_api import GraphApi

    def broken(self: GraphApi, call: object) -> None:
        raise RuntimeError("boom")

    token = app_token(fake_graph)
    monkeypatch.setattr(GraphApi, "handle", broken)
    response = httpx.get(
        fake_graph.graph_url + "/users",
        headers={"Authorization": f"Bearer {token}"},
        verify=fake_graph.ssl_context(),
    )
    assert response.status_code == 500
    assert "RuntimeError: boom" in fake_graph.internal_errors[0]
    fake_graph._router.internal_errors.clear()  # expected here; the fixture would fail the test
