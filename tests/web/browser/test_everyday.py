"""Everyday console work in Chromium (issue 16): an admin edits a user's phone number on file
(the reveal form then stops warning about it), reassigns a programmable token, and adds an
operator whose enrolment page offers the secret as text under "Can't scan?"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from oathdesk.web.app import create_app
from tests.web.browser.conftest import PageWatch, new_context, watch
from tests.web.conftest import WebVault, serve_app
from tests.web.helpdesk_support import HELGA_SERIAL, OLAF, populate

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(module_web_vault: WebVault) -> Iterator[str]:
    populate(module_web_vault)
    with serve_app(create_app(module_web_vault.config())) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def admin_session(browser: Browser, server: str, module_web_vault: WebVault) -> Any:
    """The admin signed in once for the module (each sign-in spends a TOTP step, so a third
    one would wait for the next step): the session's cookies, for each test's own context."""
    context = new_context(browser)
    page = context.new_page()
    admin = module_web_vault.admin
    page.goto(f"{server}/signin")
    page.fill("input[name=name]", admin.name)
    page.fill("input[name=password]", admin.password)
    page.fill("input[name=code]", admin.next_code())
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def admin_page(browser: Browser, admin_session: Any) -> Iterator[Page]:
    context = new_context(browser, storage_state=admin_session)
    yield context.new_page()
    context.close()


def clean(seen: PageWatch, *, refused_forms: int = 0) -> None:
    """No console error, exception or CSP violation, beyond the 400s of forms refused on
    purpose (Chromium logs each answer of status 400 as an error)."""
    refusals = [e for e in seen.errors if "status of 400" in e]
    assert len(refusals) == refused_forms, seen.errors
    assert [e for e in seen.errors if e not in refusals] == []


def test_edit_the_phone_number_then_the_reveal_form_has_it(admin_page: Page, server: str) -> None:
    page, seen = admin_page, watch(admin_page)
    page.goto(f"{server}/users/{OLAF}/reveal")
    assert page.locator("#no-phone").is_visible()
    with page.expect_navigation():
        page.click("#no-phone-edit")
    page.fill("#phone", "020 7946 0958")
    with page.expect_navigation():
        page.click("#user-edit-form button[type=submit]")
    assert "country code" in page.inner_text("#form-error")
    page.fill("#phone", "+44 20 7946 0958")
    page.fill("#notes", "desk 3")
    with page.expect_navigation():
        page.click("#user-edit-form button[type=submit]")
    assert page.inner_text("#user-phone").startswith("+44 20 7946 0958")
    page.goto(f"{server}/users/{OLAF}/reveal")
    assert page.locator("#no-phone").count() == 0
    assert "+44 20 7946 0958" in page.inner_text("main")
    clean(seen, refused_forms=1)


def test_reassign_a_programmable_token(admin_page: Page, server: str) -> None:
    page, seen = admin_page, watch(admin_page)
    page.goto(f"{server}/tokens/{HELGA_SERIAL}/reassign")
    assert "burn it again" in page.inner_text("#confirm-warning")
    page.fill("#f-upn", OLAF)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith(f"/users/{OLAF}")
    assert f"token {HELGA_SERIAL} is reassigned to {OLAF}" in page.inner_text("main")
    assert page.locator(f'tr[data-serial="{HELGA_SERIAL}"]').count() == 1
    clean(seen)


def test_a_new_operator_can_enrol_without_scanning(admin_page: Page, server: str) -> None:
    page, seen = admin_page, watch(admin_page)
    page.goto(f"{server}/operators")
    rules = page.locator("#password-rules li").all_inner_texts()
    assert rules[0] == "at least 12 characters"
    page.fill("input[name=name]", "carol")
    page.fill("input[name=password]", "a long enough passphrase 42")
    page.fill("input[name=repeat]", "a long enough passphrase 42")
    with page.expect_navigation():
        page.click("form[action='/operators'] button[type=submit]")
    assert not page.locator("#enrol-secret").is_visible()  # folded away until asked for
    page.click("#cant-scan summary")
    secret = page.inner_text("#enrol-secret")
    uri = page.inner_text("#enrol-uri")
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    assert pyotp.TOTP(secret.replace(" ", "")).at(1_800_000_000) == totp.at(1_800_000_000)
    clean(seen)
