"""The reveal flow in the console: identity form, then the code (equal to oathtool's), the
longest-valid code for e-mail, refusals on the form, one audit record, no code in URLs or logs."""

from __future__ import annotations

import logging
import re
import time

import httpx
import pytest

from oathdesk.vault.lifecycle import TokenState
from tests.web.conftest import LOCAL_ADMIN, WebVault
from tests.web.helpdesk_support import (
    HELGA,
    HELGA_B32,
    OLAF,
    OLAF_SERIAL,
    element,
    populate,
    submit,
    text_of,
)

CHECK = {"method": "callback", "ticket": "INC-4711", "note": "called back on file number"}


@pytest.fixture(autouse=True)
def _tokens(web_vault: WebVault) -> None:
    populate(web_vault)


def reveal(client: httpx.Client, upn: str, **fields: str) -> tuple[httpx.Response, float, float]:
    data = {**CHECK, "channel": "phone", **fields}
    before = time.time()
    response = submit(client, f"/users/{upn}/reveal", data, from_page=f"/users/{upn}/reveal")
    return response, before, time.time()


def shown_code(html: str, element_id: str) -> tuple[str, dict[str, str]]:
    found = element(html, element_id)
    assert found is not None, f"no #{element_id}"
    text, attrs = found
    assert len(text) == 7, text
    assert text[3] == " ", "the code is shown grouped, 123 456"
    return text.replace(" ", ""), attrs


def codes_around(before: float, after: float, steps_ahead: int = 0) -> set[str]:
    """oathtool's code at the start and at the end of the request (one step boundary allowed)."""
    from tests.web.helpdesk_support import oathtool

    return {oathtool(HELGA_B32, moment + steps_ahead * 30) for moment in (before, after)}


