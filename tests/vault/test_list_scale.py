"""What benchmarks/list_bench.py found on a vault of 100,000 tokens and 1,000,000 audit records,
held to account on a small one: each list below reads its own rows, not the vault's (on
PostgreSQL, counted with EXPLAIN ANALYZE; on SQLite, the plan reads an index in page order)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import lookup
from oathdesk.vault.lookup import AuditFilter
from oathdesk.vault.paging import Page
from oathdesk.vault.schema import audit_log
from oathdesk.vault.vault import Vault
from tests.vault.test_paging import StatementLog, add_records, rows_read, sqlite_plan, walk_pages

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
