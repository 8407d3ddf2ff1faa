"""Operator management in the console: admins only; add (QR shown once), disable, reset TOTP."""

from __future__ import annotations

import re

import httpx
import pytest

from oathdesk.vault.operators import OperatorDirectory
from tests.web.conftest import (
    WebVault,
    new_client,
    operator_from_qr,
    post_form,
    qr_text,
    signed_in,
)


def operator_row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-operator="{re.escape(name)}">(.*?)</tr>', page, re.DOTALL)
    assert found, f"no row for {name}"
    return found.group(1)


@pytest.mark.parametrize("who", ["helpdesk_client", "auditor_client"])
def test_only_admins_manage_operators(
    request: pytest.FixtureRequest, web_vault: WebVault, who: str
) -> None:
    client: httpx.Client = request.getfixturevalue(who)
    page = client.get("/operators")
    assert page.status_code == 403
    assert "may not open this page; ask an admin" in page.text
    assert "Operators" not in re.sub(r"<title>.*?</title>", "", page.text)  # not in the nav
    added = post_form(
        client,
        "/operators",
        {"name": "eve", "role": "admin", "password": "a long password 1", "repeat": ""},
    )
    assert added.status_code == 403
    assert post_form(client, "/operators/ada/disable", {}).status_code == 403
    names = [operator.name for operator in OperatorDirectory(web_vault.open()).list()]
    assert "eve" not in names


def test_admin_adds_an_operator_who_then_signs_in_with_the_qr_code(
    admin_client: httpx.Client, live_server: str
) -> None:
    password = "welcome to the helpdesk 9"
    response = post_form(
        admin_client,
        "/operators",
        {"name": "nina", "role": "helpdesk", "password": password, "repeat": password},
    )
    assert response.status_code == 200
    assert "nina was added" in response.text
    uri = qr_text(response.text)
    assert uri.startswith("otpauth://totp/oathdesk:nina?")
    # As text only in the "can't scan?" disclosure, for authenticators that cannot scan (#16).
    assert response.text.count("secret=") == 1
    assert 'id="enrol-uri"' in response.text
    listing = admin_client.get("/operators").text
    assert "helpdesk" in operator_row(listing, "nina")
    assert "never" in operator_row(listing, "nina")
    assert "never" not in operator_row(listing, "ada")  # ada signed in: a date is shown
    nina = operator_from_qr(response.text, "nina", "helpdesk", password)
    with signed_in(live_server, nina) as client:
        assert "nina <small>(helpdesk)</small>" in client.get("/").text


def test_a_weak_password_is_refused_with_what_to_fix(admin_client: httpx.Client) -> None:
    for password, message in [
        ("short1", "at least 12 characters"),
        ("aaaaaaaaaaaaaaaa", "more different characters"),
        ("olga-the-operator", "must not contain the operator name"),
    ]:
        response = post_form(
            admin_client,
            "/operators",
            {"name": "olga", "role": "auditor", "password": password, "repeat": password},
        )
        assert response.status_code == 400
        assert message in response.text
    differ = post_form(
        admin_client,
        "/operators",
        {"name": "olga", "role": "auditor", "password": "a long password 1", "repeat": "x"},
    )
    assert "the two passwords differ" in differ.text
    assert 'data-operator="olga"' not in admin_client.get("/operators").text


def test_disabling_an_operator_ends_their_sessions_at_once(
    admin_client: httpx.Client, helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    assert helpdesk_client.get("/").status_code == 200
    response = post_form(admin_client, "/operators/hugo/disable", {})
    assert response.status_code == 303
    page = admin_client.get("/operators").text
    assert "Operator hugo is disabled; 1 open session(s) ended." in page
    assert "disabled" in operator_row(page, "hugo")
    assert helpdesk_client.get("/").status_code == 303  # signed out
    again = post_form(
        helpdesk_client,
        "/signin",
        {"name": "hugo", "password": web_vault.helpdesk.password, "code": "123456"},
        from_page="/signin",
    )
    assert again.status_code == 401


def test_a_disabled_operator_enabled_again_signs_in_with_the_same_factors(
    admin_client: httpx.Client, helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    assert post_form(admin_client, "/operators/hugo/disable", {}).status_code == 303
    assert "Enable" in operator_row(admin_client.get("/operators").text, "hugo")
    response = post_form(admin_client, "/operators/hugo/enable", {}, from_page="/operators")
    assert response.status_code == 303
    page = admin_client.get("/operators").text
    assert "Operator hugo is enabled and can sign in again." in page
    assert "active" in operator_row(page, "hugo")
    with signed_in(str(admin_client.base_url), web_vault.helpdesk) as client:
        assert client.get("/").status_code == 200


def test_an_admin_cannot_disable_themselves(admin_client: httpx.Client) -> None:
    response = post_form(admin_client, "/operators/ada/disable", {})
    assert response.status_code == 400
    assert "you cannot disable yourself" in response.text
    assert admin_client.get("/").status_code == 200


def test_reset_totp_shows_a_new_qr_and_the_old_secret_stops_working(
    admin_client: httpx.Client, helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    response = post_form(admin_client, "/operators/hugo/reset-totp", {})
    assert response.status_code == 200
    assert "hugo was given a new TOTP secret" in response.text
    fresh = operator_from_qr(response.text, "hugo", "helpdesk", web_vault.helpdesk.password)
    assert fresh.secret != web_vault.helpdesk.secret
    assert helpdesk_client.get("/").status_code == 303  # the old sessions are over
    base_url = str(helpdesk_client.base_url)
    with new_client(base_url) as client:
        old = post_form(
            client,
            "/signin",
            {
                "name": "hugo",
                "password": web_vault.helpdesk.password,
                "code": web_vault.helpdesk.next_code(),
            },
            from_page="/signin",
        )
        assert old.status_code == 401
    with signed_in(base_url, fresh) as client:
        assert client.get("/").status_code == 200
