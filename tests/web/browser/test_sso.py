"""Sign-in with Microsoft in Chromium, through the stand-in identity provider over HTTPS.

A helpdesk operator with the oathdesk.helpdesk app role clicks "Sign in with Microsoft", the
stand-in consents as them and sends the browser back; the console creates their operator and
session, and they reveal a code that equals oathtool's. The audit holds the SSO sign-in (with
the oid, the roles and the address) and the reveal. With the app role removed in Entra, their
next sign-in is refused with a page that says what to ask for.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page

from oathdesk.seed import encode_base32
from tests.identity.standin import StandInIdP
from tests.web.browser.conftest import Shoot
from tests.web.conftest import WebVault
from tests.web.helpdesk_support import HELGA, HELGA_SECRET, oathtool, populate
from tests.web.test_sso import configure

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in_with_microsoft(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/signin")
    with page.expect_navigation(url=re.compile(r".*/auth/callback.*")):
        page.click("#sso-signin")


def test_helpdesk_signs_in_with_microsoft_reveals_and_is_refused_once_the_role_is_gone(
    live_server: str, web_vault: WebVault, idp: StandInIdP, sso_page: Page, shoot: Shoot
) -> None:
    page = sso_page
    populate(web_vault)
    configure(web_vault, idp, live_server)

    sign_in_with_microsoft(page, live_server)
    page.wait_for_url(f"{live_server}/")
    shoot(page, "sso-signed-in")
    assert f"Signed in as {idp.user.upn} (helpdesk) with Microsoft" in page.inner_text("body")

    page.goto(f"{live_server}/users/{HELGA}/reveal")
    page.check("input[name=method][value=callback]")
    page.fill("#ticket", "INC-5150")
    page.fill("#note", "called back on the number on file")
    page.check("input[name=channel][value=phone]")
    before = time.time()
    with page.expect_navigation():
        page.click("#reveal-form button[type=submit]")
    after = time.time()
    shown = page.inner_text("#primary-code").replace(" ", "")
    expected = {oathtool(encode_base32(HELGA_SECRET), moment) for moment in (before, after)}
    assert shown in expected

    vault = web_vault.open()
    try:
        (signin,) = vault.export_audit(action="operator.sso_signed_in")
        reveals = [r for r in vault.export_audit(actor=idp.user.upn) if "reveal" in r["action"]]
    finally:
        vault.close()
    assert signin["actor"] == idp.user.upn
    assert signin["details"]["oid"] == idp.user.oid
    assert signin["details"]["roles"] == ["oathdesk.helpdesk"]
    assert signin["details"]["ip"] == "127.0.0.1"
    assert reveals
    assert reveals[0]["upn"] == HELGA

    page.locator("form.signout button").click()
    page.wait_for_url(f"{live_server}/signin")

    idp.user.roles = []  # an admin removed the app role in Entra
    sign_in_with_microsoft(page, live_server)
    shoot(page, "sso-refused")
    assert "your account has no oathdesk role" in page.inner_text("[role=alert]")
    page.goto(f"{live_server}/search")
    assert page.url.startswith(f"{live_server}/signin")
