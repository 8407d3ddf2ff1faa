"""A long log is checked in two halves at once (``audit_verify._check_in_halves``): an
intact log passes that way, and any break (at the halves' boundary above all) is named exactly as
the one-pass check names it, in the caller's snapshot.

``PARALLEL_ROWS`` is lowered so that the 10 records of ``populate`` split: records 1-5 are
checked here, records 6-10 by the second process; chunks of 2 rows exercise the streaming too.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.vault import audit_verify
from oathdesk.vault.audit_verify import ChainCheck, ChainPoint, check_driver_chain
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.schema import audit_head, audit_log
from oathdesk.vault.vault import Vault
from tests.vault.test_audit import check_after_an_end, execute, populate, put, row, swap_rows
from tests.vault_fixtures import ADMIN


@pytest.fixture
def halves(monkeypatch: pytest.MonkeyPatch) -> list[ChainCheck | None]:
    """Split any log of 2 records or more; what each split check returned (None: one pass)."""
    monkeypatch.setattr(audit_verify, "PARALLEL_ROWS", 2)
    monkeypatch.setattr(audit_verify, "FETCH_ROWS", 2)
    monkeypatch.setattr(audit_verify, "_cores", lambda: 2)
    results: list[ChainCheck | None] = []
    split = audit_verify._check_in_halves

    def spy(*args: Any) -> ChainCheck | None:
        result = split(*args)
        results.append(result)
        return result

    monkeypatch.setattr(audit_verify, "_check_in_halves", spy)
    return results


def one_pass(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with monkeypatch.context() as patch:
        patch.setattr(audit_verify, "PARALLEL_ROWS", 10**9)
        return vault.verify_audit()


def is_sqlite(location: VaultLocation) -> bool:
    return location.sqlite_path is not None


def test_intact_log_is_checked_in_halves(
    vault: Vault, location: VaultLocation, halves: list[ChainCheck | None]
) -> None:
    assert populate(vault) == 10
    check = vault.check_audit()
    assert check.problems == []
    assert check.end is not None
    assert check.end.seq == 10
    assert len(halves) == 1
    assert halves[0] == check  # the split answered, no second pass


def test_check_after_an_end_in_halves(vault: Vault, halves: list[ChainCheck | None]) -> None:
    check_after_an_end(vault)


def _edit_both_sides(vault: Vault) -> None:
    execute(vault, put(5, {"actor": "mallory"}), put(6, {"actor": "mallory"}))


def _delete(seq: int) -> Callable[[Vault], None]:
    return lambda vault: execute(vault, audit_log.delete().where(audit_log.c.seq == seq))


def _swap_across(vault: Vault) -> None:
    swap_rows(vault, 5, 6)


def _replace_boundary_mac(vault: Vault) -> None:
    """Record 5 keeps its content but carries record 6's MAC: each half alone could agree with
    itself; only the join at the boundary sees it."""
    execute(vault, put(5, {"mac": row(vault, 6)["mac"]}))


def _insert_after_the_end(vault: Vault) -> None:
    copied = row(vault, 10)
    execute(vault, audit_log.insert().values(seq=11, **copied))


def _forge_head(vault: Vault) -> None:
    execute(vault, audit_head.update().values(head_mac=b"\0" * 32))


TAMPERINGS: dict[str, tuple[Callable[[Vault], None], list[str]]] = {
    "edited either side": (
        _edit_both_sides,
        ["records 5-6: MAC mismatch (edited or forged)"],
    ),
    "last of the first half deleted": (_delete(5), ["record 5 missing (deleted)"]),
    "first of the second half deleted": (_delete(6), ["record 6 missing (deleted)"]),
    "reordered across": (
        _swap_across,
        ["record 5: holds record 6 (reordered)", "record 6: holds record 5 (reordered)"],
    ),
    "boundary MAC replaced": (
        _replace_boundary_mac,
        ["record 5: MAC mismatch (edited or forged)"],
    ),
    "record after the end": (
        _insert_after_the_end,
        [
            "record 11: holds record 10 (reordered)",
            "record 11 after the head's last record 10 (inserted)",
        ],
    ),
    "last record deleted": (
        _delete(10),
        ["record 10 missing at the end (deleted): the head says 10 records, the log ends at 9"],
    ),
    "head forged": (_forge_head, ["the audit head is forged or edited"]),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_break_at_the_boundary_is_named_as_in_one_pass(
    vault: Vault,
    location: VaultLocation,
    halves: list[ChainCheck | None],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    tamper, expected = TAMPERINGS[name]
    populate(vault)
    tamper(vault)
    found = vault.verify_audit()
    assert found == one_pass(vault, monkeypatch)
    assert found == expected
    assert halves[0] is None  # the split saw a break and left the naming to one pass


def test_appends_after_the_snapshot_are_not_counted(
    vault: Vault, location: VaultLocation, halves: list[ChainCheck | None]
) -> None:
    """The second process opens its own snapshot, later than the caller's: records appended in
    between exist for it, not for the caller's head; it stops at the caller's last record."""
    if location.sqlite_path is None:
        pytest.skip("PostgreSQL: the second process imports the snapshot (test below)")
    populate(vault)
    db = sqlite3.connect(location.sqlite_path, isolation_level=None)
    try:
        db.execute("BEGIN")
        assert db.execute("SELECT max(seq) FROM audit_log").fetchone() == (10,)  # snapshot
        for index in range(5):
            vault.add_user(ADMIN, f"late{index}@contoso.com")
        check = check_driver_chain(vault._chain, db, "sqlite")
        db.execute("COMMIT")
    finally:
        db.close()
    assert check.problems == []
    assert check.end is not None
    assert check.end.seq == 10
    assert halves[0] is not None
    assert halves[0].end == check.end
    with vault.reading() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one()
    assert count == 15
    assert vault.check_audit().end == ChainPoint(15, row(vault, 15)["mac"])


def test_a_second_process_that_fails_leaves_one_pass(
    vault: Vault,
    location: VaultLocation,
    halves: list[ChainCheck | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    populate(vault)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, reads nothing, fails
    assert vault.verify_audit() == []
    assert halves == [None]
    _edit_both_sides(vault)
    assert vault.verify_audit() == ["records 5-6: MAC mismatch (edited or forged)"]


def _snapshot_connection(location: VaultLocation) -> Any:
    """A driver connection of our own in one snapshot (the caller's side of the check)."""
    if location.sqlite_path is not None:
        db = sqlite3.connect(location.sqlite_path, isolation_level=None)
        db.execute("BEGIN")
        return db
    import psycopg

    url = sa.make_url(location.database_url).set(drivername="postgresql")
    conn = psycopg.connect(url.render_as_string(hide_password=False))
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def test_both_halves_read_the_callers_snapshot(
    vault: Vault, location: VaultLocation, halves: list[ChainCheck | None]
) -> None:
    """A record of the second half edited after the check's snapshot began: the check answers
    for its snapshot, intact. PostgreSQL: the second process imports that snapshot; SQLite: it
    sees the edit, and the check is done again in one pass in the caller's snapshot."""
    populate(vault)
    dialect = "sqlite" if is_sqlite(location) else "postgresql"
    conn = _snapshot_connection(location)
    try:
        first = conn.execute("SELECT max(seq) FROM audit_log").fetchone()
        assert first == (10,)  # the snapshot is taken
        execute(vault, put(8, {"actor": "mallory"}))
        vault.add_user(ADMIN, "late@contoso.com")
        check = check_driver_chain(vault._chain, conn, dialect)
    finally:
        conn.close()
    assert check.problems == []
    assert check.end is not None
    assert check.end.seq == 10
    assert (halves[0] is not None) == (dialect == "postgresql")
    assert vault.verify_audit() == ["record 8: MAC mismatch (edited or forged)"]
