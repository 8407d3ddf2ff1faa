"""A user's timeline shows the records that brought their tokens and created them, also when
one record speaks for a whole import (tokens.added, users.added name no single UPN): the token
and user rows point to those records (tokens.added_seq, users.added_seq), so an import adds a
bounded number of records, not one per user, and every user of it still sees it."""

from __future__ import annotations

from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.lookup import audit_about_page, audit_page
from oathdesk.vault.vault import Vault
from tests.vault.conftest import classic, programmable
from tests.vault_fixtures import ADMIN


def _actions(vault: Vault, upn: str) -> list[str]:
    serials = [t.serial for t in vault.list_tokens(upn=upn)]
    return [r["action"] for r in audit_about_page(vault, upn, serials, limit=50).items]


def test_a_two_row_import_is_on_both_users_timelines(vault: Vault) -> None:
    vault.add_tokens(
        ADMIN,
        [programmable("T1", "ann@contoso.com"), programmable("T2", "bob@contoso.com")],
        create_missing_users=True,
    )
    for upn in ("ann@contoso.com", "bob@contoso.com"):
        assert _actions(vault, upn) == ["tokens.added", "users.added"]


def test_a_fifty_row_import_adds_at_most_three_records(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("C0")])  # a record before, another user's
    before = audit_page(vault, AuditFilter(), limit=1000).items
    vault.add_tokens(
        ADMIN,
        [programmable(f"P{n:02d}", f"user{n:02d}@contoso.com") for n in range(50)],
        create_missing_users=True,
    )
    after = audit_page(vault, AuditFilter(), limit=1000).items
    assert len(after) - len(before) <= 3
    for upn in ("user00@contoso.com", "user49@contoso.com"):
        assert _actions(vault, upn) == ["tokens.added", "users.added"]
    assert _actions(vault, "nobody@contoso.com") == []


def test_the_timeline_pages_through_import_records_and_own_records(vault: Vault) -> None:
    upn = "ann@contoso.com"
    vault.add_tokens(
        ADMIN,
        [programmable("T1", upn), programmable("T2", "bob@contoso.com")],
        create_missing_users=True,
    )
    vault.add_tokens(ADMIN, [programmable("T3", upn)])  # one row: its record names the user
    serials = ["T1", "T3"]
    seen: list[int] = []
    cursor = None
    while True:
        page = audit_about_page(vault, upn, serials, cursor=cursor, limit=1)
        seen += [r["seq"] for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    everything = audit_about_page(vault, upn, serials, limit=50).items
    assert seen == [r["seq"] for r in everything] == sorted(seen, reverse=True)
    assert [r["action"] for r in everything] == ["token.added", "tokens.added", "users.added"]
