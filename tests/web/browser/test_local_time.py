"""Times in the console are shown in the operator's own time zone, from the browser, with the
zone's name, and in UTC on hover (static/localtime.js over the server's <time> elements)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page

from oathdesk.web.app import create_app
from tests.web.browser.conftest import CSP_LISTENER, VIEWPORT, watch
from tests.web.conftest import WebVault, serve_app
from tests.web.helpdesk_support import HELGA, HELGA_SERIAL, populate

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(module_web_vault: WebVault) -> Iterator[str]:
    populate(module_web_vault)
    with serve_app(create_app(module_web_vault.config())) as base_url:
        yield base_url


def signed_in_page(browser: Browser, base_url: str, operator: object, zone: str) -> Page:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id=zone)
    context.add_init_script(CSP_LISTENER)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base_url}/signin")
    page.fill("input[name=name]", operator.name)  # type: ignore[attr-defined]
    page.fill("input[name=password]", operator.password)  # type: ignore[attr-defined]
    page.fill("input[name=code]", operator.next_code())  # type: ignore[attr-defined]
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    return page


def shown_times(page: Page) -> list[tuple[str, str, str]]:
    """(datetime attribute, text, title) of every localised <time> on the page."""
    found: list[tuple[str, str, str]] = page.eval_on_selector_all(
        "time[data-local]",
        "els => els.map(e => [e.getAttribute('datetime'), e.textContent, e.title])",
    )
    return [tuple(item) for item in found]  # type: ignore[misc]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC"])
def test_times_are_shown_in_the_browsers_zone_with_its_name(
    browser: Browser, server: str, module_web_vault: WebVault, zone: str
) -> None:
    page = signed_in_page(browser, server, module_web_vault.admin, zone)
    try:
        seen = watch(page)
        for path in (f"/users/{HELGA}", f"/tokens/{HELGA_SERIAL}", "/audit", "/operators"):
            page.goto(f"{server}{path}")
            page.wait_for_load_state("networkidle")
            times = shown_times(page)
            assert times, f"{path}: no <time> elements"
            for stamp, text, title in times:
                moment = datetime.fromisoformat(stamp).astimezone(ZoneInfo(zone))
                with_seconds = text.count(":") == 2
                layout = "%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M"
                # The zone's own abbreviation (CET in winter, CEST in summer), as Python names it.
                assert text == f"{moment.strftime(layout)} {moment.tzname()}", (path, stamp, text)
                utc = datetime.fromisoformat(stamp).strftime(layout)
                assert title == f"{utc} UTC (shown in {zone})", (path, title)
        assert seen.errors == []
    finally:
        page.context.close()
