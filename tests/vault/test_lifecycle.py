"""The token lifecycle on SQLite and PostgreSQL: legal and illegal moves, erased secrets,
reassignment with a new seed, retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput
from oathdesk.vault.db import StorageError
from oathdesk.vault.lifecycle import TRANSITIONS, TokenKind, TokenState
from oathdesk.vault.schema import token_secrets
from oathdesk.vault.vault import Vault
from tests.vault.conftest import UPN, classic, programmable, read_secret, secret_for
from tests.vault_fixtures import ADMIN, fail_audit_inserts

S = TokenState


def stored_ciphertexts(vault: Vault) -> list[bytes]:
    with vault.transaction() as conn:
        return [bytes(c) for c in conn.execute(sa.select(token_secrets.c.ciphertext)).scalars()]


def test_full_lifecycle(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN, display_name="Helga", phone="+41 79 000 00 00")
    vault.add_token(ADMIN, programmable("86596120001"))
    assert read_secret(vault, "86596120001") == secret_for("86596120001")
    for target in (S.BURNED, S.REGISTERED):
        vault.move(ADMIN, "86596120001", target)
    shipped = vault.move(ADMIN, "86596120001", S.SHIPPED, carrier="DHL", tracking="JD1")
    assert (shipped.carrier, shipped.tracking) == ("DHL", "JD1")
    delivered = vault.move(ADMIN, "86596120001", S.DELIVERED)
    purged = vault.purge(ADMIN, "86596120001", reason="working")
    assert purged.state is S.SECRET_PURGED
    assert not purged.has_secret
    stamps = [
        purged.assigned_at,
        purged.burned_at,
        purged.registered_at,
        purged.shipped_at,
        purged.delivered_at,
        purged.purged_at,
    ]
    assert all(stamp is not None for stamp in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert delivered.delivered_at == purged.delivered_at
    assert purged.version == 6  # added as 1, then five moves
    with pytest.raises(Conflict, match=r"secret is gone\. For a sign-in now, issue a Temporary"):
        read_secret(vault, "86596120001")
    assert stored_ciphertexts(vault) == []
    assert vault.verify_audit() == []
    actions = [r["action"] for r in vault.export_audit(serial="86596120001")]
    assert actions == [
        "token.added",
        "token.secret_read",
        "token.burned",
        "token.registered",
        "token.shipped",
        "token.delivered",
        "token.secret_purged",
    ]
    assert vault.export_audit(action="token.shipped")[0]["details"] == {
        "carrier": "DHL",
        "tracking": "JD1",
    }


def test_classic_tokens_skip_burning(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("c1", upn=UPN)], create_missing_users=True)
    with pytest.raises(Conflict, match="classic token with a factory seed; it cannot be burned"):
        vault.move(ADMIN, "c1", S.BURNED)
    assert vault.move(ADMIN, "c1", S.REGISTERED).state is S.REGISTERED


def test_illegal_moves_name_the_state_and_the_next_steps(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("1"))
    with pytest.raises(
        Conflict,
        match=r"token 1 is assigned, so it cannot become shipped; next it can be: burned, "
        r"registered, lost, revoked, retired",
    ):
        vault.move(ADMIN, "1", S.SHIPPED, carrier="x", tracking="y")
    with pytest.raises(InvalidInput, match="oathdesk token purge 1"):
        vault.move(ADMIN, "1", S.SECRET_PURGED)
    with pytest.raises(InvalidInput, match="oathdesk token assign 1 UPN"):
        vault.move(ADMIN, "1", S.ASSIGNED)
    with pytest.raises(Conflict, match="is assigned, so it cannot become secret_purged"):
        vault.purge(ADMIN, "1", reason="too early")
    vault.move(ADMIN, "1", S.RETIRED, details={"reason": "broken"})
    with pytest.raises(Conflict, match="is retired, so it cannot become lost; it is retired for"):
        vault.move(ADMIN, "1", S.LOST)
    assert vault.get_token("1").version == 2  # the refusals changed nothing


def test_every_state_is_reachable_only_by_its_transitions() -> None:
    reachable = {S.IN_STOCK}
    frontier = [S.IN_STOCK]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(S)


def test_shipping_needs_carrier_and_tracking(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("s1", upn=UPN)], create_missing_users=True)
    vault.move(ADMIN, "s1", S.REGISTERED)
    with pytest.raises(InvalidInput, match="carrier and the tracking reference"):
        vault.move(ADMIN, "s1", S.SHIPPED, carrier="DHL")


@pytest.mark.parametrize("ending", [S.LOST, S.REVOKED, S.RETIRED])
def test_ending_a_token_erases_its_secret(vault: Vault, ending: TokenState) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("e1"), programmable("e2")])
    vault.move(ADMIN, "e1", ending, details={"reason": "post"})
    token = vault.get_token("e1")
    assert (token.state, token.has_secret, token.closed_at is not None) == (ending, False, True)
    assert len(stored_ciphertexts(vault)) == 1
    with pytest.raises(Conflict, match="its secret is gone"):
        read_secret(vault, "e1")


def test_reassign_replaces_the_seed(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_user(ADMIN, "olaf@contoso.com")
    vault.add_token(ADMIN, programmable("r1"))
    vault.move(ADMIN, "r1", S.BURNED)
    vault.move(ADMIN, "r1", S.REGISTERED)
    old_ciphertext = stored_ciphertexts(vault)
    token = vault.reassign(ADMIN, "r1", "olaf@contoso.com", secret_for("new seed"))
    assert (token.upn, token.state) == ("olaf@contoso.com", S.ASSIGNED)
    assert (token.burned_at, token.registered_at) == (None, None)
    assert read_secret(vault, "r1") == secret_for("new seed")
    assert not set(old_ciphertext) & set(stored_ciphertexts(vault))
    record = vault.export_audit(action="token.reassigned")[0]
    assert (record["upn"], record["details"]) == ("olaf@contoso.com", {"previous_upn": UPN})
    vault.add_tokens(ADMIN, [classic("c9", upn=UPN)])
    with pytest.raises(Conflict, match="only programmable tokens can be reassigned"):
        vault.reassign(ADMIN, "c9", "olaf@contoso.com", secret_for("x"))
    vault.move(ADMIN, "r1", S.LOST)
    with pytest.raises(Conflict, match="is lost; only a token that was assigned"):
        vault.reassign(ADMIN, "r1", UPN, secret_for("y"))


def test_reassign_keeps_the_tokens_per_user_limit(vault: Vault) -> None:
    """Reassigning gives a user a token: the vault's per-user limit holds there as on assign."""
    vault.add_user(ADMIN, UPN)
    vault.add_user(ADMIN, "olaf@contoso.com")
    vault.update_settings(ADMIN, max_tokens_per_user=1)
    vault.add_tokens(ADMIN, [programmable("r2"), classic("c2", upn="olaf@contoso.com")])
    vault.move(ADMIN, "r2", S.BURNED)
    with pytest.raises(Conflict, match=r"olaf@contoso\.com already has 1 tokens, the limit"):
        vault.reassign(ADMIN, "r2", "olaf@contoso.com", secret_for("new seed"))
    assert vault.get_token("r2").upn == UPN
    # Its own user at the limit may get it back with a new seed: it is the token they hold.
    token = vault.reassign(ADMIN, "r2", UPN, secret_for("another seed"))
    assert (token.upn, token.state) == (UPN, S.ASSIGNED)


