"""The audit page's chain checks: the whole chain now and then, in between what is new; on
SQLite and PostgreSQL, with a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.services.audit_checks import AuditChecks
from oathdesk.vault import audit_verify
from oathdesk.vault.schema import audit_head, audit_log
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _add_users(vault: Vault, first: int, count: int) -> None:
    for index in range(first, first + count):
        vault.add_user(ADMIN, f"user{index}@contoso.com")


def _edit(vault: Vault, seq: int) -> None:
    with vault.engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == seq).values(actor="mallory"))


def test_an_intact_chain_checked_in_part_ends_where_the_whole_check_ends(vault: Vault) -> None:
    _add_users(vault, 0, 5)
    whole = vault.check_audit()
    assert whole.problems == []
    assert whole.end is not None
    assert whole.end.seq == vault.audit_count()
    _add_users(vault, 5, 3)
    since = vault.check_audit(whole.end)
    assert since.problems == []
    assert since.end == vault.check_audit().end
    assert vault.check_audit(since.end).end == since.end  # nothing new: the head alone


def test_views_between_whole_checks_check_what_is_new(vault: Vault) -> None:
    clock = Clock()
    checks = AuditChecks(vault, every=timedelta(minutes=10), clock=clock)
    _add_users(vault, 0, 5)
    first = checks.status()
    assert (first.problems, first.whole_checked_at) == ([], T0)

    clock.now += timedelta(minutes=3)
    _add_users(vault, 5, 2)
    later = checks.status()  # only the two new records were read
    assert (later.problems, later.whole_checked_at, later.records) == ([], T0, vault.audit_count())

    # A record added since the last check and edited: found at the next view, with the whole
    # chain checked again to name every break.
    _add_users(vault, 7, 1)
    _edit(vault, vault.audit_count())
    clock.now += timedelta(minutes=1)
    broken = checks.status()
    assert broken.problems == [f"record {vault.audit_count()}: MAC mismatch (edited or forged)"]
    assert broken.whole_checked_at == clock.now


def test_an_old_record_edited_is_found_by_the_next_whole_check(vault: Vault) -> None:
    clock = Clock()
    checks = AuditChecks(vault, every=timedelta(minutes=10), clock=clock)
    _add_users(vault, 0, 5)
    assert checks.status().problems == []
    _edit(vault, 3)
    clock.now += timedelta(minutes=5)
    assert checks.status().problems == []  # the records before the last check are not reread
    assert checks.status(whole=True).problems == ["record 3: MAC mismatch (edited or forged)"]
    clock.now += timedelta(minutes=1)
    assert checks.status().problems != []  # and after a break, every view checks everything
    fresh = AuditChecks(vault, every=timedelta(minutes=10), clock=clock)
    assert fresh.status().problems == ["record 3: MAC mismatch (edited or forged)"]


def test_records_deleted_at_the_end_are_found_between_whole_checks(vault: Vault) -> None:
    clock = Clock()
    checks = AuditChecks(vault, every=timedelta(minutes=10), clock=clock)
    _add_users(vault, 0, 5)
    assert checks.status().problems == []
    last = vault.audit_count()
    with vault.engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == last))
    clock.now += timedelta(minutes=1)
    assert checks.status().problems == [
        f"record {last} missing at the end (deleted): the head says {last} records, the log "
        f"ends at {last - 1}"
    ]
    # The head rewritten to match needs the audit key: its MAC gives it away.
    with vault.engine.begin() as conn:
        conn.execute(audit_head.update().values(seq=last - 1))
    clock.now += timedelta(minutes=1)
    assert checks.status().problems == ["the audit head is forged or edited"]


def test_a_view_with_nothing_new_reads_the_head_alone(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    checks = AuditChecks(vault, every=timedelta(minutes=10), clock=clock)
    _add_users(vault, 0, 5)
    assert checks.status().problems == []
    reads: list[str] = []
    real_one = audit_verify._one
    real_rows = audit_verify._check_rows

    def one(driver: Any, sql: str, parameters: tuple[Any, ...]) -> Any:
        reads.append(sql)
        return real_one(driver, sql, parameters)

    def rows(*args: Any) -> Any:
        reads.append("scan")
        return real_rows(*args)

    monkeypatch.setattr(audit_verify, "_one", one)
    monkeypatch.setattr(audit_verify, "_check_rows", rows)
    clock.now += timedelta(minutes=1)
    view = checks.status()
    assert (view.problems, view.records) == ([], vault.audit_count())
    assert len(reads) == 1  # head, last seq and the end's MAC in one statement; no scan
    _add_users(vault, 5, 1)
    reads.clear()
    assert checks.status().problems == []
    assert "scan" in reads  # something new: read and checked in a snapshot as before


def test_a_record_inserted_past_an_unmoved_head_is_found(vault: Vault) -> None:
    clock = Clock()
    checks = AuditChecks(vault, every=timedelta(minutes=10), clock=clock)
    _add_users(vault, 0, 5)
    assert checks.status().problems == []
    last = vault.audit_count()
    with vault.engine.begin() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.seq == last)).one()
        conn.execute(audit_log.insert().values({**row._asdict(), "seq": last + 1}))
    clock.now += timedelta(minutes=1)
    assert f"record {last + 1} after the head's last record {last} (inserted)" in (
        checks.status().problems
    )
