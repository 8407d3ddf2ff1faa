"""The vault facade on SQLite and PostgreSQL: lifecycle, encryption binding, atomicity, locking."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput, NotFound
from oathdesk.otp import Algorithm
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, MasterKeyError
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.schema import audit_log, token_secrets, tokens
from oathdesk.vault.vault import NewToken, Vault
from tests.vault_fixtures import ADMIN

SECRET = bytes(range(20))
UPN = "helga@contoso.com"


def programmable(serial: str, upn: str | None = UPN, secret: bytes = SECRET) -> NewToken:
    return NewToken(serial, "Token2", "miniOTP-2-i", TokenKind.PROGRAMMABLE, secret, upn=upn)


def read_secret(vault: Vault, serial: str) -> bytes:
    with vault.transaction() as conn:
        return vault.read_secret(conn, ADMIN, vault.get_token(serial, conn), purpose="test")


def test_full_lifecycle(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN, display_name="Helga", phone="+41 79 000 00 00")
    vault.add_token(ADMIN, programmable("86596120001"))
    assert read_secret(vault, "86596120001") == SECRET
    for target in (TokenState.BURNED, TokenState.REGISTERED):
        vault.move(ADMIN, "86596120001", target)
    shipped = vault.move(ADMIN, "86596120001", TokenState.SHIPPED, carrier="DHL", tracking="JD1")
    assert (shipped.carrier, shipped.tracking) == ("DHL", "JD1")
    delivered = vault.move(ADMIN, "86596120001", TokenState.DELIVERED)
    assert delivered.delivered_at is not None
    purged = vault.purge(ADMIN, "86596120001", reason="working")
    assert purged.state is TokenState.SECRET_PURGED
    assert not purged.has_secret
    with pytest.raises(Conflict, match="secret is gone"):
        read_secret(vault, "86596120001")
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


def test_illegal_moves_name_the_allowed_ones(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("1"))
    with pytest.raises(Conflict, match=r"is assigned, so it cannot become shipped; next it can be"):
        vault.move(ADMIN, "1", TokenState.SHIPPED)
    classic = NewToken("2", "Token2", "C202", TokenKind.CLASSIC, SECRET, upn=UPN)
    vault.add_token(ADMIN, classic)
    with pytest.raises(Conflict, match="classic token"):
        vault.move(ADMIN, "2", TokenState.BURNED)


def test_lost_token_loses_its_secret(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("3"))
    vault.move(ADMIN, "3", TokenState.LOST, details={"reason": "post"})
    with vault.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(token_secrets)).scalar() == 0


def test_users_and_limits(vault: Vault) -> None:
    with pytest.raises(InvalidInput, match="not a valid UPN"):
        vault.add_user(ADMIN, "helga at contoso")
    vault.add_user(ADMIN, UPN)
    with pytest.raises(Conflict, match="already exists"):
        vault.add_user(ADMIN, UPN.upper())
    vault.update_settings(ADMIN, max_tokens_per_user=2)
    vault.add_tokens(ADMIN, [programmable("a"), programmable("b", secret=bytes(20))])
    with pytest.raises(Conflict, match="more than 2 tokens"):
        vault.add_token(ADMIN, programmable("c"))
    with pytest.raises(NotFound, match="oathdesk user add"):
        vault.add_token(ADMIN, programmable("d", upn="nobody@contoso.com"))


def test_bulk_add_is_all_or_nothing(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("dup", upn=None))
    before = vault.export_audit()
    batch = [programmable(f"s{i}", upn=None) for i in range(50)] + [programmable("dup", upn=None)]
    with pytest.raises(Conflict, match="serial dup is already in the vault"):
        vault.add_tokens(ADMIN, batch)
    assert [t.serial for t in vault.list_tokens()] == ["dup"]
    assert vault.export_audit() == before
    assert vault.add_tokens(ADMIN, batch[:50]) == 50
    assert vault.verify_audit() == []


def test_ciphertext_is_bound_to_its_record(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("x1"), programmable("x2", secret=bytes(range(5, 25)))])
    with vault.transaction() as conn:
        ids = dict(conn.execute(sa.select(tokens.c.serial, tokens.c.id)).all())
        stolen = conn.execute(
            sa.select(token_secrets.c.nonce, token_secrets.c.ciphertext).where(
                token_secrets.c.token_id == ids["x1"]
            )
        ).one()
        conn.execute(
            token_secrets.update()
            .where(token_secrets.c.token_id == ids["x2"])
            .values(nonce=stolen.nonce, ciphertext=stolen.ciphertext)
        )
    with pytest.raises(MasterKeyError, match="does not belong to it"):
        read_secret(vault, "x2")
    assert read_secret(vault, "x1") == SECRET


def test_wrong_master_key_is_refused(vault: Vault, location: VaultLocation) -> None:
    with pytest.raises(MasterKeyError, match="does not open this vault"):
        Vault.open(location, MasterKey.generate())


def test_reassign_replaces_the_seed(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_user(ADMIN, "olaf@contoso.com")
    vault.add_token(ADMIN, programmable("r1"))
    vault.move(ADMIN, "r1", TokenState.BURNED)
    token = vault.reassign(ADMIN, "r1", "olaf@contoso.com", bytes(range(30, 50)))
    assert (token.upn, token.state) == ("olaf@contoso.com", TokenState.ASSIGNED)
    assert read_secret(vault, "r1") == bytes(range(30, 50))


def test_no_lost_update_between_parallel_writers(vault: Vault) -> None:
    """Two operators act on the same token at once: one wins, the other is told to reload."""
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("race"))
    vault.move(ADMIN, "race", TokenState.REGISTERED)
    stale = vault.get_token("race")
    vault.move(ADMIN, "race", TokenState.SHIPPED, carrier="DHL", tracking="1")
    from oathdesk.vault.vault import _update_token

    with pytest.raises(Conflict, match="changed meanwhile"), vault.transaction() as conn:
        _update_token(conn, stale, tracking="overwritten")
    assert vault.get_token("race").tracking == "1"

    results: list[str] = []
    barrier = threading.Barrier(8)

    def add_user(index: int) -> None:
        barrier.wait()
        try:
            vault.add_user(ADMIN, f"user{index}@contoso.com")
            results.append("ok")
        except Conflict as error:
            results.append(str(error))

    threads = [threading.Thread(target=add_user, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 8
    assert vault.verify_audit() == []
    with vault.transaction() as conn:
        seqs = [
            row.seq for row in conn.execute(sa.select(audit_log.c.seq).order_by(audit_log.c.seq))
        ]
    assert seqs == list(range(1, len(seqs) + 1))


def test_parallel_moves_of_one_token(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("p1"))
    vault.move(ADMIN, "p1", TokenState.REGISTERED)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def ship(index: int) -> None:
        barrier.wait()
        try:
            vault.move(ADMIN, "p1", TokenState.SHIPPED, carrier="DHL", tracking=f"T{index}")
            outcomes.append("shipped")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=ship, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("shipped") == 1
    assert len(vault.export_audit(action="token.shipped")) == 1


def test_purge_due_and_undelivered(vault: Vault) -> None:
    from datetime import timedelta

    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("d1"), programmable("d2", secret=bytes(20))])
    for serial in ("d1", "d2"):
        vault.move(ADMIN, serial, TokenState.REGISTERED)
    vault.move(ADMIN, "d1", TokenState.DELIVERED)
    later = vault.get_token("d1").delivered_at
    assert later is not None
    assert vault.purge_due(ADMIN, now=later + timedelta(days=13)) == []
    due = vault.purge_due(ADMIN, now=later + timedelta(days=15), dry_run=True)
    assert [t.serial for t in due] == ["d1"]
    assert vault.get_token("d1").has_secret
    vault.purge_due(ADMIN, now=later + timedelta(days=15))
    assert not vault.get_token("d1").has_secret
    assert [t.serial for t in vault.undelivered(now=later + timedelta(days=31))] == ["d2"]


def test_algorithm_and_period_are_kept(vault: Vault) -> None:
    item = NewToken(
        "h1", "Token2", "C302-i", TokenKind.PROGRAMMABLE, bytes(32), Algorithm.SHA256, 6, 60
    )
    token = vault.add_token(ADMIN, item)
    assert (token.algorithm, token.period, token.state) == (
        Algorithm.SHA256,
        60,
        TokenState.IN_STOCK,
    )


def test_schema_head_constant_matches_the_migrations() -> None:
    from oathdesk.vault import db

    assert db.migration_head() == db.SCHEMA_HEAD
