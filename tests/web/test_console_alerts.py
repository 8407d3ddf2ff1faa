"""A failed alert on the console: the operator whose reveal raised it reads it on the page,
beside the refusal (the same line the CLI and the API give)."""

from __future__ import annotations

from oathdesk.services.alerts import AlertSettings, SmtpSecurity, SmtpSettings
from oathdesk.web.app import create_app
from tests.web.conftest import LOCAL_ADMIN, WebVault, free_port, serve_app, sign_in
from tests.web.helpdesk_support import HELGA, populate, submit, text_of


def test_the_reveal_page_says_the_alert_was_not_sent(web_vault: WebVault) -> None:
    populate(web_vault)
    vault = web_vault.open()
    try:
        vault.update_settings(LOCAL_ADMIN, reveal_limit_per_user=0)
    finally:
        vault.close()
    dead = free_port()
    relay = SmtpSettings(
        "127.0.0.1", dead, recipients=("security@contoso.com",), security=SmtpSecurity.NONE
    )
    app = create_app(web_vault.config(alerts=AlertSettings(smtp=relay)))
    with serve_app(app) as base_url:
        client = sign_in(base_url, web_vault.helpdesk)
        try:
            data = {"method": "callback", "ticket": "INC-9", "note": "", "channel": "phone"}
            page = f"/users/{HELGA}/reveal"
            over = submit(client, page, data, from_page=page)
        finally:
            client.close()
    assert over.status_code == 403
    error = text_of(over.text, "form-error")
    assert "codes in 24 hours (the limit)" in error
    assert "the security alert (reveal.limit_reached) was not sent" in error
    assert f"127.0.0.1:{dead}" in error
