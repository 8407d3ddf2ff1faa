"""What benchmarks/list_bench.py found on a vault of 100,000 tokens and 1,000,000 audit records,
held to account on a small one: each list below reads its own rows, not the vault's (on
PostgreSQL, counted with EXPLAIN ANALYZE; on SQLite, the plan reads an index in page order)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import console, lookup
from oathdesk.vault.lookup import AuditFilter
from oathdesk.vault.models import utc_now
from oathdesk.vault.paging import Page
from oathdesk.vault.schema import audit_log, tokens
from oathdesk.vault.vault import Vault
from tests.vault.conftest import programmable
from tests.vault.test_paging import StatementLog, add_records, rows_read, sqlite_plan, walk_pages
from tests.vault_fixtures import ADMIN

LIMIT = 20


def record_time(vault: Vault, seq: int) -> datetime:
    with vault.reading() as conn:
        at = conn.execute(sa.select(audit_log.c.at).where(audit_log.c.seq == seq)).scalar_one()
    return datetime.fromisoformat(at)


def assert_reads_its_page(vault: Vault, call: Callable[[], Page[Any]]) -> Page[Any]:
    with StatementLog(vault.engine) as log:
        page = call()
    (statement, parameters), *_ = log.seen
    if vault.engine.dialect.name == "postgresql":
        read = rows_read(vault, statement, parameters)
        assert max(read.values()) <= LIMIT + 1, (read, statement)
    else:
        plan = sqlite_plan(vault, statement, parameters)
        assert "TEMP B-TREE" not in plan, plan
        assert "SEARCH" in plan, plan  # a range of an index, not a scan of the log
    return page


def test_an_audit_page_filtered_by_time_reads_only_its_rows(vault: Vault) -> None:
    """``until`` far back in the log read every newer record in sequence order before the
    first one it showed; now a page starts where the range does."""
    for _ in range(15):  # a batch's records share one time
        add_records(vault, 100)
    with vault.engine.begin() as conn:  # fresh statistics, as a vault in use has
        conn.exec_driver_sql("ANALYZE")
    old, recent = record_time(vault, 100), record_time(vault, 1400)
    for wanted in (
        AuditFilter(until=old),
        AuditFilter(since=recent),
        AuditFilter(since=record_time(vault, 50), until=old),
        AuditFilter(action="test.note", until=old),
    ):
        page = functools.partial(lookup.audit_page, vault, wanted, limit=LIMIT)
        cursor = assert_reads_its_page(vault, page).next_cursor
        assert cursor is not None
        assert_reads_its_page(vault, functools.partial(page, cursor=cursor))


def test_audit_pages_by_time_are_newest_first_without_gaps(vault: Vault) -> None:
    """Records of one batch share a time: the sequence number orders them within it."""
    for size in (30, 40, 30, 30):
        add_records(vault, size)
    old = record_time(vault, 100)
    pages = walk_pages(
        lambda c: lookup.audit_page(vault, AuditFilter(until=old), cursor=c, limit=7)
    )
    seqs = [record["seq"] for page in pages for record in page]
    assert all(len(page) == 7 for page in pages[:-1])
    query = (
        sa.select(audit_log.c.seq)
        .where(audit_log.c.at <= old.isoformat(timespec="microseconds"))
        .order_by(audit_log.c.at.desc(), audit_log.c.seq.desc())
    )
    with vault.reading() as conn:
        expected = list(conn.execute(query).scalars())
    assert seqs == expected
    assert {100, 101} <= set(seqs)  # 101 shares 100's time
    assert 131 not in seqs


class SelectLog:
    """Every SELECT an engine runs on ``tokens``, with its parameters."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: list[tuple[str, Any]] = []

    def __enter__(self) -> SelectLog:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM tokens" in statement:
            self.seen.append((statement, parameters))


def test_the_dashboards_late_tokens_read_only_late_tokens(vault: Vault) -> None:
    """The start page counted and sorted every waiting token on each view (a vault in use:
    nearly all of them); now each statement reads the late ones only."""
    owned = [programmable(f"W{n:05d}", upn=f"w{n}@contoso.com") for n in range(1500)]
    vault.add_tokens(ADMIN, owned, create_missing_users=True)
    late = ["W00007", "W00500", "W01234", "W01499"]
    with vault.transaction() as conn:
        conn.execute(
            tokens.update()
            .where(tokens.c.serial.in_(late))
            .values(assigned_at=utc_now() - timedelta(days=90))
        )
    with vault.engine.begin() as conn:  # fresh statistics, as a vault in use has
        conn.exec_driver_sql("ANALYZE")
    with SelectLog(vault.engine) as log:
        shown, total = console.undelivered_tokens(vault, limit=3)
    assert total == len(late)
    assert [token.serial for token in shown] == sorted(late)[:3]  # the same age: by serial
    assert len(log.seen) == 2
    for statement, parameters in log.seen:
        if vault.engine.dialect.name == "postgresql":
            read = rows_read(vault, statement, parameters)
            assert read.get("tokens", 0) <= len(late), (read, statement)
        else:
            plan = sqlite_plan(vault, statement, parameters)
            assert "<expr><" in plan, plan  # a range of the waiting time, not every waiting token
