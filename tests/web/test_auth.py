"""Sign-in, sign-out and sessions, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import httpx

from tests.web.conftest import WebVault, new_client


def test_signed_in_admin_sees_the_dashboard(admin_client: httpx.Client) -> None:
    page = admin_client.get("/")
    assert page.status_code == 200
    assert "Tokens by state" in page.text
    assert "ada" in page.text


def test_anonymous_visitor_is_sent_to_signin(live_server: str, web_vault: WebVault) -> None:
    with new_client(live_server) as client:
        response = client.get("/")
        assert response.status_code == 303
        assert response.headers["location"] == "/signin"
        form = client.get("/signin")
        assert form.status_code == 200
        assert 'name="csrf_token"' in form.text
