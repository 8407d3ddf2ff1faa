"""One seed on two tokens across the vault, found through keyed fingerprints (SQLite and
PostgreSQL): refused on insert and reassign, cleared on purge, filled in for older vaults."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault import db, fingerprints
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.schema import token_secrets, tokens
from oathdesk.vault.vault import Vault
from tests.vault.conftest import UPN, classic, programmable, read_secret, secret_for
from tests.vault.test_tokens import table_counts
from tests.vault_fixtures import ADMIN


def stored_fingerprints(vault: Vault) -> dict[str, bytes | None]:
    """Serial -> stored fingerprint, for every token that has a secret."""
    query = sa.select(tokens.c.serial, token_secrets.c.fingerprint).join(
        token_secrets, token_secrets.c.token_id == tokens.c.id
    )
    with vault.transaction() as conn:
        return {
            serial: None if fp is None else bytes(fp) for serial, fp in conn.execute(query).all()
        }


def test_a_seed_already_in_the_vault_is_refused_naming_both_tokens(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("A1"), classic("A2")])
    before, audit_before = table_counts(vault), vault.export_audit()
    twin = programmable("B2", upn=None, secret=secret_for("A2"))
    batch = [classic(f"N{i}") for i in range(5)] + [twin]
    with pytest.raises(Conflict) as refused:
        vault.add_tokens(ADMIN, batch)
    message = str(refused.value)
    assert "token B2 has the same secret as token A2, already in the vault" in message
    assert "nothing was changed" in message
    assert secret_for("A2").hex() not in message
    assert table_counts(vault) == before
    assert vault.export_audit() == audit_before
    # `token add` goes through the same path.
    with pytest.raises(Conflict, match="same secret as token A1"):
        vault.add_token(ADMIN, programmable("B3", upn=None, secret=secret_for("A1")))
    assert vault.secret_holders([secret_for("A1"), secret_for("N0"), secret_for("A2")]) == [
        "A1",
        None,
        "A2",
    ]
    assert vault.add_tokens(ADMIN, batch[:5]) == 5
    assert vault.verify_audit() == []


def test_fingerprints_are_keyed_and_follow_the_secret(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_user(ADMIN, "olaf@contoso.com")
    vault.add_tokens(ADMIN, [programmable("r1"), classic("c1", upn=UPN)])
    stored = stored_fingerprints(vault)
    assert set(stored) == {"r1", "c1"}
    first = stored["r1"]
    assert first is not None
    assert len(first) == 16
    # Not a plain hash of the seed: without the vault's key it cannot be tested against guesses.
    seed = secret_for("r1")
    assert first != hashlib.sha256(seed).digest()[:16]
    assert first != hmac.digest(b"", seed, "sha256")[:16]
    # Reassign: the old seed (and its fingerprint) goes, the new one is fingerprinted.
    vault.reassign(ADMIN, "r1", "olaf@contoso.com", secret_for("fresh"))
    assert vault.secret_holders([seed, secret_for("fresh")]) == [None, "r1"]
    assert stored_fingerprints(vault)["r1"] not in (None, first)
    with pytest.raises(Conflict, match="token r1 has the same secret as token c1"):
        vault.reassign(ADMIN, "r1", UPN, secret_for("c1"))
    assert read_secret(vault, "r1") == secret_for("fresh")
    # Purge and the closing moves erase the fingerprint with the secret.
    vault.move(ADMIN, "c1", TokenState.LOST, details={"reason": "post"})
    assert set(stored_fingerprints(vault)) == {"r1"}
    assert vault.secret_holders([secret_for("c1")]) == [None]
    for target in (TokenState.BURNED, TokenState.REGISTERED, TokenState.SHIPPED):
        vault.move(ADMIN, "r1", target, carrier="DHL", tracking="JD1")
    vault.move(ADMIN, "r1", TokenState.DELIVERED)
    vault.purge(ADMIN, "r1", reason="working")
    assert stored_fingerprints(vault) == {}


def test_many_lookups_find_every_clash(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small batches look each seed up (in several IN queries); big ones against a vault of
    about their size scan the stored fingerprints instead. Both find every clash."""
    vault.add_tokens(ADMIN, [classic(f"V{i:05d}") for i in range(6000)])
    counted: list[int] = []
    real_count = fingerprints._count

    def spy(conn: sa.Connection) -> int:
        counted.append(real_count(conn))
        return counted[-1]

    monkeypatch.setattr(fingerprints, "_count", spy)
    looked_up = [secret_for(f"V{i:05d}") for i in range(0, 6000, 5)] + [secret_for("nowhere")]
    assert vault.secret_holders(looked_up) == [f"V{i:05d}" for i in range(0, 6000, 5)] + [None]
    assert counted == []  # 1,201 seeds: looked up
    scanned = [secret_for(f"V{i:05d}") for i in range(0, 6000, 2)] + [secret_for("nowhere")]
    assert vault.secret_holders(scanned) == [f"V{i:05d}" for i in range(0, 6000, 2)] + [None]
    assert counted == [6000]  # 3,001 seeds against 6,000 stored: scanned
    for size in (1400, 2500):
        clashing = [classic(f"W{size}-{i}") for i in range(size)] + [
            programmable(f"W{size}-dup", upn=None, secret=secret_for("V05999"))
        ]
        with pytest.raises(
            Conflict, match=f"token W{size}-dup has the same secret as token V05999"
        ):
            vault.add_tokens(ADMIN, clashing)


def test_secrets_stored_before_fingerprints_are_filled_in(
    vault: Vault, location: VaultLocation, master_key: MasterKey
) -> None:
    vault.add_tokens(ADMIN, [classic("old1"), classic("old2")])
    vault.close()
    engine = db.create_engine(location.database_url)
    db.downgrade(engine, "0003")  # what oathdesk wrote before migration 0004
    db.upgrade(engine)
    engine.dispose()
    reopened = Vault.open(location, master_key)
    try:
        assert stored_fingerprints(reopened) == {"old1": None, "old2": None}
        # A read-only check finds them without writing anything.
        records = reopened.audit_count()
        assert reopened.secret_holders([secret_for("old2")]) == ["old2"]
        assert stored_fingerprints(reopened) == {"old1": None, "old2": None}
        assert reopened.audit_count() == records
        # A refused batch fills nothing in (its transaction rolls back) ...
        with pytest.raises(Conflict, match="token new2 has the same secret as token old1"):
            reopened.add_tokens(
                ADMIN, [classic("new1"), programmable("new2", None, secret_for("old1"))]
            )
        assert stored_fingerprints(reopened) == {"old1": None, "old2": None}
        # ... the next accepted one does, with an audit record.
        reopened.add_token(ADMIN, classic("new3"))
        filled = stored_fingerprints(reopened)
        assert all(fp is not None for fp in filled.values())
        assert len(set(filled.values())) == 3
        assert [
            r["details"] for r in reopened.export_audit(action="vault.fingerprints_filled")
        ] == [{"count": 2}]
        assert reopened.verify_audit() == []
    finally:
        reopened.close()