def test_purge_due_and_undelivered(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("d1"), programmable("d2"), programmable("d3")])
    for serial in ("d1", "d2", "d3"):
        vault.move(ADMIN, serial, S.REGISTERED)
    vault.move(ADMIN, "d1", S.DELIVERED)
    vault.move(ADMIN, "d3", S.DELIVERED)
    delivered = vault.get_token("d1").delivered_at
    assert delivered is not None
    assert vault.purge_due(ADMIN, now=delivered + timedelta(days=13)) == []
    due = vault.purge_due(ADMIN, now=delivered + timedelta(days=15), dry_run=True)
    assert [t.serial for t in due] == ["d1", "d3"]
    assert vault.get_token("d1").has_secret
    vault.purge_due(ADMIN, now=delivered + timedelta(days=15))
    assert [t.state for t in map(vault.get_token, ("d1", "d2", "d3"))] == [
        S.SECRET_PURGED,
        S.REGISTERED,
        S.SECRET_PURGED,
    ]
    assert len(stored_ciphertexts(vault)) == 1
    assert [t.serial for t in vault.undelivered(now=delivered + timedelta(days=29))] == []
    assert [t.serial for t in vault.undelivered(now=delivered + timedelta(days=31))] == ["d2"]
    purges = vault.export_audit(action="token.secret_purged")
    assert {r["details"]["reason"] for r in purges} == {"retention period over"}


def test_kinds_are_what_was_stored(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("k1"), programmable("k2", upn=None)])
    assert [t.kind for t in vault.list_tokens()] == [TokenKind.CLASSIC, TokenKind.PROGRAMMABLE]
    assert [t.serial for t in vault.list_tokens(state="in_stock")] == ["k1", "k2"]


def test_no_change_without_its_audit_record(vault: Vault) -> None:
    """Fail closed: when the audit record cannot be written, the action is refused whole."""
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("f1"))
    with vault.transaction() as conn:
        fail_audit_inserts(conn)
    before = vault.get_token("f1")
    with pytest.raises(StorageError, match=r"\(audit store full\); nothing was changed"):
        vault.move(ADMIN, "f1", S.LOST, details={"reason": "post"})
    with pytest.raises(StorageError, match="audit store full"):
        vault.add_tokens(ADMIN, [classic("f2"), classic("f3")])
    with pytest.raises(StorageError, match="audit store full"):
        vault.add_user(ADMIN, "olaf@contoso.com")
    with pytest.raises(StorageError, match="audit store full"):
        read_secret(vault, "f1")
    assert vault.get_token("f1") == before
    assert [t.serial for t in vault.list_tokens()] == ["f1"]
    assert [u.upn for u in vault.list_users()] == [UPN]