def test_reveal_by_phone_matches_oathtool_and_leaves_one_audit_record(
    helpdesk_client: httpx.Client, web_vault: WebVault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    form = helpdesk_client.get(f"/users/{HELGA}/reveal")
    assert form.status_code == 200
    assert 'name="ticket"' in form.text
    assert 'name="approver"' not in form.text  # four-eyes is off by default

    response, before, after = reveal(helpdesk_client, HELGA)
    assert response.status_code == 200
    assert not response.history  # no redirect: the code is only in this body
    assert response.headers["cache-control"] == "no-store"
    now_code, attrs = shown_code(response.text, "primary-code")
    assert attrs["data-code-kind"] == "current"
    assert now_code in codes_around(before, after)
    longest, attrs = shown_code(response.text, "secondary-code")
    assert attrs["data-step-offset"] == "2"  # the entra profile accepts two steps ahead
    assert longest in codes_around(before, after, steps_ahead=2)
    assert "accepted until" in response.text
    assert "data-next-step=" in response.text
    assert 'data-reveal-hide-after="60"' in response.text
    assert 'src="/static/reveal.js"' in response.text
    assert HELGA_B32 not in response.text

    vault = web_vault.open()
    try:
        records = vault.export_audit(action="code.revealed")
        assert len(records) == 1
        details = records[0]["details"]
        assert records[0]["actor"] == web_vault.helpdesk.name
        assert details["verification"] == "callback"
        assert details["ticket"] == "INC-4711"
        assert details["channel"] == "phone"
        assert now_code not in str(records[0])
        assert longest not in str(records[0])
        assert vault.verify_audit() == []
    finally:
        vault.close()

    # Nowhere else: not in the next page (no flash), not in any log line of the server.
    after_page = helpdesk_client.get(f"/users/{HELGA}")
    assert now_code not in after_page.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"/users/{HELGA}/reveal" in logged  # the server's access log was captured
    assert now_code not in logged
    assert longest not in logged


def test_reveal_by_email_offers_the_longest_valid_code(helpdesk_client: httpx.Client) -> None:
    response, before, after = reveal(helpdesk_client, HELGA, channel="email")
    assert response.status_code == 200
    code, attrs = shown_code(response.text, "primary-code")
    assert attrs["data-code-kind"] == "longest"
    assert code in codes_around(before, after, steps_ahead=int(attrs["data-step-offset"]))
    assert "Send this code by e-mail" in response.text


def test_refusals_are_shown_on_the_form_keeping_what_was_typed(
    helpdesk_client: httpx.Client, admin_client: httpx.Client, web_vault: WebVault
) -> None:
    missing, _, _ = reveal(helpdesk_client, HELGA, ticket="  ")
    assert missing.status_code == 400
    assert "record the ticket reference" in text_of(missing.text, "form-error")
    assert "called back on file number" in missing.text  # the note is kept
    assert element(missing.text, "primary-code") is None

    vault = web_vault.open()
    try:
        vault.update_settings(LOCAL_ADMIN, reveal_limit_per_user=1)
        vault.move(LOCAL_ADMIN, OLAF_SERIAL, TokenState.DELIVERED)
        vault.purge(LOCAL_ADMIN, OLAF_SERIAL, reason="delivered and working")
    finally:
        vault.close()
    first, _, _ = reveal(helpdesk_client, HELGA)
    assert first.status_code == 200
    over, _, _ = reveal(helpdesk_client, HELGA, ticket="INC-4712")
    assert over.status_code == 403
    assert "codes in 24 hours (the limit)" in text_of(over.text, "form-error")
    assert 'value="INC-4712"' in over.text
    assert element(over.text, "primary-code") is None

    purged, _, _ = reveal(admin_client, OLAF)
    assert purged.status_code == 409
    assert "Temporary Access Pass" in text_of(purged.text, "form-error")


def test_four_eyes_needs_a_second_operator(
    helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    vault = web_vault.open()
    try:
        vault.update_settings(LOCAL_ADMIN, four_eyes=True)
    finally:
        vault.close()
    form = helpdesk_client.get(f"/users/{HELGA}/reveal")
    assert 'name="approver_password"' in form.text
    alone, _, _ = reveal(helpdesk_client, HELGA)
    assert alone.status_code == 403
    assert "four-eyes" in text_of(alone.text, "form-error")

    admin = web_vault.admin
    wrong, _, _ = reveal(
        helpdesk_client,
        HELGA,
        approver=admin.name,
        approver_password="not the password",
        approver_code=admin.unspent_code(),
    )
    assert wrong.status_code == 403
    assert "not the password" not in wrong.text  # passwords are never sent back
    assert element(wrong.text, "primary-code") is None

    approved, before, after = reveal(
        helpdesk_client,
        HELGA,
        approver=admin.name,
        approver_password=admin.password,
        approver_code=admin.next_code(),
    )
    assert approved.status_code == 200
    code, _ = shown_code(approved.text, "primary-code")
    assert code in codes_around(before, after)


def test_auditor_may_not_reveal(auditor_client: httpx.Client) -> None:
    assert auditor_client.get(f"/users/{HELGA}/reveal").status_code == 403


def test_accepted_until_days_away_names_the_day_the_zone_and_days(
    helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    """entra-activation: the date (not today), the zone and days/hours (issue 13, item 13)."""
    vault = web_vault.open()
    try:
        vault.update_settings(LOCAL_ADMIN, acceptance_profile="entra-activation")
    finally:
        vault.close()
    response, before, after = reveal(helpdesk_client, HELGA)
    assert response.status_code == 200, response.text
    # The current code: accepted one day (and 0 to 30 s) from now; the longest-valid: two days.
    for days, kind in ((1, "current"), (2, "longest")):
        block = re.search(
            rf'id="code-{kind}".*?accepted until <time datetime="[^"]+"[^>]*>([^<]+)</time>\s*'
            r'\(<span data-until="\d+">([^<]+)</span>\)',
            response.text,
            re.DOTALL,
        )
        assert block is not None, response.text
        dates = {
            time.strftime("%Y-%m-%d", time.gmtime(moment + days * 86_400 + slack))
            for moment in (before, after)
            for slack in (0, 30)
        }
        moment_shown, left = block.groups()
        assert re.fullmatch(rf"({'|'.join(dates)}) \d\d:\d\d:\d\d UTC", moment_shown), moment_shown
        assert left == f"in {days} d 0 h 00 min"
