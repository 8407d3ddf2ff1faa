"""Editing a user's name, phone number on file and notes through the real server: the console's
edit form (CSRF, admins only, refusals on the form) and ``PATCH /api/v1/users/{upn}``; the
reveal form says when no number is on file for a callback and links to the edit."""

from __future__ import annotations

import httpx
import pytest

from tests.web.api_support import Api, api, api_keys, assert_error
from tests.web.conftest import WebVault
from tests.web.helpdesk_support import HELGA, OLAF, element, populate, submit, text_of

__all__ = ["api", "api_keys"]  # fixtures


@pytest.fixture(autouse=True)
def _users(web_vault: WebVault) -> None:
    populate(web_vault)


def updates(web_vault: WebVault) -> list[dict[str, object]]:
    vault = web_vault.open()
    try:
        return vault.export_audit(action="user.updated")
    finally:
        vault.close()


def test_an_admin_edits_a_user_in_the_console(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    page = admin_client.get(f"/users/{OLAF}")
    assert element(page.text, "edit-link") is not None
    form = admin_client.get(f"/users/{OLAF}/edit")
    assert form.status_code == 200
    assert 'value="Olaf Berg"' in form.text
    done = submit(
        admin_client,
        f"/users/{OLAF}/edit",
        {"display_name": "Olaf Berg-Lund", "phone": "+44 20 7946 0958", "notes": "desk 3"},
        from_page=f"/users/{OLAF}/edit",
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/users/{OLAF}"
    shown = admin_client.get(f"/users/{OLAF}").text
    assert text_of(shown, "user-phone").startswith("+44 20 7946 0958")
    assert text_of(shown, "user-notes") == "desk 3"
    (record,) = updates(web_vault)
    assert record["actor"] == web_vault.admin.name
    assert record["details"] == {
        "before": {"display_name": "Olaf Berg", "phone": "", "notes": ""},
        "after": {"display_name": "Olaf Berg-Lund", "phone": "+442079460958", "notes": "desk 3"},
    }


def test_a_bad_number_is_refused_on_the_form_and_nothing_changes(
    admin_client: httpx.Client, web_vault: WebVault
) -> None:
    refused = submit(
        admin_client,
        f"/users/{OLAF}/edit",
        {"display_name": "Olaf B", "phone": "020 7946 0958", "notes": ""},
        from_page=f"/users/{OLAF}/edit",
    )
    assert refused.status_code == 400
    assert "country code" in text_of(refused.text, "form-error")
    assert 'value="020 7946 0958"' in refused.text  # what was typed is kept to correct it
    assert updates(web_vault) == []
    no_csrf = admin_client.post(f"/users/{OLAF}/edit", data={"display_name": "x"})
    assert no_csrf.status_code == 403
    assert updates(web_vault) == []


def test_a_helpdesk_operator_may_not_edit(
    helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    # The phone number is what a callback dials: whoever changes it can steer a code.
    assert element(helpdesk_client.get(f"/users/{OLAF}").text, "edit-link") is None
    assert helpdesk_client.get(f"/users/{OLAF}/edit").status_code == 403
    refused = submit(
        helpdesk_client,
        f"/users/{OLAF}/edit",
        {"display_name": "x", "phone": "+442079460958", "notes": ""},
        from_page="/search",
    )
    assert refused.status_code == 403
    assert updates(web_vault) == []


def test_the_reveal_form_says_when_no_number_is_on_file(
    helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    with_number = helpdesk_client.get(f"/users/{HELGA}/reveal").text
    assert element(with_number, "no-phone") is None
    assert "+41 79 000 00 00" in with_number
    form = helpdesk_client.get(f"/users/{OLAF}/reveal").text
    assert "No phone number is on file" in text_of(form, "no-phone")
    link = element(form, "no-phone-edit")
    assert link is not None
    assert link[1]["href"] == "/users/olaf%40contoso.com/edit"
    refused = submit(
        helpdesk_client,
        f"/users/{OLAF}/reveal",
        {"method": "callback", "ticket": "INC-1", "note": "", "channel": "phone"},
        from_page=f"/users/{OLAF}/reveal",
    )
    assert refused.status_code == 403
    assert "no phone number on file" in text_of(refused.text, "form-error")
    assert element(refused.text, "no-phone-edit") is not None
    assert "reveal-code" not in refused.text
    vault = web_vault.open()
    try:
        assert vault.export_audit(action="code.revealed") == []
        (refusal,) = vault.export_audit(action="reveal.refused")  # the service's, audited
        assert (refusal["upn"], refusal["details"]["verification"]) == (OLAF, "callback")
    finally:
        vault.close()


def test_patch_a_user_through_the_api(api: Api, web_vault: WebVault) -> None:
    changed = api.admin.patch(f"/users/{OLAF}", json={"phone": "+44 20 7946 0958"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["display_name"], body["phone"]) == ("Olaf Berg", "+442079460958")
    assert api.admin.get(f"/users/{OLAF}").json()["phone"] == "+442079460958"
    (record,) = updates(web_vault)
    assert record["details"] == {"before": {"phone": ""}, "after": {"phone": "+442079460958"}}
    assert "country code" in assert_error(
        api.admin.patch(f"/users/{OLAF}", json={"phone": "0207"}), 400, "invalid_input"
    )
    assert_error(
        api.admin.patch(f"/users/{OLAF}", json={"display_name": "a\nb"}), 422, "invalid_input"
    )
    assert_error(api.helpdesk.patch(f"/users/{OLAF}", json={"notes": "x"}), 403, "forbidden")
    assert_error(
        api.admin.patch("/users/nobody@contoso.com", json={"notes": "x"}), 404, "not_found"
    )
    assert len(updates(web_vault)) == 1
