"""The user page's events a page at a time: the newest 20, then older ones by a cursor link
(the list bench's user had a long history; the page read all of it)."""

from __future__ import annotations

import re

import httpx

from oathdesk.vault.audit import AuditEntry
from tests.web.conftest import LOCAL_ADMIN, WebVault

UPN = "helga@contoso.com"


def seqs_shown(html: str) -> list[int]:
    table = re.search(r'<table class="hd-table hd-audit" id="audit-log">(.*?)</table>', html, re.S)
    assert table
    return [
        int(seq)
        for seq in re.findall(r'<tr class="hd-audit-row"[^>]*>\s*<td>(\d+)</td>', table.group(1))
    ]


def test_a_users_events_page_with_an_older_link(
    web_vault: WebVault, helpdesk_client: httpx.Client
) -> None:
    vault = web_vault.open()
    try:
        vault.add_user(LOCAL_ADMIN, UPN)
        entries = [AuditEntry("local:test", "test.note", UPN, "", {"n": n}) for n in range(45)]
        with vault.transaction() as conn:
            vault.audit_entries(conn, entries)
        expected = [r["seq"] for r in reversed(vault.export_audit(upn=UPN))]
    finally:
        vault.close()
    assert len(expected) == 46  # the notes and the user's creation
    seen: list[int] = []
    path: str | None = f"/users/{UPN}"
    while path is not None:
        page = helpdesk_client.get(path)
        assert page.status_code == 200
        seen += seqs_shown(page.text)
        older = re.search(r'id="older-events" href="([^"]+)"', page.text)
        path = older.group(1).replace("&amp;", "&").split("#")[0] if older else None
    assert seen == expected  # 20, 20, 6: newest first, none twice, none missing

    altered = helpdesk_client.get(f"/users/{UPN}", params={"events": "AAAAAAAAAAAAAAAAAAAAAAAA"})
    assert altered.status_code == 400
    assert "this page link is not valid for this list" in altered.text


def test_a_two_row_import_is_on_both_users_pages_and_the_tokens(
    web_vault: WebVault, helpdesk_client: httpx.Client
) -> None:
    """One tokens.added and one users.added record speak for the import (neither names a UPN);
    each user's page and each token's page still shows them (issue 16)."""
    from oathdesk.vault.lifecycle import TokenKind
    from oathdesk.vault.models import NewToken

    upns = ["ann@contoso.com", "bob@contoso.com"]
    vault = web_vault.open()
    try:
        rows = [
            NewToken(
                f"T{n}",
                "Token2",
                "miniOTP-2-i",
                TokenKind.PROGRAMMABLE,
                bytes([n + 7]) * 20,
                upn=upn,
            )
            for n, upn in enumerate(upns)
        ]
        vault.add_tokens(LOCAL_ADMIN, rows, source="tokens.csv", create_missing_users=True)
        records = {r["action"]: r["seq"] for r in vault.export_audit()}
    finally:
        vault.close()
    bulk = [records["tokens.added"], records["users.added"]]  # newest first
    for n, upn in enumerate(upns):
        page = helpdesk_client.get(f"/users/{upn}")
        assert page.status_code == 200
        assert seqs_shown(page.text) == bulk
        token_page = helpdesk_client.get(f"/tokens/T{n}")
        assert token_page.status_code == 200
        assert "tokens.added" in token_page.text
