"""TOTP enrolment in the console: the secret as grouped text and as the otpauth URI ("can't
scan?") beside the QR code, never cached; the password rules shown before submitting, from the
policy that checks them; an admin resets another operator's TOTP (audited), not their own."""

from __future__ import annotations

import html
import re

import httpx
import pyotp

from oathdesk.vault.operators import PASSWORD_POLICY, password_problem, password_rules
from tests.web.conftest import WebVault, post_form, qr_text
from tests.web.helpdesk_support import text_of

PASSWORD = "a long enough passphrase 42"


def enrolment_parts(page: str) -> tuple[str, str, str]:
    """(the QR code's text, the secret shown as text, the URI shown as text)."""
    return qr_text(page), text_of(page, "enrol-secret"), html.unescape(text_of(page, "enrol-uri"))


def test_a_new_operators_enrolment_shows_the_secret_as_text_and_uri(
    admin_client: httpx.Client,
) -> None:
    added = post_form(
        admin_client,
        "/operators",
        {"name": "carol", "role": "helpdesk", "password": PASSWORD, "repeat": PASSWORD},
        from_page="/operators",
    )
    assert added.status_code == 200, added.text
    assert added.headers["cache-control"] == "no-store"
    in_qr, secret_text, uri = enrolment_parts(added.text)
    assert uri == in_qr
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", secret_text), secret_text
    from_text = pyotp.TOTP(secret_text.replace(" ", ""))
    from_uri = pyotp.parse_uri(in_qr)
    assert isinstance(from_uri, pyotp.TOTP)
    for moment in range(1_700_000_000, 1_700_000_000 + 30 * 200, 30):
        assert from_text.at(moment) == from_uri.at(moment)
    assert "Can't scan?" in added.text


def test_the_password_rules_are_shown_before_submitting_from_the_policy(
    admin_client: httpx.Client,
) -> None:
    page = admin_client.get("/operators").text
    shown = re.findall(r"<li>([^<]+)</li>", page.split('id="password-rules"')[1].split("</ul>")[0])
    assert shown == password_rules() == [rule.shown for rule in PASSWORD_POLICY]
    # Each rule shown is the one that refuses: a password breaking only that rule gets its line.
    breaking = {
        "at least 12 characters": "Ab1!xyz",
        "not containing the operator name": "my name is carol, ok!",
        "at least 5 different characters": "abababababababab",
    }
    for rule in PASSWORD_POLICY:
        if rule.shown in breaking:
            assert password_problem("carol", breaking[rule.shown]) == rule.refusal
            refused = post_form(
                admin_client,
                "/operators",
                {
                    "name": "carol",
                    "role": "helpdesk",
                    "password": breaking[rule.shown],
                    "repeat": breaking[rule.shown],
                },
                from_page="/operators",
            )
            assert refused.status_code == 400
            assert html.escape(rule.refusal, quote=True) in refused.text


def test_an_admin_resets_another_operators_totp_but_not_their_own(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    page = admin_client.get("/operators").text
    assert "/operators/hugo/reset-totp" in page
    assert "/operators/ada/reset-totp" not in page
    reset = post_form(admin_client, "/operators/hugo/reset-totp", {}, from_page="/operators")
    assert reset.status_code == 200
    assert reset.headers["cache-control"] == "no-store"
    in_qr, secret_text, uri = enrolment_parts(reset.text)
    assert uri == in_qr
    own = post_form(admin_client, "/operators/ada/reset-totp", {}, from_page="/operators")
    assert own.status_code == 400
    assert "you cannot reset your own TOTP here" in own.text
    vault = web_vault.open()
    try:
        resets = vault.export_audit(action="operator.totp_reset")
    finally:
        vault.close()
    assert [(r["actor"], r["details"]) for r in resets] == [("ada", {"operator": "hugo"})]
    assert secret_text.replace(" ", "") not in str(resets)
