"""A four-eyes reveal approved by a fresh Microsoft sign-in, in Chromium, through the stand-in
identity provider over HTTPS: Helen (helpdesk, Microsoft only) fills in the reveal form and
presses Approve with Microsoft; Ada (admin, Microsoft only) signs in again at the stand-in in
Helen's browser; Helen's session comes back and reveals, and the code equals oathtool's. The
audit holds the approval with Ada's oid and the method, and the reveal names Ada."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page

from oathdesk.seed import encode_base32
from oathdesk.vault.models import Actor
from tests.identity.standin import StandInIdP
from tests.web.browser.conftest import Shoot
from tests.web.conftest import WebVault
from tests.web.helpdesk_support import HELGA, HELGA_SECRET, oathtool, populate
from tests.web.test_sso import configure
from tests.web.test_sso_approval import ADA, HELEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_sso_admin_approves_an_sso_helpdesk_reveal_with_microsoft(
    live_server: str, web_vault: WebVault, idp: StandInIdP, sso_page: Page, shoot: Shoot
) -> None:
    page = sso_page
    populate(web_vault)
    configure(web_vault, idp, live_server)
    vault = web_vault.open()
    try:
        vault.update_settings(Actor("local:test", "admin"), four_eyes=True)
    finally:
        vault.close()

    idp.user = HELEN
    page.goto(f"{live_server}/signin")
    with page.expect_navigation(url=re.compile(r".*/auth/callback.*")):
        page.click("#sso-signin")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/users/{HELGA}/reveal")
    page.check("input[name=method][value=callback]")
    page.fill("#ticket", "INC-6060")
    page.fill("#note", "called back on the number on file")
    page.check("input[name=channel][value=phone]")
    shoot(page, "sso-approval-form")
    idp.user = ADA  # Ada signs in at Helen's screen
    page.click("#approve-microsoft")
    page.wait_for_url(f"{live_server}/users/{HELGA}/reveal/approved")
    shoot(page, "sso-approval-approved")
    before = time.time()
    with page.expect_navigation():
        page.click("#reveal-approved")
    after = time.time()
    shown = page.inner_text("#primary-code").replace(" ", "")
    expected = {oathtool(encode_base32(HELGA_SECRET), moment) for moment in (before, after)}
    assert shown in expected
    assert idp.authorize_queries[-1]["prompt"] == "login"

    vault = web_vault.open()
    try:
        (approval,) = vault.export_audit(action="reveal.approved_by_microsoft")
        (revealed,) = vault.export_audit(action="code.revealed")
    finally:
        vault.close()
    assert (approval["actor"], approval["details"]["oid"]) == (ADA.upn, ADA.oid)
    assert approval["details"]["method"] == "microsoft"
    assert (revealed["actor"], revealed["details"]["approver"]) == (HELEN.upn, ADA.upn)
