"""The quick read path (``vault.quickread``) answers exactly as the ``Vault`` facade does.

The SQL of ``rows``/``lookup`` stays the one source of truth: every quick query runs here beside
its ``Vault`` counterpart on the same SQLite vault (tokens in every state, with and without an
owner, a secret, drift measurements, awkward text), and the answers must be equal, errors
included. Where the quick path must not answer (PostgreSQL, a read-only file, another schema, a
wrong key, an interrupted rotation) it declines, and the ``Vault`` says what is wrong.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.errors import NotFound
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, MasterKeyError, write_key_file
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import NewToken
from oathdesk.vault.quickread import QuickReader
from oathdesk.vault.schema import audit_log
from oathdesk.vault.schema_version import schema_head
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN

S = TokenState
# The path of states each token walks, ending at the state it is left in.
PATHS: dict[TokenState, tuple[TokenState, ...]] = {
    S.IN_STOCK: (),
    S.ASSIGNED: (),
    S.BURNED: (S.BURNED,),
    S.REGISTERED: (S.BURNED, S.REGISTERED),
    S.SHIPPED: (S.BURNED, S.REGISTERED, S.SHIPPED),
    S.DELIVERED: (S.BURNED, S.REGISTERED, S.DELIVERED),
    S.SECRET_PURGED: (S.BURNED, S.REGISTERED, S.DELIVERED, S.SECRET_PURGED),
    S.LOST: (S.LOST,),
    S.REVOKED: (S.REVOKED,),
    S.RETIRED: (S.LOST, S.RETIRED),
}
UPNS = ["ann@contoso.com", "bob@contoso.com", "carla.o'neil@contoso.com", "d_e@contoso.com"]


@pytest.fixture
def sqlite_vault(tmp_path: Path) -> Iterator[tuple[Vault, VaultLocation, MasterKey]]:
    path = tmp_path / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", path.with_suffix(".key"), path)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, ADMIN)
    yield vault, location, key
    vault.close()


def _populate(vault: Vault) -> None:
    """Users (one without tokens), and per state several tokens: with an owner and without,
    programmable and classic, some with drift measured, one with control characters."""
    vault.update_settings(ADMIN, max_tokens_per_user=20)
    for index, upn in enumerate(UPNS):
        vault.add_user(ADMIN, upn, display_name=f"User {index}", phone=f"+4420794600{index}")
    vault.add_user(ADMIN, "nobody@contoso.com", notes="no tokens\tat all")
    number = 0
    for state, path in PATHS.items():
        for copy in range(3):
            number += 1
            serial = f"T{number:03d}{'x' * copy}"
            owner = None if state is S.IN_STOCK else UPNS[number % len(UPNS)]
            item = NewToken(
                serial=serial,
                manufacturer="Token2",
                model="C202\x1b[31m" if copy == 2 else "programmable",
                kind=TokenKind.PROGRAMMABLE,
                secret=bytes([number]) * 20,
                upn=owner,
            )
            vault.add_token(ADMIN, item)
            if state is S.LOST and owner is None:
                continue
            for target in path:
                details = {"reason": "test"} if target in (S.LOST, S.REVOKED, S.RETIRED) else None
                if target is S.SECRET_PURGED:
                    vault.purge(ADMIN, serial, reason="test")
                elif target is S.SHIPPED:
                    vault.move(ADMIN, serial, target, carrier="DHL", tracking=f"TRK{number}")
                else:
                    vault.move(ADMIN, serial, target, details=details)
    # A classic token in stock, with no owner.
    vault.add_token(
        ADMIN,
        NewToken(serial="C-CLASSIC", manufacturer="Feitian", model="c100", kind=TokenKind.CLASSIC),
    )
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with vault.transaction() as conn:
        for offset, serial in enumerate(["T004", "T010", "T013", "T016"]):
            token = vault.get_token(serial, conn)
            for day in range(3):
                moment = at + timedelta(days=day * 10, microseconds=offset)
                vault.record_drift(conn, token, (offset + 1) * 7 * day, measured_at=moment)


def _quick(location: VaultLocation, key: MasterKey) -> QuickReader:
    reader = QuickReader.open(location, key)
    assert reader is not None
    return reader


def test_every_quick_read_answers_as_the_vault(
    sqlite_vault: tuple[Vault, VaultLocation, MasterKey],
) -> None:
    vault, location, key = sqlite_vault
    _populate(vault)
    vault.update_settings(ADMIN, four_eyes=True, acceptance_profile="strict")
    quick = _quick(location, key)
    try:
        everything = vault.list_tokens()
        assert len(everything) == 31
        assert quick.list_tokens() == everything
        assert {t.state for t in everything} == set(S)
        for state in S:
            assert quick.list_tokens(state=state.value) == vault.list_tokens(state=state.value)
        for upn in [*UPNS, " ANN@Contoso.com ", "nobody@contoso.com", "absent@contoso.com"]:
            assert quick.list_tokens(upn=upn) == vault.list_tokens(upn=upn)
            assert quick.tokens_of(upn) == vault.tokens_of(upn)
        assert quick.list_tokens(state="assigned", upn=UPNS[1]) == vault.list_tokens(
            state="assigned", upn=UPNS[1]
        )
        measured = quick.list_tokens(drift_measured=True)
        assert measured == vault.list_tokens(drift_measured=True)
        assert [t.serial for t in measured] == ["T004", "T010", "T013", "T016"]
        for token in everything:
            assert quick.get_token(token.serial) == token
            assert quick.get_token(f" {token.serial}\t") == vault.get_token(f" {token.serial}\t")
        assert quick.list_users() == vault.list_users()
        for upn in [*UPNS, "nobody@contoso.com", " Bob@CONTOSO.com"]:
            assert quick.get_user(upn) == vault.get_user(upn)
        assert quick.settings() == vault.settings()
        assert quick.settings().four_eyes is True
        assert quick.drift_history() == vault.drift_history()
        assert quick.check_audit() == vault.check_audit()
        assert quick.audit_count() == vault.audit_count()
    finally:
        quick.close()


@pytest.mark.parametrize(
    ("read", "argument"),
    [("get_token", "NOPE-1"), ("get_user", "Nobody.Else@contoso.com")],
)
def test_not_found_in_the_same_words(
    sqlite_vault: tuple[Vault, VaultLocation, MasterKey], read: str, argument: str
) -> None:
    vault, location, key = sqlite_vault
    quick = _quick(location, key)
    try:
        with pytest.raises(NotFound) as expected:
            getattr(vault, read)(argument)
        with pytest.raises(NotFound) as found:
            getattr(quick, read)(argument)
        assert found.value.message == expected.value.message
    finally:
        quick.close()


def test_a_broken_chain_is_named_the_same(
    sqlite_vault: tuple[Vault, VaultLocation, MasterKey],
) -> None:
    vault, location, key = sqlite_vault
    _populate(vault)
    with vault.transaction() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 7).values(actor="mallory"))
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 12))
    quick = _quick(location, key)
    try:
        found = quick.check_audit()
        assert found == vault.check_audit()
        assert found.problems == [
            "record 7: MAC mismatch (edited or forged)",
            "record 12 missing (deleted)",
        ]
    finally:
        quick.close()


def test_one_snapshot_and_no_writes(sqlite_vault: tuple[Vault, VaultLocation, MasterKey]) -> None:
    vault, location, key = sqlite_vault
    vault.add_user(ADMIN, UPNS[0])
    quick = _quick(location, key)
    try:
        assert len(quick.list_users()) == 1
        vault.add_user(ADMIN, UPNS[1])  # committed by another connection meanwhile
        assert len(quick.list_users()) == 1  # the reader's snapshot is one moment
        assert quick.check_audit().problems == []
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            quick._db.execute("DELETE FROM users")
    finally:
        quick.close()
    assert len(vault.list_users()) == 2


def test_declines_what_the_vault_must_answer(
    sqlite_vault: tuple[Vault, VaultLocation, MasterKey], tmp_path: Path
) -> None:
    vault, location, key = sqlite_vault
    assert QuickReader.open(location, MasterKey.generate()) is None  # Vault.open refuses it
    postgres = VaultLocation("postgresql+psycopg://db.example/oathdesk", location.key_file, None)
    assert QuickReader.open(postgres, key) is None
    with vault.transaction() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    assert QuickReader.open(location, key) is None  # an older schema: Vault.open says so
    with vault.transaction() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": schema_head()})
    assert QuickReader.open(location, key) is not None
    not_a_vault = tmp_path / "notes.sqlite3"
    sqlite3.connect(not_a_vault).close()
    elsewhere = VaultLocation(f"sqlite:///{not_a_vault}", location.key_file, not_a_vault)
    assert QuickReader.open(elsewhere, key) is None
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    assert QuickReader.open(VaultLocation("", location.key_file, garbage), key) is None


def test_declines_a_read_only_file(
    sqlite_vault: tuple[Vault, VaultLocation, MasterKey],
) -> None:
    if getattr(os, "geteuid", lambda: 1)() == 0:
        pytest.skip("root may write any file")
    _, location, key = sqlite_vault
    assert location.sqlite_path is not None
    location.sqlite_path.chmod(0o400)
    try:
        assert QuickReader.open(location, key) is None  # db.py's read-only URI reads it
    finally:
        location.sqlite_path.chmod(0o600)


def test_wal_files_stay_private(sqlite_vault: tuple[Vault, VaultLocation, MasterKey]) -> None:
    vault, location, key = sqlite_vault
    vault.close()  # the last connection gone: SQLite removes the -wal and -shm files
    assert location.sqlite_path is not None
    quick = _quick(location, key)
    try:
        for suffix in ("-wal", "-shm"):
            made = Path(str(location.sqlite_path) + suffix)
            if made.exists():
                assert made.stat().st_mode & 0o077 == 0, suffix
    finally:
        quick.close()


def test_a_wrong_or_altered_key_is_refused_as_the_vault_refuses_it(
    sqlite_vault: tuple[Vault, VaultLocation, MasterKey],
) -> None:
    vault, location, key = sqlite_vault
    vault.add_user(ADMIN, UPNS[0])
    wrong = MasterKey.generate()
    assert QuickReader.open(location, wrong) is None  # then Vault.open refuses it:
    with pytest.raises(MasterKeyError, match="does not open this vault"):
        Vault.open(location, wrong)
    # A wrapped key altered in the file, its master key id left as it was: metadata is still
    # read (nothing secret), and the first read that needs a key refuses in Vault.open's words.
    with vault.transaction() as conn:
        conn.execute(
            sa.text("UPDATE wrapped_keys SET wrapped = zeroblob(48) WHERE purpose = 'audit'")
        )
    with pytest.raises(MasterKeyError) as expected:
        Vault.open(location, key)
    quick = _quick(location, key)
    try:
        assert [u.upn for u in quick.list_users()] == [UPNS[0]]
        with pytest.raises(MasterKeyError) as found:
            quick.check_audit()
        assert found.value.message == expected.value.message
    finally:
        quick.close()
