"""API keys against a live server: missing, wrong, revoked, expired keys and disabled operators
are refused with 401; each role gets exactly what the vault's role table grants."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest

from oathdesk.vault.api_keys import ApiKeyRefused, ApiKeyStore
from oathdesk.vault.models import utc_now
from oathdesk.vault.operators import OperatorDirectory
from tests.web.api_support import Api, add_user_and_token, api, api_keys, assert_error, client
from tests.web.conftest import LOCAL_ADMIN, WebVault

__all__ = ["api", "api_keys"]  # fixtures


def test_a_key_acts_as_its_operator(api: Api) -> None:
    response = api.helpdesk.get("/me")
    assert response.status_code == 200
    assert response.json()["operator"] == "hugo"
    assert response.json()["role"] == "helpdesk"


def test_no_key_is_401_with_a_bearer_challenge(api: Api) -> None:
    response = api.anonymous.get("/users")
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "presented",
    [
        "odk_0123456789abcdef_" + "A" * 43,  # well-formed, unknown id
        "not-a-key",
        "odk_0123456789abcdef",
    ],
)
def test_malformed_or_unknown_keys_are_refused(api: Api, presented: str) -> None:
    with client(api.base_url, presented) as stranger:
        assert_error(stranger.get("/users"), 401, "unauthorized")
    basic = {"Authorization": "Basic YWRhOnBhc3N3b3Jk"}
    assert_error(api.anonymous.get("/users", headers=basic), 401, "unauthorized")


def test_a_wrong_secret_is_refused_and_audited(api: Api, web_vault: WebVault) -> None:
    key_id, secret = api.keys.helpdesk.split("_", 2)[1:]
    wrong = f"odk_{key_id}_{secret[:-1]}{'B' if secret[-1] != 'B' else 'C'}"
    with client(api.base_url, wrong) as stranger:
        assert_error(stranger.get("/users"), 401, "unauthorized")
    records = api.admin.get("/audit", params={"action": "api_key.refused"}).json()["items"]
    assert [r["details"] for r in records] == [{"key_id": key_id, "reason": "wrong secret"}]
    assert records[0]["actor"] == "hugo"


def test_the_key_is_never_read_from_the_url(api: Api) -> None:
    with httpx.Client(base_url=f"{api.base_url}/api/v1") as bare:
        response = bare.get("/users", params={"api_key": api.keys.admin})
        assert_error(response, 401, "unauthorized")
        response = bare.get("/users", params={"access_token": api.keys.admin})
        assert_error(response, 401, "unauthorized")


def test_a_revoked_key_stops_working_at_once(api: Api) -> None:
    key_id = api.helpdesk.get("/me").json()["key_id"]
    # An operator may revoke their own key (and no one else's).
    admin_key = api.admin.get("/me").json()["key_id"]
    assert_error(api.helpdesk.post(f"/keys/{admin_key}/revoke"), 403, "forbidden")
    response = api.helpdesk.post(f"/keys/{key_id}/revoke")
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert_error(api.helpdesk.get("/users"), 401, "unauthorized")
    actions = [r["action"] for r in api.admin.get("/audit").json()["items"]]
    assert "api_key.revoked" in actions


def test_a_disabled_operators_keys_stop_working(api: Api, web_vault: WebVault) -> None:
    assert api.helpdesk.get("/users").status_code == 200
    vault = web_vault.open()
    try:
        OperatorDirectory(vault).disable(LOCAL_ADMIN, "hugo")
    finally:
        vault.close()
    assert_error(api.helpdesk.get("/users"), 401, "unauthorized")


def test_an_expired_key_is_refused(web_vault: WebVault) -> None:
    vault = web_vault.open()
    try:
        store = ApiKeyStore(vault)
        created = store.create(LOCAL_ADMIN, "hugo", "short-lived", days=1)
        actor, _ = store.authenticate(created.secret_text)
        assert actor.name == "hugo"
        with pytest.raises(ApiKeyRefused):
            store.authenticate(created.secret_text, now=utc_now() + timedelta(days=1, seconds=1))
        assert store.get(created.key.id).status(utc_now() + timedelta(days=2)) == "expired"
    finally:
        vault.close()


def test_roles_are_the_vaults(api: Api) -> None:
    add_user_and_token(api)
    # helpdesk: look up, reveal, ship; not users, settings, audit, operators, imports, exports
    assert api.helpdesk.get("/tokens").status_code == 200
    assert_error(api.helpdesk.post("/users", json={"upn": "x@contoso.com"}), 403, "forbidden")
    assert_error(api.helpdesk.patch("/settings", json={"four_eyes": True}), 403, "forbidden")
    assert_error(api.helpdesk.get("/audit"), 403, "forbidden")
    assert_error(api.helpdesk.get("/operators"), 403, "forbidden")
    assert_error(api.helpdesk.post("/export/entra-csv"), 403, "forbidden")
    assert_error(
        api.helpdesk.post("/tokens/86596120001/lost", json={"reason": "x"}), 403, "forbidden"
    )
    assert_error(api.helpdesk.post("/operators/hugo/keys", json={"name": "mine"}), 403, "forbidden")
    # auditor: the audit log only
    assert api.auditor.get("/audit").status_code == 200
    assert api.auditor.get("/audit/verify").json()["intact"] is True
    assert_error(api.auditor.get("/tokens"), 403, "forbidden")
    assert_error(api.auditor.get("/users/helga@contoso.com"), 403, "forbidden")
    reveal = {"upn": "helga@contoso.com", "method": "callback", "ticket": "T", "channel": "phone"}
    assert_error(api.auditor.post("/reveal", json=reveal), 403, "forbidden")


def test_admin_manages_operators_and_keys(api: Api) -> None:
    names = [o["name"] for o in api.admin.get("/operators").json()["items"]]
    assert names == ["ada", "audrey", "hugo"]
    created = api.admin.post("/operators/audrey/keys", json={"name": "siem", "days": 30})
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(f"odk_{body['id']}_")
    assert body["operator"] == "audrey"
    assert created.headers["cache-control"] == "no-store"
    with client(api.base_url, body["key"]) as siem:
        assert siem.get("/audit").status_code == 200
    listed = api.admin.get("/operators/audrey/keys").json()["items"]
    assert {k["name"] for k in listed} == {"tests", "siem"}
    assert all("key" not in k for k in listed)
    assert {k["name"] for k in api.auditor.get("/operators/audrey/keys").json()["items"]} == {
        "tests",
        "siem",
    }
    assert_error(api.auditor.get("/operators/hugo/keys"), 403, "forbidden")
    assert_error(api.admin.post("/operators/nobody/keys", json={"name": "x"}), 404, "not_found")


def test_errors_are_one_line_json_and_never_echo_the_input(api: Api) -> None:
    long_secret = "JBSWY3DPEHPK3PXP" * 200
    response = api.admin.post("/tokens", json={"serial": "1", "secret": long_secret})
    message = assert_error(response, 422, "invalid_input")
    assert "JBSWY3DP" not in response.text
    assert "secret" in message
    response = api.admin.post("/tokens", json={"serial": "1", "secret": "JBSWY3DPEHPK3PX!"})
    assert_error(response, 400, "invalid_seed")
    assert "JBSWY3DPEHPK3PX" not in response.text
    assert_error(api.admin.get("/users/nobody@contoso.com"), 404, "not_found")
    assert_error(api.admin.get("/tokens", params={"state": "melted"}), 422, "invalid_input")
    assert_error(api.admin.post("/users", content=b"{not json"), 422, "invalid_input")


def test_no_key_secret_or_code_reaches_the_log(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    add_user_and_token(api)
    reveal = {"upn": "helga@contoso.com", "method": "callback", "ticket": "T", "channel": "phone"}
    response = api.helpdesk.post("/reveal", json=reveal)
    assert response.status_code == 200
    code = response.json()["current"]["code"]
    logged = caplog.text
    for secret in (api.keys.helpdesk, api.keys.admin, "JBSWY3DPEHPK3PXP", code):
        assert secret not in logged
