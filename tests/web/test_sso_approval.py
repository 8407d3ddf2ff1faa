"""A four-eyes reveal approved by a fresh Microsoft sign-in: an SSO helpdesk operator asks, an
SSO admin signs in again at the stand-in identity provider (HTTPS) in the same browser, and the
code equals oathtool's; every refusal leaves no code. Real uvicorn server, httpx as the browser
(cookies kept, redirects followed by hand)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from oathdesk.vault.models import Actor
from tests.identity.standin import StandInIdP, TestUser
from tests.web.conftest import WebVault, new_client, signed_in
from tests.web.helpdesk_support import HELGA, OLAF, element, populate, submit, text_of
from tests.web.test_pages_reveal import CHECK, codes_around, shown_code
from tests.web.test_sso import at_idp, audit, configure, sso_sign_in

HELEN = TestUser()  # the stand-in's default user: helpdesk
ADA = TestUser(
    upn="ada@contoso.onmicrosoft.com",
    name="Ada Admin",
    oid="5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
    roles=["oathdesk.admin"],
)
AUDREY = TestUser(
    upn="audrey@contoso.onmicrosoft.com",
    name="Audrey Auditor",
    oid="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
    roles=["oathdesk.auditor"],
)
FORM = {**CHECK, "channel": "phone"}


@pytest.fixture
def server(live_server: str, web_vault: WebVault, idp: StandInIdP) -> str:
    configure(web_vault, idp, live_server)
    populate(web_vault)
    vault = web_vault.open()
    try:
        vault.update_settings(Actor("local:test", "admin"), four_eyes=True)
    finally:
        vault.close()
    return live_server


@pytest.fixture
def helen(server: str, idp: StandInIdP) -> Iterator[httpx.Client]:
    """Helen's browser, signed in with Microsoft (helpdesk role)."""
    idp.user = HELEN
    with new_client(server) as client:
        assert sso_sign_in(client, idp).status_code == 200
        yield client


def ask_approval(client: httpx.Client, upn: str = HELGA) -> str:
    """The requester presses Approve with Microsoft: the URL the browser goes to at Entra."""
    form = client.get(f"/users/{upn}/reveal")
    assert element(form.text, "approve-microsoft") is not None
    started = submit(
        client, f"/users/{upn}/reveal/microsoft-approval", FORM, from_page=f"/users/{upn}/reveal"
    )
    return to_microsoft(started)


def to_microsoft(started: httpx.Response) -> str:
    """The page that sends the browser to Entra (a page: CSP's form-action stops a 303)."""
    assert started.status_code == 200, started.text
    assert "oathdesk_sso_approval=" in started.headers["set-cookie"]
    link = element(started.text, "to-microsoft")
    assert link is not None
    return link[1]["href"]


def approve_at_idp(
    client: httpx.Client, idp: StandInIdP, approver: TestUser, url: str
) -> httpx.Response:
    """The approver signs in at the stand-in in the requester's browser; its answer."""
    idp.user = approver
    return client.get(at_idp(idp, url))


def take(client: httpx.Client, upn: str = HELGA) -> httpx.Response:
    path = f"/users/{upn}/reveal/approved"
    return submit(client, path, {}, from_page=path)


def test_an_sso_admin_approves_an_sso_helpdesk_reveal_by_a_fresh_microsoft_sign_in(
    helen: httpx.Client, idp: StandInIdP, web_vault: WebVault
) -> None:
    url = ask_approval(helen)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["prompt"] == "login"
    assert query["max_age"] == "300"
    assert query["state"].startswith("approval.")
    assert query["nonce"]
    back = approve_at_idp(helen, idp, ADA, url)
    assert back.status_code == 200, back.text
    assert f'url=/users/{HELGA}/reveal/approved"' in back.text
    before = time.time()
    shown = take(helen)
    after = time.time()
    assert shown.status_code == 200, shown.text
    assert shown.headers["cache-control"] == "no-store"
    code, _ = shown_code(shown.text, "primary-code")
    assert code in codes_around(before, after)

    (approval,) = audit(web_vault, "reveal.approved_by_microsoft")
    assert approval["actor"] == ADA.upn
    assert approval["details"]["method"] == "microsoft"
    assert approval["details"]["oid"] == ADA.oid
    assert approval["details"]["requester"] == HELEN.upn
    (revealed,) = audit(web_vault, "code.revealed")
    assert revealed["actor"] == HELEN.upn
    assert revealed["details"]["approver"] == ADA.upn
    assert code not in str(audit(web_vault, "reveal.approved_by_microsoft"))

    # Used once: the same approval does not reveal again.
    again = take(helen)
    assert again.status_code == 403
    assert "no Microsoft approval is waiting" in text_of(again.text, "form-error")


@pytest.mark.parametrize(
    ("misbehave", "approver", "said", "reason"),
    [
        ("no_auth_time", ADA, "does not say when you signed in", "auth_time"),
        ("old_auth_time", ADA, "within the last 5 minutes", "auth_time"),
        (None, HELEN, "another operator than the requester", "approver_is_requester"),
        (None, AUDREY, "may not approve reveals", "approver_role"),
    ],
)
def test_refused_approvals_reveal_nothing(
    helen: httpx.Client,
    idp: StandInIdP,
    web_vault: WebVault,
    misbehave: str | None,
    approver: TestUser,
    said: str,
    reason: str,
) -> None:
    url = ask_approval(helen)
    idp.misbehave = misbehave
    refused = approve_at_idp(helen, idp, approver, url)
    assert refused.status_code == 403
    assert said in refused.text
    assert "Traceback" not in refused.text
    idp.misbehave = None
    taken = take(helen)
    assert taken.status_code == 403
    assert element(taken.text, "primary-code") is None
    assert audit(web_vault, "code.revealed") == []
    assert audit(web_vault, "reveal.approved_by_microsoft") == []
    assert reason in [r["details"]["reason"] for r in audit(web_vault, "operator.sso_refused")]


