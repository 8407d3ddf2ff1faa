"""Token actions in the console along the lifecycle, each a POST with CSRF; destructive ones
behind a confirmation page; refusals shown on the form."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from oathdesk.seed import encode_base32
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import NewToken
from tests.web.conftest import LOCAL_ADMIN, WebVault
from tests.web.helpdesk_support import (
    HELGA,
    HELGA_SERIAL,
    OLAF,
    STOCK_SERIAL,
    oathtool,
    populate,
    submit,
    text_of,
)
from tests.window_codes import code_absent_from_window

STOCK_SECRET = encode_base32(bytes([9]) * 20)


@pytest.fixture(autouse=True)
def _tokens(web_vault: WebVault) -> None:
    populate(web_vault)


def state_of(web_vault: WebVault, serial: str) -> str:
    vault = web_vault.open()
    try:
        return vault.get_token(serial).state.value
    finally:
        vault.close()


def act(client: httpx.Client, serial: str, action: str, **fields: str) -> httpx.Response:
    return submit(client, f"/tokens/{serial}/{action}", fields, from_page=f"/tokens/{serial}")


def test_a_classic_token_from_stock_to_purge(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    assigned = act(admin_client, STOCK_SERIAL, "assign", upn=OLAF)
    assert assigned.status_code == 303
    assert assigned.headers["location"] == f"/users/{OLAF}"
    assert state_of(web_vault, STOCK_SERIAL) == "assigned"
    assert "is assigned to olaf@contoso.com" in admin_client.get(f"/users/{OLAF}").text  # flash

    assert act(admin_client, STOCK_SERIAL, "registered").status_code == 303
    no_tracking = act(admin_client, STOCK_SERIAL, "ship", carrier="DHL", tracking="")
    assert no_tracking.status_code == 400
    assert "tracking reference" in text_of(no_tracking.text, "form-error")
    assert 'value="DHL"' in no_tracking.text  # what was typed is kept
    assert act(admin_client, STOCK_SERIAL, "ship", carrier="DHL", tracking="JD9").status_code == 303
    assert state_of(web_vault, STOCK_SERIAL) == "shipped"

    unchecked = act(admin_client, STOCK_SERIAL, "deliver")
    assert unchecked.status_code == 403
    assert "not confirmed working" in text_of(unchecked.text, "form-error")

    # Not "000000": the check searches +-1 day (2,880 steps, one more if a step begins), where
    # any fixed code occurs about 0.6% of the time.
    absent = code_absent_from_window(bytes([9]) * 20, int(time.time()) // 30, 2881, 2881)
    wrong = act(admin_client, STOCK_SERIAL, "verify", code=absent)
    assert wrong.status_code == 303
    page = admin_client.get(wrong.headers["location"])
    assert "no match" in page.text
    right = act(admin_client, STOCK_SERIAL, "verify", code=oathtool(STOCK_SECRET, time.time()))
    assert right.status_code == 303
    page = admin_client.get(right.headers["location"])
    # +0 s, or -30 s if the step turned between oathtool and the server: inside either way.
    assert re.search(r"match, drift (\+0|-30) s, inside the entra sign-in window", page.text)
    assert act(admin_client, STOCK_SERIAL, "deliver").status_code == 303
    assert state_of(web_vault, STOCK_SERIAL) == "delivered"

    confirm = admin_client.get(f"/tokens/{STOCK_SERIAL}/purge")
    assert confirm.status_code == 200
    assert "erases the token's seed for good" in text_of(confirm.text, "confirm-warning")
    assert state_of(web_vault, STOCK_SERIAL) == "delivered"  # asking changed nothing
    purged = act(admin_client, STOCK_SERIAL, "purge", reason="delivered and working")
    assert purged.status_code == 303
    assert state_of(web_vault, STOCK_SERIAL) == "secret_purged"


def test_programmable_token_burned_then_lost(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    vault = web_vault.open()
    try:
        vault.add_token(
            LOCAL_ADMIN,
            NewToken("P-100", "Token2", "miniOTP-3", TokenKind.PROGRAMMABLE, bytes([3]) * 20),
        )
    finally:
        vault.close()
    assert act(admin_client, "P-100", "assign", upn=HELGA).status_code == 303
    assert act(admin_client, "P-100", "burned").status_code == 303
    assert state_of(web_vault, "P-100") == "burned"
    assert "Lost…" in admin_client.get(f"/users/{HELGA}").text
    confirm = admin_client.get("/tokens/P-100/lost")
    assert 'name="reason"' in confirm.text
    no_reason = act(admin_client, "P-100", "lost")
    assert no_reason.status_code == 400
    assert state_of(web_vault, "P-100") == "burned"
    assert act(admin_client, "P-100", "lost", reason="left on a train").status_code == 303
    assert state_of(web_vault, "P-100") == "lost"


def test_refusals_roles_csrf_and_stale_forms(
    helpdesk_client: httpx.Client, admin_client: httpx.Client, web_vault: WebVault
) -> None:
    # A helpdesk operator may not purge or declare a token lost: the vault says so.
    refused = act(helpdesk_client, HELGA_SERIAL, "lost", reason="user says so")
    assert refused.status_code == 403
    assert "may not manage tokens" in text_of(refused.text, "form-error")
    assert state_of(web_vault, HELGA_SERIAL) == "shipped"
    # An illegal move names the allowed next steps.
    illegal = act(admin_client, HELGA_SERIAL, "burned")
    assert illegal.status_code == 409
    assert "next it can be" in text_of(illegal.text, "form-error")
    # A form shown before someone else changed the token is refused, not applied.
    stale = act(admin_client, HELGA_SERIAL, "lost", reason="x", version="1")
    assert stale.status_code == 409
    assert "changed meanwhile" in text_of(stale.text, "form-error")
    # No CSRF token, no change.
    forged = admin_client.post(f"/tokens/{HELGA_SERIAL}/lost", data={"reason": "forged"})
    assert forged.status_code in (400, 403)
    assert state_of(web_vault, HELGA_SERIAL) == "shipped"
    # Unknown actions are refused in one line.
    unknown = act(admin_client, HELGA_SERIAL, "explode")
    assert unknown.status_code == 400
    assert "unknown token action" in unknown.text
