"""Adding tokens, one or a hundred thousand: encrypted before insert, all or nothing, one audit
record per batch that every token points back to."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput, NotFound
from oathdesk.otp import Algorithm
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import NewToken
from oathdesk.vault.schema import token_secrets, tokens, users
from oathdesk.vault.vault import Vault
from oathdesk.vault.work import serials_digest
from tests.vault.conftest import UPN, classic, programmable, read_secret, secret_for
from tests.vault_fixtures import ADMIN


def table_counts(vault: Vault) -> list[int]:
    """Rows in tokens, token_secrets, users, and audit records."""
    with vault.transaction() as conn:
        counted = [
            int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for table in (tokens, token_secrets, users)
        ]
    return [*counted, vault.audit_count()]


def test_a_batch_is_one_audit_record_that_each_token_points_to(vault: Vault) -> None:
    batch = [classic(f"C{i:05d}", upn=f"u{i % 40}@contoso.com") for i in range(200)]
    before = vault.audit_count()
    added = vault.add_tokens(ADMIN, batch, source="vendor.csv", create_missing_users=True)
    assert added == 200
    records = vault.export_audit()[before:]
    # 40 users created (one record naming how many and which), then one for the 200 tokens:
    # an import adds a bounded number of records, however many people it brings in.
    assert [r["action"] for r in records] == ["users.added", "tokens.added"]
    new_upns = sorted({item.upn or "" for item in batch})
    assert records[0]["details"] == {
        "count": 40,
        "first_upn": new_upns[0],
        "last_upn": new_upns[-1],
        "source": "vendor.csv",
        "upns_sha256": serials_digest(new_upns),
    }
    with vault.transaction() as conn:
        created = conn.execute(sa.select(users.c.upn)).scalars()
        assert serials_digest(created) == records[0]["details"]["upns_sha256"]
    assert records[-1]["details"] == {
        "count": 200,
        "first_serial": "C00000",
        "last_serial": "C00199",
        "source": "vendor.csv",
        "users": 40,
        "serials_sha256": serials_digest(item.serial for item in batch),
    }
    # An auditor can check that the tokens pointing to the record are exactly those it names.
    with vault.transaction() as conn:
        pointing = conn.execute(
            sa.select(tokens.c.serial).where(tokens.c.added_seq == records[-1]["seq"])
        ).scalars()
        assert serials_digest(pointing) == records[-1]["details"]["serials_sha256"]
    about_one = vault.export_audit(serial="C00123")
    assert [r["action"] for r in about_one] == ["tokens.added"]
    assert read_secret(vault, "C00123") == secret_for("C00123")
    token = vault.get_token("C00123")
    assert (token.state, token.upn) == (TokenState.ASSIGNED, "u3@contoso.com")
    assert token.assigned_at is not None
    assert vault.verify_audit() == []


def test_one_token_is_one_token_record(vault: Vault) -> None:
    vault.add_token(ADMIN, classic("solo"))
    assert vault.export_audit(serial="solo")[0]["action"] == "token.added"
    assert vault.get_token("solo").state is TokenState.IN_STOCK


def test_a_clash_with_the_vault_leaves_it_untouched(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("dup1", upn=None), programmable("dup2", upn=None)])
    before, audit_before = table_counts(vault), vault.export_audit()
    batch = [programmable(f"s{i}") for i in range(3)] + [programmable("dup1", upn=None)]
    with pytest.raises(Conflict, match="a token with serial dup1 is already in the vault"):
        vault.add_tokens(ADMIN, batch)
    assert table_counts(vault) == before
    assert vault.export_audit() == audit_before
    many = [classic(f"n{i}") for i in range(3)] + [classic("dup1"), classic("dup2")]
    with pytest.raises(Conflict, match="serials dup1, dup2 are already in the vault"):
        vault.add_tokens(ADMIN, many)
    assert table_counts(vault) == before
    assert vault.add_tokens(ADMIN, batch[:3]) == 3
    assert vault.verify_audit() == []


def test_problems_inside_a_batch(vault: Vault) -> None:
    with pytest.raises(Conflict, match="serial x appears twice in this batch"):
        vault.add_tokens(ADMIN, [classic("x"), classic("y"), classic("x")])
    same = secret_for("shared")
    twins = [programmable("t1", None, same), programmable("t2", None, same)]
    with pytest.raises(Conflict, match="tokens t1 and t2 have the same secret"):
        vault.add_tokens(ADMIN, twins)
    with pytest.raises(InvalidInput, match="no serial number"):
        vault.add_tokens(ADMIN, [classic("  ")])
    assert vault.list_tokens() == []


def test_users_and_the_token_limit(vault: Vault) -> None:
    with pytest.raises(InvalidInput, match="not a valid UPN"):
        vault.add_user(ADMIN, "helga at contoso")
    vault.add_user(ADMIN, UPN, display_name=" Helga ", phone="+41 79 000 00 00")
    assert vault.get_user(UPN.upper()).display_name == "Helga"
    with pytest.raises(Conflict, match="already exists"):
        vault.add_user(ADMIN, UPN.upper())
    vault.update_settings(ADMIN, max_tokens_per_user=2)
    vault.add_tokens(ADMIN, [programmable("a"), programmable("b")])
    with pytest.raises(Conflict, match="would have 3 tokens, over the limit of 2"):
        vault.add_token(ADMIN, programmable("c"))
    vault.add_token(ADMIN, programmable("d", upn=None))
    with pytest.raises(Conflict, match="already has 2 tokens"):
        vault.assign(ADMIN, "d", UPN)
    vault.move(ADMIN, "a", TokenState.LOST, details={"reason": "post"})
    assert vault.token_counts([UPN, "nobody@contoso.com"]) == {UPN: 1, "nobody@contoso.com": 0}
    vault.assign(ADMIN, "d", UPN)  # a lost token no longer counts
    with pytest.raises(NotFound, match=r"oathdesk user add nobody@contoso\.com"):
        vault.add_token(ADMIN, programmable("e", upn="nobody@contoso.com"))


def test_upns_are_canonical(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("u1", upn=" Olaf@Contoso.com ")], create_missing_users=True)
    assert vault.get_token("u1").upn == "olaf@contoso.com"
    assert [u.upn for u in vault.list_users()] == ["olaf@contoso.com"]


def test_settings_are_typed(vault: Vault) -> None:
    assert vault.settings().retention_days == 14
    updated = vault.update_settings(ADMIN, retention_days=7, four_eyes=True)
    assert (updated.retention_days, updated.four_eyes) == (7, True)
    assert vault.settings() == updated
    with pytest.raises(InvalidInput, match="retention_days is a whole number"):
        vault.update_settings(ADMIN, retention_days="7")
    with pytest.raises(InvalidInput, match="four_eyes is yes or no"):
        vault.update_settings(ADMIN, four_eyes=1)
    with pytest.raises(InvalidInput, match="unknown setting 'colour'"):
        vault.update_settings(ADMIN, colour="blue")
    assert vault.settings() == updated


def test_progress_and_token_fields(vault: Vault) -> None:
    calls: list[tuple[int, int]] = []
    batch = [classic(f"P{i:04d}") for i in range(2500)]
    vault.add_tokens(ADMIN, batch, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]
    item = NewToken(
        "h1", "Token2", "C302-i", TokenKind.PROGRAMMABLE, bytes(range(32)), Algorithm.SHA256, 8, 60
    )
    token = vault.add_token(ADMIN, item)
    assert (token.algorithm, token.digits, token.period, token.kind) == (
        Algorithm.SHA256,
        8,
        60,
        TokenKind.PROGRAMMABLE,
    )
    assert token.has_secret


@pytest.mark.slow
def test_a_bulk_import_of_100_000_tokens_lands_whole(vault: Vault, location: VaultLocation) -> None:
    """Issue 5's size: 100,000 tokens in one import. How fast is for `make bench` (its target is
    50,000 tokens/s, measured side by side with privacyIDEA); a timed floor here failed on
    slower machines while nothing was wrong."""
    if location.sqlite_path is None:
        pytest.skip("the embedded SQLite vault is the one bulk imports are sized for")
    batch = [classic(f"B{i:06d}") for i in range(100_000)]
    assert vault.add_tokens(ADMIN, batch, source="bulk test") == 100_000
    assert read_secret(vault, "B054321") == secret_for("B054321")
