"""An admin approves one reveal beyond the per-user limit for one call, instead of raising the
limit: confirmed with the admin's own password and code, audited as an override, used by exactly
one reveal by another operator within 10 minutes, through the real server's reveal path."""

from __future__ import annotations

import time

import httpx
import pytest

from oathdesk.errors import PolicyRefused
from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealRequest,
    VerificationMethod,
    reveal_batch,
)
from oathdesk.services.reveal_override import approve_one_more_reveal
from oathdesk.vault.models import Actor
from tests.web.api_support import Api, api, api_keys, assert_error
from tests.web.conftest import LOCAL_ADMIN, WebVault
from tests.web.helpdesk_support import HELGA, element, populate, submit, text_of
from tests.web.test_pages_reveal import reveal

__all__ = ["api", "api_keys"]  # fixtures


@pytest.fixture(autouse=True)
def _limit_of_one(web_vault: WebVault) -> None:
    populate(web_vault)
    vault = web_vault.open()
    try:
        vault.update_settings(LOCAL_ADMIN, reveal_limit_per_user=1)
    finally:
        vault.close()


def records(web_vault: WebVault, action: str) -> list[dict[str, object]]:
    vault = web_vault.open()
    try:
        return vault.export_audit(action=action)
    finally:
        vault.close()


def approve(
    admin_client: httpx.Client, web_vault: WebVault, *, refused: bool = False, **fields: str
) -> str:
    admin = web_vault.admin
    data = {
        "ticket": "INC-4711",
        "password": admin.password,
        "code": admin.unspent_code() if refused else admin.next_code(),
        **fields,
    }
    done = submit(admin_client, f"/users/{HELGA}/approve-reveal", data, from_page=f"/users/{HELGA}")
    assert done.status_code == 303, done.text
    return admin_client.get(f"/users/{HELGA}").text  # with the flash


@pytest.mark.slow
def test_one_approved_reveal_beyond_the_limit_for_another_operator(
    helpdesk_client: httpx.Client, admin_client: httpx.Client, web_vault: WebVault
) -> None:
    assert reveal(helpdesk_client, HELGA)[0].status_code == 200
    over = reveal(helpdesk_client, HELGA, ticket="INC-4711")[0]
    assert over.status_code == 403
    assert "an admin can approve one more" in text_of(over.text, "form-error")
    assert element(admin_client.get(f"/users/{HELGA}").text, "approve-reveal") is not None
    assert element(helpdesk_client.get(f"/users/{HELGA}").text, "approve-reveal") is None

    refused = approve(admin_client, web_vault, refused=True, password="not the admin's password")
    assert "not approved: sign-in refused" in refused
    assert records(web_vault, "reveal.override_approved") == []
    assert "approved: one more code" in approve(admin_client, web_vault)
    (approval,) = records(web_vault, "reveal.override_approved")
    assert (approval["actor"], approval["upn"]) == (web_vault.admin.name, HELGA)
    details = approval["details"]
    assert isinstance(details, dict)
    assert details["ticket"] == "INC-4711"
    assert web_vault.admin.password not in str(approval)

    # The admin cannot use their own approval; the helpdesk operator can, once.
    own = reveal(admin_client, HELGA, ticket="INC-4711")[0]
    assert own.status_code == 403
    used = reveal(helpdesk_client, HELGA, ticket="INC-4711")[0]
    assert used.status_code == 200, text_of(used.text, "form-error")
    assert element(used.text, "primary-code") is not None
    again = reveal(helpdesk_client, HELGA, ticket="INC-4711")[0]
    assert again.status_code == 403
    revealed = records(web_vault, "code.revealed")
    assert len(revealed) == 2
    last = revealed[-1]["details"]
    assert isinstance(last, dict)
    assert last["override_seq"] == approval["seq"]
    assert last["limit_override_by"] == web_vault.admin.name
    plain = revealed[0]["details"]
    assert isinstance(plain, dict)
    assert "override_seq" not in plain


def test_an_approval_is_one_reveal_in_a_batch_and_lapses_after_ten_minutes(
    web_vault: WebVault,
) -> None:
    vault = web_vault.open()
    hugo = Actor(web_vault.helpdesk.name, "helpdesk")
    request = RevealRequest(
        HELGA, IdentityCheck(VerificationMethod.CALLBACK, "INC-1"), Channel.PHONE
    )
    try:
        now = time.time()
        (first,) = reveal_batch(vault, [RevealJob(request, actor=hugo)], at=now)
        assert first.result is not None
        approve_one_more_reveal(
            vault,
            Actor(web_vault.admin.name, "admin"),
            HELGA,
            ticket="INC-1",
            password=web_vault.admin.password,
            code=web_vault.admin.next_code(),
        )
        # Eleven minutes on, the approval has lapsed.
        (late,) = reveal_batch(vault, [RevealJob(request, actor=hugo)], at=time.time() + 660)
        assert late.error is not None
        assert "(the limit)" in late.error.message
        # Two reveals in one batch: the approval lets exactly one through (the batch counts).
        outcomes = reveal_batch(vault, [RevealJob(request, actor=hugo)] * 2, at=time.time())
        assert [o.result is not None for o in outcomes] == [True, False]
        sink = AlertSink(AlertSettings(jsonl_path=None))
        with pytest.raises(PolicyRefused, match="the limit"):
            outcomes[1].result_or_raise(sink)
    finally:
        vault.close()


@pytest.mark.slow
def test_approve_through_the_api(api: Api, web_vault: WebVault) -> None:
    reveal_body = {"upn": HELGA, "method": "callback", "ticket": "INC-7", "channel": "phone"}
    assert api.helpdesk.post("/reveal", json=reveal_body).status_code == 200
    assert_error(api.helpdesk.post("/reveal", json=reveal_body), 403, "policy_refused")
    admin = web_vault.admin
    body = {"ticket": "INC-7", "password": admin.password, "code": admin.unspent_code()}
    path = f"/users/{HELGA}/reveal-approvals"
    assert_error(api.helpdesk.post(path, json=body), 403, "forbidden")
    wrong = {**body, "password": "not the admin's password", "code": admin.unspent_code()}
    assert_error(api.admin.post(path, json=wrong), 403, "sign_in_refused")
    approved = api.admin.post(path, json={**body, "code": admin.next_code()})
    assert approved.status_code == 201, approved.text
    assert approved.json()["upn"] == HELGA
    assert admin.password not in approved.text
    assert api.helpdesk.post("/reveal", json=reveal_body).status_code == 200
    assert_error(api.helpdesk.post("/reveal", json=reveal_body), 403, "policy_refused")
    assert len(records(web_vault, "reveal.override_approved")) == 1
