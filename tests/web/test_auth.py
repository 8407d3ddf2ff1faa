"""Sign-in, sign-out and sessions, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from oathdesk.services.alerts import AlertSettings
from oathdesk.vault.config import VaultLocation
from oathdesk.web.app import create_app
from oathdesk.web.security import COOKIE_PLAIN
from tests.pg import PostgresServer
from tests.web.conftest import (
    Operator,
    WebVault,
    make_web_vault,
    new_client,
    post_form,
    serve_app,
    sign_in,
)

GENERIC_REFUSAL = "sign-in refused: wrong name, password or code, or account locked"


def attempt(
    client: httpx.Client, operator: Operator, *, password: str | None = None, code: str = ""
) -> httpx.Response:
    return post_form(
        client,
        "/signin",
        {
            "name": operator.name,
            "password": operator.password if password is None else password,
            "code": code or operator.next_code(),
        },
        from_page="/signin",
    )


def is_signed_in(client: httpx.Client) -> bool:
    response = client.get("/")
    assert response.status_code in (200, 303)
    return response.status_code == 200


def test_signed_in_admin_sees_the_dashboard(admin_client: httpx.Client) -> None:
    page = admin_client.get("/")
    assert page.status_code == 200
    assert "Tokens by state" in page.text
    assert "ada <small>(admin)</small>" in page.text


def test_anonymous_visitor_is_sent_to_signin(live_server: str, web_vault: WebVault) -> None:
    with new_client(live_server) as client:
        response = client.get("/operators")
        assert response.status_code == 303
        assert response.headers["location"] == "/signin?next=/operators"
        form = client.get("/signin")
        assert form.status_code == 200
        assert 'name="csrf_token"' in form.text


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(
    live_server: str, web_vault: WebVault
) -> None:
    with new_client(live_server) as client:
        data = {"password": web_vault.admin.password, "name": "ada"}
        ok = post_form(
            client,
            "/signin",
            {**data, "code": web_vault.admin.next_code(), "next": "/operators"},
            from_page="/signin",
        )
        assert ok.headers["location"] == "/operators"
    with new_client(live_server) as client:
        evil = post_form(
            client,
            "/signin",
            {**data, "code": web_vault.admin.next_code(), "next": "//evil.example/x"},
            from_page="/signin",
        )
        assert evil.status_code == 303
        assert evil.headers["location"] == "/"


def test_sign_in_rotates_the_session_id(live_server: str, web_vault: WebVault) -> None:
    with new_client(live_server) as client:
        client.get("/signin")
        before = client.cookies[COOKIE_PLAIN]
        assert attempt(client, web_vault.helpdesk).status_code == 303
        after = client.cookies[COOKIE_PLAIN]
        assert after != before
        assert is_signed_in(client)
    # The pre-sign-in id is worth nothing afterwards (no session fixation).
    with new_client(live_server) as planted:
        planted.cookies.set(COOKIE_PLAIN, before)
        assert not is_signed_in(planted)


@pytest.mark.parametrize("wrong", ["password", "code", "name"])
def test_a_wrong_password_code_or_name_is_refused_alike(
    live_server: str, web_vault: WebVault, wrong: str
) -> None:
    operator = web_vault.helpdesk
    with new_client(live_server) as client:
        fields = {"name": operator.name, "password": operator.password, "code": ""}
        if wrong == "password":
            fields["password"] = "not the password at all"
        elif wrong == "code":
            fields["code"] = operator.wrong_code()
        else:
            fields["name"] = "nobody"
        fields["code"] = fields["code"] or operator.next_code()
        response = post_form(client, "/signin", fields, from_page="/signin")
        assert response.status_code == 401
        assert GENERIC_REFUSAL in response.text
        assert not is_signed_in(client)


def test_repeated_failures_lock_the_account(live_server: str, web_vault: WebVault) -> None:
    operator = web_vault.helpdesk
    with new_client(live_server) as client:
        for _ in range(5):  # vault.operators.MAX_FAILURES
            failed = attempt(client, operator, password="wrong password!!", code="000000")
            assert failed.status_code == 401
        locked = attempt(client, operator)  # the right password and a fresh code
        assert locked.status_code == 401
        assert not is_signed_in(client)


def test_sign_in_rate_limit_per_address_is_shared_by_instances(
    web_vault: WebVault, tmp_path: Path
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    config = web_vault.config(
        signin_failures_per_ip=3, alerts=AlertSettings(jsonl_path=str(alerts))
    )
    nobody = Operator("nobody", "helpdesk", "irrelevant password", b"0" * 20)
    with serve_app(create_app(config)) as first, serve_app(create_app(config)) as second:
        with new_client(first) as client:
            for _ in range(2):
                assert attempt(client, nobody, code="123456").status_code == 401
        with new_client(second) as client:
            assert attempt(client, nobody, code="123456").status_code == 401
            # The fourth try, on either instance, is refused before any password is checked,
            # even with the right credentials of another operator.
            throttled = attempt(client, web_vault.admin)
            assert throttled.status_code == 429
            assert "too many failed sign-ins from this address" in throttled.text
        with new_client(first) as client:
            assert attempt(client, web_vault.helpdesk).status_code == 429
    # One alert when the limit was reached, not one per refused attempt; no password in it.
    events = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert [(e["event"], e["client"], e["operator"]) for e in events] == [
        ("console.signin_throttled", "127.0.0.1", "nobody")
    ]
    assert "irrelevant password" not in alerts.read_text()


def test_sign_in_rate_limit_per_name(web_vault: WebVault) -> None:
    config = web_vault.config(signin_failures_per_name=2, signin_failures_per_ip=100)
    with serve_app(create_app(config)) as base_url, new_client(base_url) as client:
        for _ in range(2):
            failed = attempt(client, web_vault.auditor, password="wrong password!!", code="1")
            assert failed.status_code == 401
        throttled = attempt(client, web_vault.auditor)
        assert throttled.status_code == 429
        assert "too many failed sign-ins for this name" in throttled.text
        assert attempt(client, web_vault.admin).status_code == 303  # another name still works


def test_sign_out_ends_the_session_on_the_server(
    live_server: str, admin_client: httpx.Client
) -> None:
    cookie = admin_client.cookies[COOKIE_PLAIN]
    response = post_form(admin_client, "/signout", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin"
    assert not is_signed_in(admin_client)
    with new_client(live_server) as replay:  # a copy of the old cookie is worthless too
        replay.cookies.set(COOKIE_PLAIN, cookie)
        assert not is_signed_in(replay)


def test_session_expires_after_inactivity(web_vault: WebVault) -> None:
    config = web_vault.config(session_idle=timedelta(seconds=2))
    with serve_app(create_app(config)) as base_url:
        client = sign_in(base_url, web_vault.admin)
        for _ in range(3):  # activity keeps it alive past the idle timeout
            time.sleep(0.8)
            assert is_signed_in(client)
        time.sleep(2.5)
        assert not is_signed_in(client)
        client.close()


def test_session_ends_after_its_absolute_lifetime(web_vault: WebVault) -> None:
    config = web_vault.config(session_lifetime=timedelta(seconds=2))
    with serve_app(create_app(config)) as base_url:
        client = sign_in(base_url, web_vault.admin)
        assert is_signed_in(client)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            time.sleep(0.5)
            client.get("/")
        assert not is_signed_in(client)
        client.close()


@pytest.mark.postgres
def test_a_session_is_valid_on_another_instance_of_the_same_postgresql_vault(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    location = VaultLocation(postgres.create_database(), tmp_path / "vault.key", None)
    web_vault = make_web_vault(location)
    config = web_vault.config()
    with serve_app(create_app(config)) as first, serve_app(create_app(config)) as second:
        client = sign_in(first, web_vault.helpdesk)
        cookie = client.cookies[COOKIE_PLAIN]
        with new_client(second) as other:
            other.cookies.set(COOKIE_PLAIN, cookie)
            assert is_signed_in(other)
            # Signing out through the second instance ends it on the first one as well.
            assert post_form(other, "/signout", {}).status_code == 303
        assert not is_signed_in(client)
        client.close()
