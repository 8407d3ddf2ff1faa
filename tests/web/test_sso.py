"""Sign-in with Microsoft through the console, against the stand-in identity provider over HTTPS:
an httpx client plays the browser (cookies, redirects by hand); the server is real uvicorn."""

from __future__ import annotations

import re
import ssl
from typing import Any

import httpx
import pytest

from oathdesk.vault import sso as stored
from oathdesk.vault.models import Actor
from tests.identity.standin import CLIENT_ID, CLIENT_SECRET, TENANT_ID, StandInIdP
from tests.web.conftest import WebVault, new_client, post_form

ADMIN = Actor("local:test", "admin")


def configure(web_vault: WebVault, idp: StandInIdP, base_url: str, **extra: Any) -> None:
    vault = web_vault.open()
    try:
        stored.save_settings(
            vault,
            ADMIN,
            {
                "tenant_id": TENANT_ID,
                "client_id": CLIENT_ID,
                "credential_kind": "client_secret",
                "redirect_url": f"{base_url}/auth/callback",
                "authority_host": idp.origin,
                "ca_bundle": idp.ca_bundle,
                **extra,
            },
            credential=CLIENT_SECRET,
        )
    finally:
        vault.close()


@pytest.fixture
def sso_server(live_server: str, web_vault: WebVault, idp: StandInIdP) -> str:
    configure(web_vault, idp, live_server)
    return live_server


def at_idp(idp: StandInIdP, url: str) -> str:
    """The browser at Entra: the stand-in consents and sends it back (the Location)."""
    verify = ssl.create_default_context(cafile=idp.ca_bundle)
    response = httpx.get(url, verify=verify, follow_redirects=False)
    assert response.status_code == 302
    return response.headers["location"]


def sso_sign_in(
    client: httpx.Client, idp: StandInIdP, *, tamper_state: bool = False
) -> httpx.Response:
    start = client.get("/auth/microsoft?next=/search")
    assert start.status_code == 303
    assert "oathdesk_sso_flow" in start.headers["set-cookie"]
    assert "samesite=lax" in start.headers["set-cookie"].lower()
    back = at_idp(idp, start.headers["location"])
    if tamper_state:
        back = re.sub(r"state=[^&]+", "state=someone-elses", back)
    return client.get(back)


def audit(web_vault: WebVault, action: str) -> list[dict[str, Any]]:
    vault = web_vault.open()
    try:
        return vault.export_audit(action=action)
    finally:
        vault.close()


def test_the_signin_page_offers_microsoft_only_when_configured(
    live_server: str,
    web_vault: WebVault,
    idp: StandInIdP,
) -> None:
    with new_client(live_server) as client:
        assert "Sign in with Microsoft" not in client.get("/signin").text
        configure(web_vault, idp, live_server)
        assert "Sign in with Microsoft" in client.get("/signin").text


def test_a_helpdesk_operator_signs_in_and_is_audited_then_refused_without_role(
    sso_server: str,
    web_vault: WebVault,
    idp: StandInIdP,
) -> None:
    with new_client(sso_server) as client:
        done = sso_sign_in(client, idp)
        assert done.status_code == 200, done.text
        assert 'content="0;url=/search"' in done.text
        assert "oathdesk_sso_flow=" in done.headers.get("set-cookie", "")  # cleared
        page = client.get("/search")
        assert page.status_code == 200
        assert idp.user.upn in page.text
    (record,) = audit(web_vault, "operator.sso_signed_in")
    assert record["actor"] == idp.user.upn
    assert record["details"]["oid"] == idp.user.oid
    assert record["details"]["roles"] == ["oathdesk.helpdesk"]
    assert record["details"]["ip"] == "127.0.0.1"
    assert "id_token" not in str(record)
    assert CLIENT_SECRET not in str(record)

    idp.user.roles = []  # an admin removed the app role in Entra
    with new_client(sso_server) as client:
        refused = sso_sign_in(client, idp)
        assert refused.status_code == 403
        assert "has no oathdesk role" in refused.text
        assert client.get("/search").status_code == 303  # not signed in
    (refusal,) = audit(web_vault, "operator.sso_refused")
    assert refusal["details"]["reason"] == "no_role"
    assert refusal["details"]["oid"] == idp.user.oid
    assert refusal["actor"] == idp.user.upn  # the operator it was, found by oid


def test_a_state_mismatch_is_refused_and_audited(
    sso_server: str,
    web_vault: WebVault,
    idp: StandInIdP,
) -> None:
    with new_client(sso_server) as client:
        refused = sso_sign_in(client, idp, tamper_state=True)
    assert refused.status_code == 403
    assert "belongs to another sign-in" in refused.text
    assert [r["details"]["reason"] for r in audit(web_vault, "operator.sso_refused")] == ["state"]


def test_an_answer_without_the_flow_cookie_is_refused(
    sso_server: str,
    web_vault: WebVault,
    idp: StandInIdP,
) -> None:
    """Another browser (a link sent to someone) cannot finish this browser's sign-in."""
    with new_client(sso_server) as client:
        start = client.get("/auth/microsoft")
    back = at_idp(idp, start.headers["location"])
    with new_client(sso_server) as stranger:
        refused = stranger.get(back)
    assert refused.status_code == 403
    assert "no sign-in in progress" in refused.text


def test_entras_access_denied_is_shown_in_words(
    sso_server: str,
    web_vault: WebVault,
    idp: StandInIdP,
) -> None:
    idp.deny_next = True
    with new_client(sso_server) as client:
        refused = sso_sign_in(client, idp)
    assert refused.status_code == 403
    assert "declined the sign-in" in refused.text


def test_break_glass_policy_limits_local_sign_in_and_audits_it(
    sso_server: str, web_vault: WebVault
) -> None:
    vault = web_vault.open()
    try:
        stored.set_local_sign_in(vault, ADMIN, "admins-only")
    finally:
        vault.close()

    def local(operator: Any) -> httpx.Response:
        with new_client(sso_server) as client:
            return post_form(
                client,
                "/signin",
                {
                    "name": operator.name,
                    "password": operator.password,
                    "code": operator.next_code(),
                },
                from_page="/signin",
            )

    refused = local(web_vault.helpdesk)
    assert refused.status_code == 401
    assert "kept for admins" in refused.text
    assert local(web_vault.admin).status_code == 303
    (record,) = [r for r in audit(web_vault, "operator.signed_in") if r["actor"] == "ada"]
    assert record["details"] == {"break_glass": True, "ip": "127.0.0.1"}

    vault = web_vault.open()
    try:
        stored.set_local_sign_in(vault, ADMIN, "off")
    finally:
        vault.close()
    with new_client(sso_server) as client:
        page = client.get("/signin").text
    assert "Local sign-in is switched off" in page
    assert 'action="/signin"' not in page
    # The form is gone; the vault refuses anyway (a form kept open from before, a script).
    vault = web_vault.open()
    try:
        from oathdesk.vault.operators import OperatorDirectory, SignInRefused

        admin = web_vault.admin
        with pytest.raises(SignInRefused, match="switched off"):
            OperatorDirectory(vault).authenticate(
                admin.name, admin.password, admin.next_code(), local_policy="off"
            )
    finally:
        vault.close()


def test_an_unreachable_identity_platform_is_one_line_on_a_page(
    sso_server: str, idp: StandInIdP
) -> None:
    idp.stop()
    with new_client(sso_server) as client:
        page = client.get("/auth/microsoft")
    assert page.status_code >= 400
    assert "cannot reach the identity platform" in page.text or "OpenID" in page.text
    assert "Traceback" not in page.text
