"""Partial-match search and audit pages (vault/lookup.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.lookup import (
    audit_actions,
    audit_log_size,
    audit_page,
    drift_history,
    recent_audit_about,
    search_tokens,
    search_users,
    token_page,
)
from oathdesk.vault.vault import NewToken, Vault
from tests.vault_fixtures import ADMIN


def fill(vault: Vault) -> None:
    vault.add_user(ADMIN, "helga@contoso.com", display_name="Helga Braun")
    vault.add_user(ADMIN, "hel_ga@contoso.com", display_name="Underscore")
    vault.add_user(ADMIN, "olaf@contoso.com", display_name="Olaf 100% Berg")
    for serial, upn, secret in (
        ("60234567", "helga@contoso.com", 1),
        ("60234568", "olaf@contoso.com", 2),
        ("99990000", None, 3),
    ):
        vault.add_token(
            ADMIN,
            NewToken(serial, "Token2", "C202", TokenKind.CLASSIC, bytes([secret]) * 20, upn=upn),
        )
    vault.move(ADMIN, "60234567", TokenState.REGISTERED)
    vault.move(ADMIN, "60234567", TokenState.SHIPPED, carrier="DHL", tracking="JD0146")


def test_search_is_partial_case_blind_and_literal(vault: Vault) -> None:
    fill(vault)
    assert [u.upn for u in search_users(vault, "HELGA").items] == ["helga@contoso.com"]
    assert [u.upn for u in search_users(vault, "braun").items] == ["helga@contoso.com"]
    # _ and % are what the operator typed, not wildcards.
    assert [u.upn for u in search_users(vault, "hel_").items] == ["hel_ga@contoso.com"]
    assert [u.upn for u in search_users(vault, "100%").items] == ["olaf@contoso.com"]
    assert search_users(vault, "o%b").items == []  # as a wildcard it would match olaf
    assert [t.serial for t in search_tokens(vault, "02345").items] == ["60234567", "60234568"]
    assert [t.serial for t in search_tokens(vault, "jd01").items] == ["60234567"]
    first = search_users(vault, "contoso", limit=2)
    assert [u.upn for u in first.items] == ["hel_ga@contoso.com", "helga@contoso.com"]
    rest = search_users(vault, "contoso", cursor=first.next_cursor, limit=2)
    assert ([u.upn for u in rest.items], rest.next_cursor) == (["olaf@contoso.com"], None)


def test_audit_pages_filters_and_recent(vault: Vault) -> None:
    fill(vault)
    everything = audit_page(vault, AuditFilter(), limit=1000)
    assert len(everything.items) == vault.audit_count() == audit_log_size(vault)
    assert everything.next_cursor is None
    seqs = [r["seq"] for r in everything.items]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    first = audit_page(vault, AuditFilter(), limit=2)
    second = audit_page(vault, AuditFilter(), cursor=first.next_cursor, limit=3)
    assert [r["seq"] for r in second.items] == seqs[2:5]
    shipped = audit_page(vault, AuditFilter(action="token.shipped"))
    assert len(shipped.items) == 1
    assert shipped.items[0]["details"] == {"carrier": "DHL", "tracking": "JD0146"}
    olaf = audit_page(vault, AuditFilter(upn="OLAF@contoso.com"))
    assert {r["action"] for r in olaf.items} == {"user.added", "token.added"}
    by_serial = audit_page(vault, AuditFilter(serial="60234567"))
    assert len(by_serial.items) == 3
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert audit_page(vault, AuditFilter(since=tomorrow)).items == []
    assert audit_page(vault, AuditFilter(until=tomorrow), limit=1000).items == everything.items
    assert "token.shipped" in audit_actions(vault)
    recent = recent_audit_about(vault, "helga@contoso.com", ["60234567"], limit=2)
    assert [r["action"] for r in recent] == ["token.shipped", "token.registered"]


def test_a_pages_drift_history_is_its_tokens_measurements_in_utc(vault: Vault) -> None:
    fill(vault)
    start = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with vault.transaction() as conn:
        for serial, drifts in (("60234567", (3, 9)), ("99990000", (-4,))):
            token = vault.get_token(serial, conn)
            for day, drift in enumerate(drifts):
                vault.record_drift(conn, token, drift, measured_at=start + timedelta(days=day))
    page = token_page(vault, drift_measured=True)
    assert [t.serial for t in page.items] == ["60234567", "99990000"]
    history = drift_history(vault, page.items)
    assert history == {
        "60234567": [(start, 3), (start + timedelta(days=1), 9)],
        "99990000": [(start, -4)],
    }
    assert all(moment.tzinfo is not None for moment, _ in history["60234567"])
    assert history == vault.drift_history()
    assert drift_history(vault, page.items[1:]) == {"99990000": [(start, -4)]}
