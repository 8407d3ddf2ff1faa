"""The REST API accepts Entra access tokens of an automation app beside API keys: tokens come
from the stand-in identity provider's token endpoint over HTTPS (client credentials), the server
is real uvicorn, the keys are fetched from the stand-in's JWKS."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from oathdesk.identity.flow import KEYS_COOLDOWN_SECONDS
from oathdesk.vault import sso as stored
from tests.identity.standin import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT_ID,
    StandInIdP,
    running,
)
from tests.web.api_support import (
    REVEAL,
    SECRET_B32,
    Api,
    add_user_and_token,
    api,
    api_keys,
    assert_error,
    oathtool_code,
)
from tests.web.conftest import LOCAL_ADMIN, WebVault

__all__ = ["api", "api_keys"]  # fixtures

APP_ACTOR = f"app:{APP_CLIENT_ID}"


def configure(web_vault: WebVault, idp: StandInIdP, base_url: str, audience: str | None) -> None:
    vault = web_vault.open()
    try:
        stored.save_settings(
            vault,
            LOCAL_ADMIN,
            {
                "tenant_id": TENANT_ID,
                "client_id": CLIENT_ID,
                "credential_kind": "client_secret",
                "redirect_url": f"{base_url}/auth/callback",
                "authority_host": idp.origin,
                "ca_bundle": idp.ca_bundle,
                "api_audience": audience,
            },
            credential=CLIENT_SECRET,
        )
    finally:
        vault.close()


@pytest.fixture
def entra_api(api: Api, web_vault: WebVault, idp: StandInIdP) -> Api:
    configure(web_vault, idp, api.base_url, CLIENT_ID)
    return api


def client_credentials_token(idp: StandInIdP, scope: str = f"api://{CLIENT_ID}/.default") -> str:
    """What the automation app does: client credentials at the tenant's token endpoint."""
    response = httpx.post(
        f"{idp.origin}/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": APP_CLIENT_ID,
            "client_secret": APP_CLIENT_SECRET,
            "scope": scope,
        },
        verify=ssl.create_default_context(cafile=idp.ca_bundle),
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def call(api: Api, token: str, method: str = "GET", path: str = "/tokens", **kwargs: Any) -> Any:
    with httpx.Client(base_url=f"{api.base_url}/api/v1", timeout=30) as client:
        return client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def audit(api: Api, action: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.admin.get("/audit", params={"action": action}).json()["items"]
    return items


def test_an_apps_token_lists_tokens_and_reveals_oathtools_code_audited_as_the_app(
    entra_api: Api, idp: StandInIdP
) -> None:
    add_user_and_token(entra_api)
    token = client_credentials_token(idp)
    listed = call(entra_api, token)
    assert listed.status_code == 200, listed.text
    assert [item["serial"] for item in listed.json()["items"]] == ["86596120001"]
    me = call(entra_api, token, path="/me").json()
    assert me["operator"] == APP_ACTOR
    assert me["role"] == "helpdesk"

    revealed = call(entra_api, token, "POST", "/reveal", json=REVEAL)
    assert revealed.status_code == 200, revealed.text
    body = revealed.json()
    assert body["current"]["code"] == oathtool_code(SECRET_B32, body["at"])
    (record,) = audit(entra_api, "code.revealed")
    assert record["actor"] == APP_ACTOR
    assert record["details"]["ticket"] == "INC-4711"
    assert token not in str(audit(entra_api, ""))
    # The API keys still work beside the tokens.
    assert entra_api.helpdesk.get("/tokens").status_code == 200


def test_an_admin_app_role_gives_admin_rights_and_an_auditor_cannot_reveal(
    entra_api: Api, idp: StandInIdP
) -> None:
    add_user_and_token(entra_api)
    idp.app_roles = ["oathdesk.auditor"]
    auditor = client_credentials_token(idp)
    assert call(entra_api, auditor, path="/me").json()["role"] == "auditor"
    assert_error(call(entra_api, auditor, "POST", "/reveal", json=REVEAL), 403, "forbidden")
    idp.app_roles = ["oathdesk.auditor", "oathdesk.admin"]
    assert call(entra_api, client_credentials_token(idp), path="/me").json()["role"] == "admin"


@pytest.mark.parametrize(
    ("misbehave", "words"),
    [
        ("aud", "for another API"),
        ("iss", "unexpected issuer"),
        ("tid", "another Entra tenant"),
        ("expired", "has expired"),
        ("not_yet", "not valid yet"),
        ("signature", "signature does not verify"),
        ("alg_none", "not signed with RS256"),
        ("v1", "not a v2.0 token"),
        ("delegated", "issued to a person"),
    ],
)
def test_a_token_wrong_in_one_way_is_401_with_a_clear_line_and_never_echoed(
    entra_api: Api, idp: StandInIdP, misbehave: str, words: str
) -> None:
    add_user_and_token(entra_api)
    idp.misbehave = misbehave
    token = client_credentials_token(idp)
    for method, path, body in (("GET", "/tokens", None), ("POST", "/reveal", REVEAL)):
        response = call(entra_api, token, method, path, json=body)
        message = assert_error(response, 401, "unauthorized")
        assert message.startswith("Entra access token refused: ")
        assert words in message
        assert token not in response.text
        assert token.split(".")[1][:20] not in response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert audit(entra_api, "code.revealed") == []


def test_an_app_without_an_oathdesk_role_is_refused_and_audited(
    entra_api: Api, idp: StandInIdP
) -> None:
    idp.app_roles = ["Some.Other.Role"]
    token = client_credentials_token(idp)
    message = assert_error(call(entra_api, token), 401, "unauthorized")
    assert "no oathdesk role" in message
    (record,) = audit(entra_api, "api_token.refused")
    assert record["actor"] == APP_ACTOR
    assert record["details"]["reason"] == "no_role"
    assert token not in str(record)


def test_a_token_signed_by_a_rotated_key_is_accepted(entra_api: Api, idp: StandInIdP) -> None:
    assert call(entra_api, client_credentials_token(idp)).status_code == 200
    idp.keys.rotate(keep_old=False)
    fetches = idp.jwks_fetches
    time.sleep(KEYS_COOLDOWN_SECONDS + 0.2)  # the refetch an unknown kid may cause, after a fetch
    assert call(entra_api, client_credentials_token(idp)).status_code == 200
    assert idp.jwks_fetches == fetches + 1


def test_without_an_api_audience_the_api_takes_api_keys_only(
    api: Api, web_vault: WebVault, idp: StandInIdP
) -> None:
    configure(web_vault, idp, api.base_url, None)
    token = client_credentials_token(idp)
    message = assert_error(call(api, token), 401, "unauthorized")
    assert "accepts API keys only" in message
    assert "oathdesk sso api-audience" in message
    assert api.helpdesk.get("/tokens").status_code == 200


def test_without_sso_configured_a_jwt_is_refused_and_garbage_gets_the_key_refusal(
    api: Api, idp: StandInIdP
) -> None:
    token = client_credentials_token(idp)
    assert "API keys only" in assert_error(call(api, token), 401, "unauthorized")
    for junk in ("eyJhbGciOi.x", "odk_eyJ.a.b", "not-a-key"):
        message = assert_error(call(api, junk), 401, "unauthorized")
        assert "API key" in message
        assert junk not in message


def test_under_four_eyes_an_app_reveals_with_a_local_approver(
    entra_api: Api, idp: StandInIdP, web_vault: WebVault
) -> None:
    add_user_and_token(entra_api)
    assert entra_api.admin.patch("/settings", json={"four_eyes": True}).status_code == 200
    token = client_credentials_token(idp)
    assert_error(call(entra_api, token, "POST", "/reveal", json=REVEAL), 403, "policy_refused")
    ada = web_vault.admin
    approver = {"name": ada.name, "password": ada.password, "code": ada.next_code()}
    approved = call(entra_api, token, "POST", "/reveal", json={**REVEAL, "approver": approver})
    assert approved.status_code == 200, approved.text
    (record,) = audit(entra_api, "code.revealed")
    assert (record["actor"], record["details"]["approver"]) == (APP_ACTOR, ada.name)


def test_an_unreachable_identity_platform_is_503_in_one_line(
    api: Api, web_vault: WebVault, tmp_path: Path
) -> None:
    with running(tmp_path / "gone-tls") as gone:
        configure(web_vault, gone, api.base_url, CLIENT_ID)
        token = client_credentials_token(gone)
    # The tenant's keys cannot be read now: the caller is told to try again, not refused.
    message = assert_error(call(api, token), 503, "identity_unreachable")
    assert "try again" in message or "check" in message
    assert token not in message
    assert api.helpdesk.get("/tokens").status_code == 200  # API keys do not depend on Entra
