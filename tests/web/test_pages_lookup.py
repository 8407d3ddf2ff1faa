"""Search and the user and token pages, against a live server."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import WebVault
from tests.web.helpdesk_support import (
    HELGA,
    HELGA_SERIAL,
    OLAF,
    OLAF_SERIAL,
    STOCK_SERIAL,
    populate,
    table_rows,
    text_of,
)


@pytest.fixture(autouse=True)
def _tokens(web_vault: WebVault) -> None:
    populate(web_vault)


@pytest.mark.parametrize(
    ("query", "users", "serials"),
    [
        ("HELGA@contoso", [HELGA], []),  # part of a UPN, any case
        ("braun", [HELGA], []),  # display name
        ("Olaf B", [OLAF], []),  # display name with a space
        ("0234", [], [OLAF_SERIAL]),  # part of a serial
        ("JD0146", [], [HELGA_SERIAL]),  # tracking reference
        ("%%%", [], []),  # taken literally, not as a wildcard
        ('"OR', [], []),  # not search syntax either
    ],
)
def test_search_finds_by_each_field(
    helpdesk_client: httpx.Client, query: str, users: list[str], serials: list[str]
) -> None:
    page = helpdesk_client.get("/search", params={"q": query})
    assert page.status_code == 200
    found_users = [row[0] for row in table_rows(page.text, "user-results")] if users else []
    found_tokens = [row[0] for row in table_rows(page.text, "token-results")] if serials else []
    assert found_users == users
    assert found_tokens == serials
    if not users:
        assert 'id="user-results"' not in page.text
    if not serials:
        assert 'id="token-results"' not in page.text


def test_user_page_lists_tokens_with_state_shipping_and_actions(
    helpdesk_client: httpx.Client,
) -> None:
    page = helpdesk_client.get(f"/users/{HELGA}")
    assert page.status_code == 200
    assert text_of(page.text, "user-upn") == HELGA
    rows = table_rows(page.text, "user-tokens")
    assert len(rows) == 1
    serial, model, state, shipping, drift, held, actions = rows[0]
    assert serial == HELGA_SERIAL
    assert "miniOTP-2-i" in model
    assert state.startswith("shipped")
    assert "DHL JD014600003" in shipping
    assert drift == "not measured"
    assert held == "yes"
    # A helpdesk operator may check a code and confirm delivery; lost and revoke are admin's.
    assert "Check a code" in actions
    assert "Delivered" in actions
    assert "Lost" not in actions
    assert 'id="reveal-link"' in page.text
    # Recent events about her and her token.
    assert "token.shipped" in page.text


def test_admin_sees_admin_actions_and_stock_token_page(admin_client: httpx.Client) -> None:
    page = admin_client.get(f"/users/{HELGA}")
    assert "Lost…" in page.text
    assert "Revoke…" in page.text
    stock = admin_client.get(f"/tokens/{STOCK_SERIAL}")
    assert stock.status_code == 200
    assert "in_stock" in stock.text
    assert "Assign to a user" in stock.text
    assert "Seed burned" not in stock.text  # a classic token has a factory seed


def test_one_or_two_characters_ask_for_a_third(helpdesk_client: httpx.Client) -> None:
    page = helpdesk_client.get("/search", params={"q": "he"})
    assert page.status_code == 200
    assert "Type at least 3 characters" in text_of(page.text, "too-short")
    assert 'id="user-results"' not in page.text
    assert 'id="token-results"' not in page.text


def test_unknown_user_is_a_404_page(helpdesk_client: httpx.Client) -> None:
    page = helpdesk_client.get("/users/nobody@contoso.com")
    assert page.status_code == 404
    assert "no user nobody@contoso.com" in page.text


def test_auditor_may_not_look_up(auditor_client: httpx.Client) -> None:
    assert auditor_client.get("/search", params={"q": "helga"}).status_code == 403
    assert auditor_client.get(f"/users/{HELGA}").status_code == 403
