"""Sign-in with Microsoft beside the console's other defences: refused callbacks count in the
sign-in throttle like failed local sign-ins; SSO operators are not offered local-account
actions; an operator who signs in only with Microsoft cannot be a four-eyes approver, and the
reveal page says so. Real uvicorn servers, the stand-in identity provider over HTTPS."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from oathdesk.services.alerts import AlertSettings
from oathdesk.web.app import create_app
from tests.identity.standin import StandInIdP
from tests.web.api_support import assert_error, make_keys
from tests.web.conftest import LOCAL_ADMIN, WebVault, new_client, post_form, serve_app, signed_in
from tests.web.helpdesk_support import HELGA, element, populate, submit, text_of
from tests.web.test_auth import attempt
from tests.web.test_pages_reveal import CHECK
from tests.web.test_sso import audit, configure, sso_sign_in


def test_refused_microsoft_callbacks_count_in_the_sign_in_throttle(
    web_vault: WebVault, idp: StandInIdP, tmp_path: Path
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    config = web_vault.config(
        signin_failures_per_ip=3, alerts=AlertSettings(jsonl_path=str(alerts))
    )
    with serve_app(create_app(config)) as base_url:
        configure(web_vault, idp, base_url)
        with new_client(base_url) as client:
            # Answers that belong to no sign-in of this browser (a forged or replayed callback).
            for _ in range(2):
                forged = client.get("/auth/callback?code=stolen&state=guessed")
                assert forged.status_code == 403
            assert sso_sign_in(client, idp, tamper_state=True).status_code == 403
            # The address reached the limit: neither Microsoft nor a local sign-in is tried.
            throttled = client.get("/auth/callback?code=stolen&state=guessed")
            assert throttled.status_code == 429
            assert "too many failed sign-ins from this address" in throttled.text
            assert client.get("/auth/microsoft").status_code == 429
            local = attempt(client, web_vault.admin)  # the right password and a fresh code
            assert local.status_code == 429
    refused = audit(web_vault, "operator.sso_refused")
    assert [r["details"]["reason"] for r in refused] == ["no_flow", "no_flow", "state"]
    events = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert [(e["event"], e["client"]) for e in events] == [
        ("console.signin_throttled", "127.0.0.1")
    ]


def test_a_good_microsoft_sign_in_is_not_counted(web_vault: WebVault, idp: StandInIdP) -> None:
    config = web_vault.config(signin_failures_per_ip=2)
    with serve_app(create_app(config)) as base_url:
        configure(web_vault, idp, base_url)
        for _ in range(3):
            with new_client(base_url) as client:
                assert sso_sign_in(client, idp).status_code == 200
        with signed_in(base_url, web_vault.admin) as admin:
            assert admin.get("/").status_code == 200


def test_the_operators_page_offers_no_totp_reset_for_microsoft_operators(
    web_vault: WebVault, idp: StandInIdP
) -> None:
    config = web_vault.config()
    with serve_app(create_app(config)) as base_url:
        configure(web_vault, idp, base_url)
        with new_client(base_url) as client:
            assert sso_sign_in(client, idp).status_code == 200
        helen = idp.user.upn
        with signed_in(base_url, web_vault.admin) as admin:
            page = admin.get("/operators").text
            row = page.split(f'data-operator="{helen}"')[1].split("</tr>")[0]
            assert "reset-totp" not in row
            assert "Microsoft" in row
            hugo = page.split(f'data-operator="{web_vault.helpdesk.name}"')[1].split("</tr>")[0]
            assert "reset-totp" in hugo  # local operators keep it
            forced = post_form(admin, f"/operators/{helen}/reset-totp", {}, from_page="/operators")
            assert forced.status_code == 400
            assert "signs in with Microsoft" in forced.text
    assert audit(web_vault, "operator.totp_reset") == []


def test_an_operator_who_signs_in_with_microsoft_only_cannot_approve_a_reveal(
    web_vault: WebVault, idp: StandInIdP
) -> None:
    config = web_vault.config()
    with serve_app(create_app(config)) as base_url:
        configure(web_vault, idp, base_url)
        idp.user.roles = ["oathdesk.admin"]
        with new_client(base_url) as client:
            assert sso_sign_in(client, idp).status_code == 200
        helen = idp.user.upn
        populate(web_vault)
        vault = web_vault.open()
        try:
            vault.update_settings(LOCAL_ADMIN, four_eyes=True)
        finally:
            vault.close()
        sso_approver = {"approver": helen, "approver_password": "x" * 12, "approver_code": "123456"}
        with signed_in(base_url, web_vault.helpdesk) as helpdesk:
            form = helpdesk.get(f"/users/{HELGA}/reveal").text
            assert "signs in with Microsoft only cannot approve" in form
            data = {**CHECK, "channel": "phone", **sso_approver}
            refused = submit(helpdesk, f"/users/{HELGA}/reveal", data)
            assert refused.status_code == 400
            said = text_of(refused.text, "form-error")
            assert "signs in with Microsoft (Entra ID) only" in said
            assert element(refused.text, "primary-code") is None
        keys = make_keys(web_vault)
        with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as api:
            body = {
                "upn": HELGA,
                "method": "callback",
                "ticket": "INC-1",
                "channel": "phone",
                "approver": {"name": helen, "password": "x" * 12, "code": "123456"},
            }
            headers = {"Authorization": f"Bearer {keys.helpdesk}"}
            response = api.post("/reveal", json=body, headers=headers)
            assert "signs in with Microsoft" in assert_error(response, 400, "invalid_input")
    # Not a failed sign-in of hers: nothing counted, nothing locked.
    assert audit(web_vault, "operator.signin_failed") == []
    assert audit(web_vault, "code.revealed") == []
