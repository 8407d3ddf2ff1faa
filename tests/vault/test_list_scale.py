"""What benchmarks/list_bench.py found on a vault of 100,000 tokens and 1,000,000 audit records,
held to account on a small one: each list below reads its own rows, not the vault's (on
PostgreSQL, counted with EXPLAIN ANALYZE; on SQLite, the plan reads an index in page order)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.vault import console, lookup
from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.models import utc_now
from oathdesk.vault.paging import CursorInvalid, Page
from oathdesk.vault.schema import audit_log, tokens
from oathdesk.vault.vault import Vault
from tests.vault.conftest import programmable
from tests.vault.test_paging import (
    StatementLog,
    add_records,
    fresh_statistics,
    page_statement,
    rows_read,
    sqlite_plan,
    walk_pages,
)
from tests.vault_fixtures import ADMIN

LIMIT = 20


def record_time(vault: Vault, seq: int) -> datetime:
    with vault.reading() as conn:
        at = conn.execute(sa.select(audit_log.c.at).where(audit_log.c.seq == seq)).scalar_one()
    return datetime.fromisoformat(at)


def assert_reads_its_page(
    vault: Vault, call: Callable[[], Page[Any]], *, by_time: bool = False
) -> Page[Any]:
    """``by_time``: on SQLite, the range of the index is bounded by the time too (not only by
    the other filter, read newest first until the time range began)."""
    page, statement, parameters = page_statement(vault, call)
    if vault.engine.dialect.name == "postgresql":
        read = rows_read(vault, statement, parameters)
        assert max(read.values()) <= LIMIT + 1, (read, statement)
    else:
        plan = sqlite_plan(vault, statement, parameters)
        assert "TEMP B-TREE" not in plan, plan
        assert "SEARCH" in plan, plan  # a range of an index, not a scan of the log
        if by_time:
            assert "at<" in plan or "at>" in plan, plan
    return page


def test_an_audit_page_filtered_by_time_reads_only_its_rows(vault: Vault) -> None:
    """``until`` far back in the log read every newer record in sequence order before the
    first one it showed; now a page starts where the range does. The same with an operator:
    their records were read newest first down to the range (an operator's year of reveals for
    a page of last year's)."""
    for _ in range(15):  # a batch's records share one time
        add_records(vault, 100)
    fresh_statistics(vault)
    old, recent = record_time(vault, 100), record_time(vault, 1400)
    for wanted in (
        AuditFilter(until=old),
        AuditFilter(since=recent),
        AuditFilter(since=record_time(vault, 50), until=old),
        AuditFilter(action="test.note", until=old),
        AuditFilter(actor="local:test", until=old),
        AuditFilter(actor="local:test", since=record_time(vault, 50), until=old),
        AuditFilter(action="test.note", actor="local:test", until=old),
    ):
        page = functools.partial(lookup.audit_page, vault, wanted, limit=LIMIT)
        first = assert_reads_its_page(vault, page, by_time=True)
        assert first.items, wanted
        if wanted.until:
            assert all(record["seq"] <= 200 for record in first.items), wanted
        assert first.next_cursor is not None
        assert_reads_its_page(
            vault, functools.partial(page, cursor=first.next_cursor), by_time=True
        )


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
    fresh_statistics(vault)
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


def add_about(vault: Vault, count: int, *, upn: str = "", serial: str = "") -> None:
    entries = [AuditEntry("local:test", "test.note", upn, serial, {"n": n}) for n in range(count)]
    with vault.transaction() as conn:
        vault.audit_entries(conn, entries)


def sqlite_steps(vault: Vault, call: Callable[[], object]) -> int:
    """SQLite virtual machine steps (in hundreds) that ``call`` costs: the work of its
    statements, whatever plan they take, on whichever pooled connection they run."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def install(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.set_progress_handler(count, 100)

    def uninstall(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.set_progress_handler(None, 0)

    sa.event.listen(vault.engine, "checkout", install)
    sa.event.listen(vault.engine, "checkin", uninstall)
    try:
        call()
    finally:
        sa.event.remove(vault.engine, "checkout", install)
        sa.event.remove(vault.engine, "checkin", uninstall)
    return steps


def test_a_users_events_cost_a_page_whatever_their_history(vault: Vault) -> None:
    """The user page's events were one OR over the user's and their tokens' records: every
    match read and sorted (SQLite, PostgreSQL's bitmap) or the log walked backwards until 20
    matched (PostgreSQL). Now each branch reads at most a page from its own index."""
    add_about(vault, 300, upn="helga@contoso.com")  # a long history, long ago
    add_about(vault, 300, serial="H0001")
    add_about(vault, 5, upn="olaf@contoso.com")  # a short one
    add_about(vault, 5, serial="O0001")
    for _ in range(6):
        add_records(vault, 1000)  # everyone else's, newer: a user's share of the log is small
    fresh_statistics(vault)
    helga = functools.partial(
        lookup.audit_about_page, vault, "helga@contoso.com", ["H0001", "H0002"], limit=LIMIT
    )
    if vault.engine.dialect.name == "postgresql":
        _, statement, parameters = page_statement(vault, helga)
        read = rows_read(vault, statement, parameters)
        assert read["audit_log"] <= 4 * (LIMIT + 1), (read, statement)  # 3 branches, 1 fetch
    else:
        olaf = functools.partial(lookup.audit_about_page, vault, "olaf@contoso.com", ["O0001"])
        few = sqlite_steps(vault, olaf)
        assert few > 0
        assert sqlite_steps(vault, helga) <= 2 * few + 20


def test_a_users_events_page_newest_first_without_gaps(vault: Vault) -> None:
    add_about(vault, 30, upn="helga@contoso.com")
    add_about(vault, 20, serial="H0001")
    add_about(vault, 20, upn="helga@contoso.com", serial="H0002")  # both: shown once
    add_records(vault, 40)
    add_about(vault, 10, serial="H0002")
    expected = [
        record["seq"]
        for record in reversed(vault.export_audit())
        if record["upn"] == "helga@contoso.com" or record["serial"] in ("H0001", "H0002")
    ]
    pages = walk_pages(
        lambda c: lookup.audit_about_page(
            vault, "Helga@contoso.com", ["H0002", "H0001"], cursor=c, limit=7
        )
    )
    assert all(len(page) == 7 for page in pages[:-1])
    assert [record["seq"] for page in pages for record in page] == expected
    first = lookup.audit_about_page(vault, "helga@contoso.com", ["H0001"], limit=7)
    assert first.next_cursor is not None
    with pytest.raises(CursorInvalid):  # bound to the user
        lookup.audit_about_page(vault, "olaf@contoso.com", [], cursor=first.next_cursor)


def test_a_tokens_audit_page_reads_its_own_records(vault: Vault) -> None:
    """``serial=`` also shows the import that added the token (``seq IN (SELECT added_seq
    ...)``): PostgreSQL answered the OR by walking the whole log backwards, 0.9 s on 1,000,000
    records. The import's record is looked up first now, so both sides come from an index."""
    vault.add_tokens(
        ADMIN, [programmable("T0001", upn="tess@contoso.com")], create_missing_users=True
    )
    add_about(vault, 30, serial="T0001")
    for _ in range(6):
        add_records(vault, 1000)
    fresh_statistics(vault)
    wanted = AuditFilter(serial="T0001")
    page, statement, parameters = page_statement(
        vault, functools.partial(lookup.audit_page, vault, wanted, limit=LIMIT)
    )
    if vault.engine.dialect.name == "postgresql":
        read = rows_read(vault, statement, parameters)
        assert read["audit_log"] <= 30 + 1 + 1, (read, statement)  # the token's, the import's
    else:
        assert "SCAN audit_log" not in sqlite_plan(vault, statement, parameters)
    cursor = page.next_cursor
    assert cursor is not None
    rest = lookup.audit_page(vault, wanted, cursor=cursor, limit=LIMIT).items
    actions = [record["action"] for record in page.items + rest]
    assert actions.count("test.note") == 30
    assert len(actions) == 31  # and the import that added it, the oldest


def test_a_tokens_audit_export_reads_its_own_records(vault: Vault) -> None:
    """The same OR in ``export_audit`` (``oathdesk audit export --serial``): a token's export
    read the whole log on PostgreSQL."""
    vault.add_tokens(
        ADMIN, [programmable("T0001", upn="tess@contoso.com")], create_missing_users=True
    )
    add_about(vault, 30, serial="T0001")
    for _ in range(6):
        add_records(vault, 1000)
    fresh_statistics(vault)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM audit_log" in statement:
            seen.append((statement, parameters))

    sa.event.listen(vault.engine, "before_cursor_execute", record)
    try:
        exported = vault.export_audit(serial="T0001")
    finally:
        sa.event.remove(vault.engine, "before_cursor_execute", record)
    assert len(exported) == 31  # its records and the import that added it, oldest first
    assert [r["seq"] for r in exported] == sorted(r["seq"] for r in exported)
    (statement, parameters), *_ = seen
    if vault.engine.dialect.name == "postgresql":
        read = rows_read(vault, statement, parameters)
        assert read["audit_log"] <= 30 + 1 + 1, (read, statement)
    else:
        assert "SCAN audit_log" not in sqlite_plan(vault, statement, parameters)


def _generic_plan(vault: Vault, statement: str, keys: list[str]) -> str:
    """PostgreSQL's plan for ``statement`` (one array parameter, ``%(ids)s``) as a prepared
    statement runs it once psycopg has prepared it (after five runs): the generic plan, made
    without the parameter's value."""
    literal = "ARRAY[" + ",".join(f"'{key}'" for key in keys) + "]::varchar[]"  # our own ids
    with vault.engine.connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql("PREPARE by_keys(varchar[]) AS " + statement.replace("%(ids)s", "$1"))
        try:
            plan = conn.exec_driver_sql(f"EXPLAIN ANALYZE EXECUTE by_keys({literal})").all()
        finally:
            conn.exec_driver_sql("DEALLOCATE by_keys")
            conn.exec_driver_sql("RESET plan_cache_mode")
    return "\n".join(str(row[0]) for row in plan)


def test_a_pages_look_ups_by_key_never_search_the_keys_for_each_row(vault: Vault) -> None:
    """A page's owners and drift history are read by the page's token ids, one array parameter
    on PostgreSQL. As ``= ANY($1)`` the generic plan of the prepared statement compared every
    row it scanned with every key in turn (the drift page of a 100,000-token vault: 3.6 ms for
    a read of 0.2 ms); the keys are now a set the rows are joined with."""
    if vault.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes the keys as an IN list, searched as a set")
    serials = [f"D{n:04d}" for n in range(120)]
    vault.add_tokens(ADMIN, [programmable(serial, upn=None) for serial in serials])
    with vault.transaction() as conn:
        for serial in serials:
            vault.record_drift(conn, vault.get_token(serial, conn), 5)
    with StatementLog(vault.engine, with_limit=False) as log:
        page = lookup.token_page(vault, drift_measured=True, limit=100)
        history = lookup.drift_history(vault, page.items)
    shown = page.items
    assert [token.serial for token in shown] == serials[:100]
    assert sorted(history) == serials[:100]
    keyed = [(statement, ids) for statement, ids in log.seen if "%(ids)s" in statement]
    assert len(keyed) == 2  # the page's owners and secrets, and its measurements
    for statement, _ in keyed:
        plan = _generic_plan(vault, statement, [token.id for token in shown])
        assert "= ANY" not in plan, plan


def test_a_users_or_tokens_records_under_another_filter_are_read_by_owner(vault: Vault) -> None:
    """An audit page filtered by UPN or serial and by operator or action reads the user's or
    the token's records and checks the rest on them. SQLite (no statistics) read the operator's
    or the action's records newest first instead, all of them for a user whose few are old."""
    olaf = [
        AuditEntry("helpdesk:busy", "token.revealed", "olaf@contoso.com", "T0001", {"n": n})
        for n in range(3)
    ]
    others = [
        AuditEntry("helpdesk:busy", "token.revealed", f"u{n}@contoso.com", f"S{n}", {})
        for n in range(1500)
    ]
    with vault.transaction() as conn:
        vault.audit_entries(conn, olaf)
        vault.audit_entries(conn, others)  # newer: a newest-first walk meets them first
    fresh_statistics(vault)
    for wanted in (
        AuditFilter(upn="olaf@contoso.com", actor="helpdesk:busy"),
        AuditFilter(upn="olaf@contoso.com", action="token.revealed"),
        AuditFilter(serial="T0001", actor="helpdesk:busy"),
        AuditFilter(serial="T0001", action="token.revealed", upn="olaf@contoso.com"),
    ):
        page, statement, parameters = page_statement(
            vault, functools.partial(lookup.audit_page, vault, wanted, limit=LIMIT)
        )
        assert [record["details"]["n"] for record in page.items] == [2, 1, 0], wanted
        if vault.engine.dialect.name == "postgresql":
            read = rows_read(vault, statement, parameters)
            assert read["audit_log"] <= len(olaf), (wanted, read, statement)
        else:
            plan = sqlite_plan(vault, statement, parameters)
            owner_index = "serial_seq" if wanted.serial else "upn_seq"
            assert f"ix_audit_log_{owner_index}" in plan, (wanted, plan)
