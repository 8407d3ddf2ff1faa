"""The start page: token counts per state and the tokens to chase, from the vault as it is."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import sqlalchemy as sa

from oathdesk.vault.housekeeping import COUNTED_UP_TO
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import utc_now
from oathdesk.vault.schema import tokens
from tests.vault.conftest import UPN, classic, programmable
from tests.web.conftest import LOCAL_ADMIN, WebVault


def stat(page: str, state: str) -> int:
    found = re.search(rf'data-state="{state}"><span class="number">(\d+)</span>', page)
    assert found, f"no count for {state}"
    return int(found.group(1))


def test_dashboard_counts_states_and_lists_late_tokens(
    web_vault: WebVault, admin_client: httpx.Client, helpdesk_client: httpx.Client
) -> None:
    vault = web_vault.open()
    try:
        vault.add_user(LOCAL_ADMIN, UPN)
        vault.add_tokens(LOCAL_ADMIN, [programmable("p1"), programmable("p2"), programmable("p3")])
        vault.add_tokens(LOCAL_ADMIN, [classic("c1"), classic("c2")])
        vault.move(LOCAL_ADMIN, "p1", TokenState.BURNED)
        vault.move(LOCAL_ADMIN, "p2", TokenState.LOST)
        long_ago = utc_now() - timedelta(days=vault.settings().undelivered_warning_days + 3)
        with vault.transaction() as conn:
            conn.execute(
                sa.update(tokens)
                .where(tokens.c.serial.in_(["p1", "p3"]))
                .values(assigned_at=long_ago)
            )
        expected_late = sorted(token.serial for token in vault.undelivered())
    finally:
        vault.close()
    assert expected_late == ["p1", "p3"]

    page = helpdesk_client.get("/").text
    assert stat(page, "assigned") == 1
    assert stat(page, "burned") == 1
    assert stat(page, "lost") == 1
    assert stat(page, "in_stock") == 2
    assert stat(page, "delivered") == 0
    assert "(5 in all)" in page
    late = re.search(r'<table id="undelivered">(.*?)</table>', page, re.DOTALL)
    assert late
    assert sorted(re.findall(r'href="/tokens/([^"]+)"', late.group(1))) == expected_late
    assert 'action="/search"' in page
    assert admin_client.get("/").status_code == 200


def test_an_auditor_sees_no_token_data(auditor_client: httpx.Client) -> None:
    page = auditor_client.get("/")
    assert page.status_code == 200
    assert "Tokens by state" not in page.text
    assert 'href="/audit"' in page.text
    assert 'href="/operators"' not in page.text


def test_the_late_count_stops_past_its_bound(
    web_vault: WebVault, helpdesk_client: httpx.Client
) -> None:
    """A page counts late tokens up to COUNTED_UP_TO and then says "more than": the view reads
    that many index entries, not every late token of a big vault."""
    vault = web_vault.open()
    try:
        many = COUNTED_UP_TO + 2
        owned = [programmable(f"L{n:05d}", upn=f"late{n}@contoso.com") for n in range(many)]
        vault.add_tokens(LOCAL_ADMIN, owned, create_missing_users=True)
        long_ago = utc_now() - timedelta(days=vault.settings().undelivered_warning_days + 3)
        with vault.transaction() as conn:
            conn.execute(sa.update(tokens).values(assigned_at=long_ago))
    finally:
        vault.close()

    page = helpdesk_client.get("/").text

    assert stat(page, "assigned") == many  # the states are counted exactly
    assert f"({many} in all)" in page
    assert f'days <small class="muted">(more than {COUNTED_UP_TO})</small>' in page
    assert "and more than 980 more" in page  # 20 listed
