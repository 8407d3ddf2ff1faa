"""The console's overview page in Chromium: a helpdesk operator signs in, opens it from the
navigation, and reads the figures (tokens per state, what waits too long, seeds due, Entra's
view) with no console error and no CSP violation; the housekeeping page beside it for an admin.
Screenshots go to docs/screenshots when OATHDESK_SCREENSHOTS is set."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page

from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import run_cycle
from oathdesk.vault.models import utc_now
from oathdesk.vault.schema import tokens
from oathdesk.web.app import create_app
from tests.web.browser.conftest import Shoot, new_context, watch
from tests.web.browser.test_pages_smoke import assert_clean
from tests.web.conftest import Operator, WebVault, serve_app
from tests.web.helpdesk_support import HELGA_SERIAL, populate

pytestmark = pytest.mark.browser

# Whichever state the populated token is in, it entered it 45 days ago.
STAMPS = ("assigned_at", "burned_at", "registered_at", "shipped_at")


@pytest.fixture(scope="module")
def overview_server(module_web_vault: WebVault) -> Iterator[str]:
    """Tokens in several states, one of them waiting for its user for 45 days, and two
    runs of one slot's housekeeping cycle (the second finds it done)."""
    populate(module_web_vault)
    vault = module_web_vault.open()
    try:
        with vault.transaction() as conn:
            conn.execute(
                sa.update(tokens)
                .where(tokens.c.serial == HELGA_SERIAL)
                .values({column: utc_now() - timedelta(days=45) for column in STAMPS})
            )
        sink = AlertSink(AlertSettings(), vault)
        moment = utc_now()  # one moment: both runs fall in the same slot, at any time of day
        for _ in range(2):
            run_cycle(vault, sink, interval=timedelta(hours=1), now=lambda: moment)
    finally:
        vault.close()
    with serve_app(create_app(module_web_vault.config())) as base_url:
        yield base_url


def _sign_in(page: Page, base_url: str, operator: Operator) -> None:
    page.goto(f"{base_url}/signin")
    page.fill("input[name=name]", operator.name)
    page.fill("input[name=password]", operator.password)
    page.fill("input[name=code]", operator.next_code())
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def test_a_helpdesk_operator_reads_the_overview(
    browser: Browser, overview_server: str, module_web_vault: WebVault, shoot: Shoot
) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        seen = watch(page)
        _sign_in(page, overview_server, module_web_vault.helpdesk)
        with page.expect_navigation():
            page.click("nav >> text=Overview")
        page.wait_for_selector("#states")
        page.wait_for_load_state("networkidle")
        assert_clean(page, seen, "/overview")
        since = [
            # ISO from a <time> element when the page shows local times, else the UTC text
            row.locator("td")
            .nth(2)
            .evaluate("td => td.querySelector('time')?.getAttribute('datetime') ?? td.textContent")
            for row in page.locator("#states tbody tr").all()
        ]
        assert since == sorted(since)  # longest waiting first
        assert "45 d" in page.inner_text("#states")  # Helga's token, assigned 45 days ago
        assert HELGA_SERIAL in page.inner_text("#late")
        assert page.inner_text("#purge-due").strip().isdigit()
        assert "No sync yet" in page.inner_text("#entra")
        assert page.locator("nav >> text=Housekeeping").count() == 0  # audit records: not theirs
        shoot(page, "overview")
    finally:
        context.close()


def test_an_admin_reads_the_last_cycles(
    browser: Browser, overview_server: str, module_web_vault: WebVault, shoot: Shoot
) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        seen = watch(page)
        _sign_in(page, overview_server, module_web_vault.admin)
        with page.expect_navigation():
            page.click("nav >> text=Housekeeping")
        page.wait_for_selector("#cycles")
        page.wait_for_load_state("networkidle")
        assert_clean(page, seen, "/housekeeping")
        assert page.locator("#cycles tbody tr").count() == 1  # the second found the slot done
        assert "Next cycle due" in page.inner_text("#next-due")
        assert "audit_chain: intact_through_record" in page.inner_text("#cycles")
        shoot(page, "housekeeping")
    finally:
        context.close()
