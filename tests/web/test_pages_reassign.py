"""Reassigning a programmable token to another user from the console: the same vault operation
as `oathdesk token reassign --generate` (new seed, old one erased, audited), offered only for
programmable tokens and only to admins, within the tokens-per-user limit."""

from __future__ import annotations

import httpx
import pytest

from oathdesk.seed import encode_base32
from tests.web.conftest import LOCAL_ADMIN, WebVault
from tests.web.helpdesk_support import (
    HELGA,
    HELGA_SECRET,
    HELGA_SERIAL,
    OLAF,
    OLAF_SERIAL,
    element,
    populate,
    submit,
    text_of,
)


@pytest.fixture(autouse=True)
def _tokens(web_vault: WebVault) -> None:
    populate(web_vault)


def reassign(client: httpx.Client, serial: str, upn: str) -> httpx.Response:
    return submit(
        client, f"/tokens/{serial}/reassign", {"upn": upn}, from_page=f"/tokens/{serial}/reassign"
    )


def test_an_admin_reassigns_a_programmable_token_with_a_new_seed(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    token_page = admin_client.get(f"/tokens/{HELGA_SERIAL}").text
    assert f'href="/tokens/{HELGA_SERIAL}/reassign"' in token_page
    confirm = admin_client.get(f"/tokens/{HELGA_SERIAL}/reassign")
    assert "burn it again" in text_of(confirm.text, "confirm-warning")
    done = reassign(admin_client, HELGA_SERIAL, OLAF)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/users/{OLAF}"
    assert "reassigned to olaf@contoso.com" in admin_client.get(f"/users/{OLAF}").text
    vault = web_vault.open()
    try:
        token = vault.get_token(HELGA_SERIAL)
        assert (token.upn, token.state.value, token.has_secret) == (OLAF, "assigned", True)
        with vault.unit_of_work(LOCAL_ADMIN) as work:
            secret = work.read_secret(work.token(HELGA_SERIAL), purpose="test")
        assert secret != HELGA_SECRET
        assert len(secret) == 20  # sized for SHA-1
        (record,) = vault.export_audit(action="token.reassigned")
        assert (record["upn"], record["serial"]) == (OLAF, HELGA_SERIAL)
    finally:
        vault.close()
    assert f'data-serial="{HELGA_SERIAL}"' not in admin_client.get(f"/users/{HELGA}").text
    # The new seed is never shown: it reaches the token by burning it.
    assert encode_base32(secret) not in confirm.text + done.text


def test_reassign_is_offered_only_where_it_can_be_done(
    admin_client: httpx.Client, helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    # A classic token has its seed from the factory: nothing to reassign.
    assert f"/tokens/{OLAF_SERIAL}/reassign" not in admin_client.get(f"/users/{OLAF}").text
    refused = reassign(admin_client, OLAF_SERIAL, HELGA)
    assert refused.status_code == 409
    assert "only programmable tokens" in text_of(refused.text, "form-error")
    # Helpdesk operators move tokens through shipping only.
    assert "/reassign" not in helpdesk_client.get(f"/users/{HELGA}").text
    assert reassign(helpdesk_client, HELGA_SERIAL, OLAF).status_code == 403
    unknown = reassign(admin_client, HELGA_SERIAL, "nobody@contoso.com")
    assert unknown.status_code == 404
    assert element(unknown.text, "form-error") is not None
    vault = web_vault.open()
    try:
        assert vault.get_token(HELGA_SERIAL).upn == HELGA
        assert vault.export_audit(action="token.reassigned") == []
    finally:
        vault.close()


def test_reassign_keeps_the_tokens_per_user_limit(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    # As for assign: the new user may not end up over max_tokens_per_user.
    vault = web_vault.open()
    try:
        vault.update_settings(LOCAL_ADMIN, max_tokens_per_user=1)
    finally:
        vault.close()
    refused = reassign(admin_client, HELGA_SERIAL, OLAF)
    assert refused.status_code == 409
    assert "already has 1 tokens, the limit" in text_of(refused.text, "form-error")
    vault = web_vault.open()
    try:
        assert vault.get_token(HELGA_SERIAL).upn == HELGA
    finally:
        vault.close()
