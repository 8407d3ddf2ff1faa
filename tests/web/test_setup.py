"""The first admin's one-time set-up link: works once, expires, only while there is no operator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from oathdesk.vault.console import create_setup_token
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Vault
from oathdesk.web.app import create_app
from oathdesk.web.config import WebConfig
from tests.web.conftest import WebVault, new_client, operator_from_qr, post_form, serve_app

PASSWORD = "first admin's passphrase 2026"
SERVER_OPERATOR = Actor("local:helpdesk", "admin")


def new_link(config: WebConfig, lifetime: timedelta = timedelta(minutes=30)) -> str:
    vault = Vault.open(config.location, config.master_key)
    try:
        return create_setup_token(vault, SERVER_OPERATOR, lifetime=lifetime)
    finally:
        vault.close()


@pytest.fixture
def empty_server(empty_web_config: WebConfig) -> Iterator[str]:
    with serve_app(create_app(empty_web_config)) as base_url:
        yield base_url


def set_up(client: httpx.Client, token: str, name: str = "root-admin") -> httpx.Response:
    # The CSRF token from the sign-in form: the set-up page itself may refuse to show.
    return post_form(
        client,
        f"/setup/{token}",
        {"name": name, "password": PASSWORD, "repeat": PASSWORD},
        from_page="/signin",
    )


def test_the_link_creates_the_first_admin_once(
    empty_server: str, empty_web_config: WebConfig
) -> None:
    token = new_link(empty_web_config)
    with new_client(empty_server) as client:
        form = client.get(f"/setup/{token}")
        assert form.status_code == 200
        assert "Set up the first admin" in form.text
        created = set_up(client, token)
        assert created.status_code == 303
        assert created.headers["location"] == "/enrol"
        enrol = client.get("/enrol")
        assert enrol.status_code == 200
        admin = operator_from_qr(enrol.text, "root-admin", "admin", PASSWORD)

        wrong = post_form(
            client, "/enrol", {"password": PASSWORD, "code": admin.wrong_code()}, from_page="/enrol"
        )
        assert wrong.status_code == 401
        assert operator_from_qr(wrong.text, "root-admin", "admin", PASSWORD).secret == admin.secret

        confirmed = post_form(
            client, "/enrol", {"password": PASSWORD, "code": admin.next_code()}, from_page="/enrol"
        )
        assert confirmed.status_code == 303
        assert confirmed.headers["location"] == "/operators"
        page = client.get("/operators")
        assert page.status_code == 200
        assert "Welcome, root-admin" in page.text
        assert client.get("/enrol").status_code == 400  # the QR code is not shown again

    with new_client(empty_server) as stranger:  # the same link, a second time
        used = stranger.get(f"/setup/{token}")
        assert used.status_code == 404
        assert "this set-up link was used already or has expired" in used.text
        assert set_up(stranger, token, "mallory").status_code == 404

    vault = Vault.open(empty_web_config.location, empty_web_config.master_key)
    try:
        assert [(o.name, o.role.value) for o in OperatorDirectory(vault).list()] == [
            ("root-admin", "admin")
        ]
        actions = [(r["actor"], r["action"]) for r in vault.export_audit()]
        assert ("local:helpdesk", "console.setup_link_created") in actions
        assert ("setup-link", "console.setup_link_used") in actions
        assert ("setup-link", "operator.added") in actions
        assert ("root-admin", "operator.signed_in") in actions
        assert token not in json.dumps(vault.export_audit())  # only its hash is stored
    finally:
        vault.close()


def test_one_admin_made_spends_every_other_link(
    empty_server: str, empty_web_config: WebConfig
) -> None:
    first, second = new_link(empty_web_config), new_link(empty_web_config)
    with new_client(empty_server) as client:
        assert set_up(client, second).status_code == 303
    with new_client(empty_server) as client:
        assert client.get(f"/setup/{first}").status_code == 404


def test_an_expired_link_is_refused(empty_server: str, empty_web_config: WebConfig) -> None:
    token = new_link(empty_web_config, lifetime=timedelta(seconds=1))
    with new_client(empty_server) as client:
        assert client.get(f"/setup/{token}").status_code == 200
        time.sleep(1.2)
        assert client.get(f"/setup/{token}").status_code == 404
        assert set_up(client, token).status_code == 404


def test_a_weak_password_keeps_the_link_usable(
    empty_server: str, empty_web_config: WebConfig
) -> None:
    token = new_link(empty_web_config)
    with new_client(empty_server) as client:
        weak = post_form(
            client,
            f"/setup/{token}",
            {"name": "root", "password": "short", "repeat": "short"},
            from_page=f"/setup/{token}",
        )
        assert weak.status_code == 400
        assert "at least 12 characters" in weak.text
        assert set_up(client, token).status_code == 303


def test_no_link_works_once_the_vault_has_operators(live_server: str, web_vault: WebVault) -> None:
    token = new_link(web_vault.config())
    with new_client(live_server) as client:
        assert client.get(f"/setup/{token}").status_code == 404
