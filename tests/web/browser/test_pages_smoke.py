"""Every main page of the console renders in Chromium with no console error, no uncaught
exception and no Content-Security-Policy violation (no inline script or style anywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page

from oathdesk.web.app import create_app
from tests.web.browser.conftest import PageWatch, Shoot, new_context, watch
from tests.web.conftest import WebVault, serve_app
from tests.web.helpdesk_support import HELGA, HELGA_SERIAL, OLAF_SERIAL, populate

pytestmark = pytest.mark.browser

# (path, screenshot name or None, a selector the page must show)
ADMIN_PAGES = [
    ("/", "home", "main h1"),
    ("/search?q=contoso", None, "#user-results"),
    (f"/users/{HELGA}", None, "#user-tokens"),
    (f"/users/{HELGA}/reveal", None, "#reveal-form"),
    (f"/tokens/{HELGA_SERIAL}", "token", "main h1"),
    ("/import", None, "#import-form"),
    ("/export", "export", "main form"),
    ("/entra", None, "#sync-form"),
    ("/audit", "audit", "#audit-log"),
    ("/drift", "drift", "#drift-report"),
    ("/settings", "settings", "main form"),
    ("/operators", None, "#operators"),
    ("/toolset", None, "#seed"),
]
SIGNED_OUT_PAGES = [("/signin", "input[name=code]"), ("/toolset", "#seed")]


@pytest.fixture(scope="module")
def populated_server(module_web_vault: WebVault) -> Iterator[str]:
    """The console over a vault with users, tokens in several states and drift measurements."""
    populate(module_web_vault)
    now = datetime.now(UTC)
    vault = module_web_vault.open()
    try:
        helga = vault.get_token(HELGA_SERIAL)
        olaf = vault.get_token(OLAF_SERIAL)
        with vault.transaction() as conn:
            for days, drift in ((90, 0), (60, 10), (30, 20), (1, 40)):
                vault.record_drift(conn, helga, drift, measured_at=now - timedelta(days=days))
            vault.record_drift(conn, olaf, -5, measured_at=now - timedelta(days=2))
    finally:
        vault.close()
    with serve_app(create_app(module_web_vault.config())) as base_url:
        yield base_url


def assert_clean(page: Page, seen: PageWatch, path: str) -> None:
    assert seen.errors == [], f"{path}: {seen.errors}"
    inline = page.evaluate(
        "() => [document.querySelectorAll('script:not([src])').length,"
        " document.querySelectorAll('[style]').length, document.querySelectorAll('style').length]"
    )
    assert inline == [0, 0, 0], f"{path}: inline script/style {inline}"


def test_every_main_page_renders_cleanly_for_an_admin(
    browser: Browser, populated_server: str, module_web_vault: WebVault, shoot: Shoot
) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        seen = watch(page)
        admin = module_web_vault.admin
        page.goto(f"{populated_server}/signin")
        page.fill("input[name=name]", admin.name)
        page.fill("input[name=password]", admin.password)
        page.fill("input[name=code]", admin.next_code())
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert page.locator("form.signout").count() == 1, page.inner_text("main")
        for path, screenshot, selector in ADMIN_PAGES:
            response = page.goto(f"{populated_server}{path}")
            assert response is not None
            assert response.status == 200, f"{path}: {response.status}"
            page.wait_for_selector(selector)
            page.wait_for_load_state("networkidle")
            assert_clean(page, seen, path)
            if screenshot:
                shoot(page, screenshot)
    finally:
        context.close()


@pytest.mark.parametrize(("path", "selector"), SIGNED_OUT_PAGES)
def test_pages_without_sign_in_render_cleanly(
    path: str, selector: str, page: Page, page_watch: PageWatch, populated_server: str
) -> None:
    response = page.goto(f"{populated_server}{path}")
    assert response is not None
    assert response.status == 200
    page.wait_for_selector(selector)
    page.wait_for_load_state("networkidle")
    assert_clean(page, page_watch, path)


def test_a_csp_violation_would_be_caught(
    page: Page, page_watch: PageWatch, populated_server: str
) -> None:
    """The watcher is not blind: an inline script injected into a page is refused and reported."""
    page.goto(f"{populated_server}/signin")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_function("() => true")
    assert page.evaluate("() => window.x") is None
    assert any("Content Security Policy" in e or "CSP violation" in e for e in page_watch.errors)
