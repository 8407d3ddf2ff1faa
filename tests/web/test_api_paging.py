"""Paging through the REST API on a real server: every list answers ``{items, next_cursor}`` with
``limit`` and ``cursor``, a ``Link: rel="next"`` header, and refuses a limit out of range or a
cursor that was altered or carried into another list or filter, in one line."""

from __future__ import annotations

import re
from typing import Any

import httpx

from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.paging import _b64, _unb64
from tests.web.api_support import Api, api, api_keys, assert_error
from tests.web.conftest import LOCAL_ADMIN, WebVault

__all__ = ["api", "api_keys"]  # fixtures

REFUSED = "this page link is not valid for this list; start again from the first page"
LINK = re.compile(r'^<(/api/v1/[^>]+)>; rel="next"$')


def fill(web_vault: WebVault) -> None:
    """45 stock tokens, 12 users with a token each, 30 audit records about one user, 6 more
    operators (each with 2 keys besides the tests' own)."""
    from oathdesk.vault.lifecycle import TokenKind
    from oathdesk.vault.models import NewToken

    vault = web_vault.open()
    try:
        stock = [
            NewToken(f"S{n:03d}", "Token2", "C202", TokenKind.CLASSIC, bytes([n + 1]) * 20)
            for n in range(45)
        ]
        owned = [
            NewToken(
                f"U{n:03d}",
                "Token2",
                "miniOTP-2-i",
                TokenKind.PROGRAMMABLE,
                bytes([n + 101]) * 20,
                upn=f"user{n:02d}@contoso.com",
            )
            for n in range(12)
        ]
        vault.add_tokens(LOCAL_ADMIN, stock)
        vault.add_tokens(LOCAL_ADMIN, owned, create_missing_users=True)
        with vault.transaction() as conn:
            entries = [
                AuditEntry("local:test", "test.note", "user03@contoso.com", "", {"n": n})
                for n in range(30)
            ]
            vault.audit_entries(conn, entries)
        directory = OperatorDirectory(vault)
        for n in range(6):
            directory.add(LOCAL_ADMIN, f"extra{n}", "auditor", "a long enough passphrase 1")
    finally:
        vault.close()