def test_a_replayed_approval_answer_is_refused(
    helen: httpx.Client, idp: StandInIdP, web_vault: WebVault
) -> None:
    url = ask_approval(helen)
    idp.user = ADA
    answer = at_idp(idp, url)
    assert helen.get(answer).status_code == 200
    replayed = helen.get(answer)  # the same answer again, in the same browser
    assert replayed.status_code == 403
    assert "no Microsoft approval is waiting" in replayed.text
    with new_client(str(helen.base_url)) as elsewhere:  # or in another one
        assert elsewhere.get(answer).status_code == 403
    assert len(audit(web_vault, "reveal.approved_by_microsoft")) == 1


def test_an_approval_is_for_its_own_reveal_and_requester(
    helen: httpx.Client, idp: StandInIdP, web_vault: WebVault, server: str
) -> None:
    # Taken for another user than the one approved: refused (and spent).
    assert approve_at_idp(helen, idp, ADA, ask_approval(helen)).status_code == 200
    other = take(helen, OLAF)
    assert other.status_code == 403
    assert "was for another reveal" in text_of(other.text, "form-error")
    assert take(helen).status_code == 403

    # Taken by another operator's session with the approved cookie: refused.
    assert approve_at_idp(helen, idp, ADA, ask_approval(helen)).status_code == 200
    cookie = helen.cookies.get("oathdesk_sso_approval")
    assert cookie
    with signed_in(server, web_vault.helpdesk) as hugo:
        hugo.cookies.set("oathdesk_sso_approval", cookie)
        stolen = take(hugo)
        assert stolen.status_code == 403
        assert "was for another reveal" in text_of(stolen.text, "form-error")

    # The answer to one approval with the cookie of another: refused by its state.
    first = ask_approval(helen)
    ask_approval(helen)  # a second one replaces the cookie
    idp.user = ADA
    mixed = helen.get(at_idp(idp, first))
    assert mixed.status_code == 403
    assert "belongs to another sign-in" in mixed.text
    assert audit(web_vault, "code.revealed") == []


def test_an_sso_admin_approves_one_reveal_beyond_the_limit_by_a_fresh_microsoft_sign_in(
    server: str, idp: StandInIdP, web_vault: WebVault
) -> None:
    vault = web_vault.open()
    try:
        vault.update_settings(
            Actor("local:test", "admin"), reveal_limit_per_user=1, four_eyes=False
        )
    finally:
        vault.close()
    idp.user = ADA
    with new_client(server) as ada:
        assert sso_sign_in(ada, idp).status_code == 200
        page = ada.get(f"/users/{HELGA}").text
        assert element(page, "approve-reveal-microsoft") is not None

        def ask(ticket: str = "INC-9") -> str:
            started = submit(
                ada,
                f"/users/{HELGA}/approve-reveal/microsoft",
                {"ticket": ticket},
                from_page=f"/users/{HELGA}",
            )
            return to_microsoft(started)

        # Not confirmed by Ada herself (Helen signs in at Ada's screen): refused.
        refused = approve_at_idp(ada, idp, HELEN, ask())
        assert refused.status_code == 403
        assert "confirm with your own Microsoft account" in refused.text
        # An old Entra session: refused.
        idp.misbehave = "old_auth_time"
        assert approve_at_idp(ada, idp, ADA, ask()).status_code == 403
        idp.misbehave = None
        assert audit(web_vault, "reveal.override_approved") == []
        # An empty ticket is refused before Entra is asked.
        empty = submit(
            ada, f"/users/{HELGA}/approve-reveal/microsoft", {"ticket": " "}, from_page="/"
        )
        assert empty.status_code == 303
        assert "ticket reference" in ada.get(empty.headers["location"]).text

        url = ask()
        assert parse_qs(urlsplit(url).query)["prompt"] == ["login"]
        done = approve_at_idp(ada, idp, ADA, url)
        assert done.status_code == 200, done.text
        assert element(done.text, "approval-recorded") is not None
    (approval,) = audit(web_vault, "reveal.override_approved")
    assert approval["actor"] == ADA.upn
    assert approval["upn"] == HELGA
    assert approval["details"]["method"] == "microsoft"
    assert approval["details"]["oid"] == ADA.oid
    assert approval["details"]["ticket"] == "INC-9"

    # Helen (helpdesk) reveals twice: the second goes beyond the limit by Ada's approval.
    idp.user = HELEN
    with new_client(server) as helen:
        assert sso_sign_in(helen, idp).status_code == 200
        for _ in range(2):
            shown = submit(
                helen, f"/users/{HELGA}/reveal", FORM, from_page=f"/users/{HELGA}/reveal"
            )
            assert shown.status_code == 200, shown.text
        third = submit(helen, f"/users/{HELGA}/reveal", FORM, from_page=f"/users/{HELGA}/reveal")
        assert third.status_code == 403
    second = audit(web_vault, "code.revealed")[1]
    assert second["details"]["limit_override_by"] == ADA.upn