def walk(client: httpx.Client, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list, following ``next_cursor``; checks the Link header on the way."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        response = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            return pages
        link = LINK.match(response.headers["link"])
        assert link is not None, response.headers["link"]
        # The link is the same request with the cursor: following it gives the same page.
        followed = httpx.get(
            client.base_url.join("/").join(link[1]), headers=client.headers, timeout=30
        )
        assert followed.json() == client.get(path, params={**params, "cursor": cursor}).json()


def test_every_list_pages_with_limit_and_cursor(api: Api, web_vault: WebVault) -> None:
    fill(web_vault)
    tokens = walk(api.helpdesk, "/tokens", limit=10)
    assert [len(p) for p in tokens] == [10] * 5 + [7]
    serials = [t["serial"] for p in tokens for t in p]
    assert (
        serials
        == sorted(serials)
        == [f"S{n:03d}" for n in range(45)] + [f"U{n:03d}" for n in range(12)]
    )
    assigned = walk(api.helpdesk, "/tokens", state="assigned", kind="programmable", limit=5)
    assert [t["serial"] for p in assigned for t in p] == [f"U{n:03d}" for n in range(12)]
    assert {t["upn"] for p in assigned for t in p} == {
        f"user{n:02d}@contoso.com" for n in range(12)
    }
    assert all(t["has_secret"] for p in assigned for t in p)
    mine = walk(api.helpdesk, "/tokens", upn="USER03@contoso.com", limit=1)
    assert [t["serial"] for p in mine for t in p] == ["U003"]

    users = walk(api.helpdesk, "/users", limit=5)
    assert [len(p) for p in users] == [5, 5, 2]
    assert [u["upn"] for p in users for u in p] == [f"user{n:02d}@contoso.com" for n in range(12)]

    audit = walk(api.auditor, "/audit", upn="user03@contoso.com", limit=7)
    seqs = [r["seq"] for p in audit for r in p]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    # /audit?upn= is a plain filter on the records' own UPN: the notes only. The import's
    # users.added record names no single UPN; the user's page (their timeline) shows it through
    # users.added_seq (tests/vault/test_timelines.py).
    assert len(seqs) == 30
    everything = walk(api.auditor, "/audit", limit=1000)
    assert [r["seq"] for p in walk(api.auditor, "/audit", limit=9) for r in p] == [
        r["seq"] for p in everything for r in p
    ]

    operators = walk(api.admin, "/operators", limit=4)
    names = [o["name"] for p in operators for o in p]
    assert names == sorted(names)
    assert {f"extra{n}" for n in range(6)} <= set(names)
    for n in range(3):
        assert api.admin.post("/operators/hugo/keys", json={"name": f"bot{n}"}).status_code == 201
    keys = walk(api.helpdesk, "/operators/hugo/keys", limit=2)  # hugo's own
    assert [k["name"] for p in keys for k in p] == ["tests", "bot0", "bot1", "bot2"]

    assert walk(api.helpdesk, "/drift", limit=3) == [[]]  # nothing measured yet


def test_limits_out_of_range_are_refused(api: Api) -> None:
    for path in ("/tokens", "/users", "/audit", "/drift", "/operators", "/operators/ada/keys"):
        for bad in ("0", "1001", "-5", "many"):
            message = assert_error(api.admin.get(path, params={"limit": bad}), 422, "invalid_input")
            assert "limit" in message
        assert api.admin.get(path, params={"limit": "1000"}).status_code == 200


def test_cursors_cannot_be_altered_or_moved_to_another_list_or_filter(
    api: Api, web_vault: WebVault
) -> None:
    fill(web_vault)
    stock = api.admin.get("/tokens", params={"state": "in_stock", "limit": 5}).json()
    cursor = stock["next_cursor"]
    audit = api.admin.get("/audit", params={"upn": "user03@contoso.com", "limit": 5}).json()
    raw = _unb64(cursor)
    flipped = _b64(raw[:-1] + bytes([raw[-1] ^ 1]))
    refused = [
        ("/tokens", {"state": "assigned", "cursor": cursor}),  # another filter
        ("/tokens", {"cursor": cursor}),  # the filter left out
        ("/users", {"cursor": cursor}),  # another list
        ("/operators", {"cursor": cursor}),
        ("/audit", {"cursor": cursor}),
        ("/audit", {"upn": "user04@contoso.com", "cursor": audit["next_cursor"]}),
        ("/drift", {"cursor": audit["next_cursor"]}),
        ("/tokens", {"state": "in_stock", "cursor": flipped}),  # altered
        ("/tokens", {"state": "in_stock", "cursor": cursor[:-2]}),  # cut short
        ("/tokens", {"state": "in_stock", "cursor": "AAAAAAAAAAAAAAAAAAAA"}),
    ]
    for path, params in refused:
        assert assert_error(api.admin.get(path, params=params), 400, "invalid_input") == REFUSED
    # Not a cursor's alphabet at all: refused by the schema, before the vault is asked.
    assert_error(api.admin.get("/tokens", params={"cursor": "a b/c"}), 422, "invalid_input")
    second = api.admin.get("/tokens", params={"state": "in_stock", "limit": 5, "cursor": cursor})
    assert [t["serial"] for t in second.json()["items"]] == [f"S{n:03d}" for n in range(5, 10)]


# -- the console's list pages page the same way ---------------------------------------------------


def test_console_search_and_drift_pages_follow_their_cursors(
    helpdesk_client: httpx.Client, web_vault: WebVault
) -> None:
    vault = web_vault.open()
    try:
        for n in range(57):
            vault.add_user(LOCAL_ADMIN, f"walker{n:02d}@contoso.com")
    finally:
        vault.close()
    shown: list[str] = []
    page = helpdesk_client.get("/search", params={"q": "walker"})
    while True:
        assert page.status_code == 200, page.text
        found = re.findall(r'<a href="/users/(walker\d+)%40contoso.com">', page.text)
        assert len(found) <= 50
        shown += found
        more = re.search(r'id="more-users" href="(/search\?[^"]+)"', page.text)
        if more is None:
            break
        page = helpdesk_client.get(more[1].replace("&amp;", "&"))
        assert 'id="first-page" href="/search?q=walker"' in page.text
    assert shown == [f"walker{n:02d}" for n in range(57)]

    # A cursor from the search for another text is refused, in one line, on the page.
    first = helpdesk_client.get("/search", params={"q": "walker"}).text
    more = re.search(r"users_after=([A-Za-z0-9_-]+)", first)
    assert more is not None
    other = helpdesk_client.get("/search", params={"q": "walker1", "users_after": more[1]})
    assert other.status_code == 400
    assert REFUSED in other.text

    assert 'rel="next"' not in helpdesk_client.get("/drift").text  # nothing measured: one page
    bad = helpdesk_client.get("/drift", params={"cursor": more[1]})
    assert bad.status_code == 400
    assert REFUSED in bad.text
    assert "Traceback" not in bad.text
