"""The paging contracts (vault/paging.py) on real SQLite and PostgreSQL: every page's size, every
row exactly once in a stable order, walks that stay right while rows are added, cursors that
cannot be altered or carried into another list or filter, limit bounds, and pages that read only
their own rows (plus one)."""

from __future__ import annotations

import functools
import json
import string
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oathdesk.errors import InvalidInput
from oathdesk.vault import lookup
from oathdesk.vault.api_keys import ApiKeyStore
from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.paging import MAX_LIMIT, CursorInvalid, Page, _b64, _unb64
from oathdesk.vault.quickread import QuickReader
from oathdesk.vault.vault import Vault
from tests.vault.conftest import classic, programmable
from tests.vault_fixtures import ADMIN

T = TypeVar("T")

REFUSED = "this page link is not valid for this list; start again from the first page"


def walk_pages(fetch: Callable[[str | None], Page[Any]]) -> list[list[Any]]:
    pages, cursor = [], None
    while True:
        page = fetch(cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def add_stock(vault: Vault, serials: list[str], *, upn: str | None = None) -> None:
    vault.add_tokens(
        ADMIN, [programmable(s, upn=upn) for s in serials], create_missing_users=upn is not None
    )


def add_records(vault: Vault, count: int, *, upn: str = "", action: str = "test.note") -> None:
    entries = [AuditEntry("local:test", action, upn, "", {"n": n}) for n in range(count)]
    with vault.transaction() as conn:
        vault.audit_entries(conn, entries)


def test_pages_have_their_size_and_the_walk_yields_every_row_once_in_order(vault: Vault) -> None:
    serials = [f"P{n:04d}" for n in range(53)]
    add_stock(vault, serials[::2])
    add_stock(vault, serials[1::2])  # inserted out of order: the order is the serial's
    for limit in (1, 7, 10, 53, 54, 100):
        pages = walk_pages(
            functools.partial(lambda c, n: lookup.token_page(vault, cursor=c, limit=n), n=limit)
        )
        assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)
        assert 1 <= len(pages[-1]) <= limit
        assert [t.serial for p in pages for t in p] == serials
    # A last page that is exactly full says there is no next one (the extra row told).
    assert lookup.token_page(vault, limit=53).next_cursor is None


def test_an_empty_list_is_one_empty_page(vault: Vault) -> None:
    assert lookup.token_page(vault) == Page([], None)
    assert lookup.user_page(vault) == Page([], None)
    assert lookup.token_page(vault, state=TokenState.LOST).items == []


def test_filters_users_operators_and_keys_page_the_same_way(vault: Vault) -> None:
    add_stock(vault, [f"S{n:03d}" for n in range(12)])
    vault.add_tokens(ADMIN, [classic(f"C{n:03d}") for n in range(9)])
    add_stock(vault, [f"U{n:03d}" for n in range(5)], upn="olaf@contoso.com")
    for n in range(14):
        vault.add_user(ADMIN, f"user{n:02d}@contoso.com")

    def serials(**wanted: Any) -> list[str]:
        fetch = lambda cursor: lookup.token_page(vault, cursor=cursor, limit=4, **wanted)  # noqa: E731
        return [t.serial for page in walk_pages(fetch) for t in page]

    assert serials(kind=TokenKind.CLASSIC) == [f"C{n:03d}" for n in range(9)]
    assert serials(state=TokenState.ASSIGNED) == [f"U{n:03d}" for n in range(5)]
    assert serials(upn="OLAF@contoso.com ") == [f"U{n:03d}" for n in range(5)]
    assert serials(state=TokenState.IN_STOCK, kind=TokenKind.PROGRAMMABLE) == [
        f"S{n:03d}" for n in range(12)
    ]
    users = walk_pages(lambda cursor: lookup.user_page(vault, cursor=cursor, limit=5))
    assert [len(p) for p in users] == [5, 5, 5]
    assert [u.upn for p in users for u in p] == sorted(
        ["olaf@contoso.com"] + [f"user{n:02d}@contoso.com" for n in range(14)]
    )

    directory = OperatorDirectory(vault)
    for n in range(7):
        directory.add(ADMIN, f"op{n}", "helpdesk", "a long enough passphrase 1")
    operators = walk_pages(lambda cursor: directory.page(cursor=cursor, limit=3))
    assert [[o.name for o in p] for p in operators] == [
        ["op0", "op1", "op2"],
        ["op3", "op4", "op5"],
        ["op6"],
    ]
    assert [o.name for o in directory.list()] == [f"op{n}" for n in range(7)]

    store = ApiKeyStore(vault)
    made = [store.create(ADMIN, f"op{n % 2}", f"key{n}").key.id for n in range(7)]
    keys = walk_pages(lambda cursor: store.page(ADMIN, cursor=cursor, limit=2))
    assert [len(p) for p in keys] == [2, 2, 2, 1]
    listed = [(k.operator, k.id) for p in keys for k in p]
    assert sorted(listed, key=lambda k: k[0]) == listed  # by operator, then oldest first
    assert sorted(k for _, k in listed) == sorted(made)
    op1 = walk_pages(lambda cursor: store.page(ADMIN, "op1", cursor=cursor, limit=2))
    assert [k.name for p in op1 for k in p] == ["key1", "key3", "key5"]


def test_audit_pages_newest_first_under_each_filter(vault: Vault) -> None:
    add_records(vault, 25, upn="helga@contoso.com")
    add_records(vault, 10, upn="olaf@contoso.com", action="test.other")
    everything = [r["seq"] for r in lookup.audit_page(vault, AuditFilter(), limit=MAX_LIMIT).items]
    assert everything == list(range(lookup.audit_log_size(vault), 0, -1))
    for wanted, expected in (
        (AuditFilter(), everything),
        (AuditFilter(upn="helga@contoso.com"), everything[10:35]),
        (AuditFilter(action="test.other"), everything[:10]),
        (AuditFilter(actor="local:test", upn="olaf@contoso.com"), everything[:10]),
    ):
        pages = walk_pages(
            functools.partial(lambda c, w: lookup.audit_page(vault, w, cursor=c, limit=6), w=wanted)
        )
        assert all(len(p) == 6 for p in pages[:-1])
        assert [r["seq"] for p in pages for r in p] == expected


def test_the_export_holds_what_the_pages_hold_under_every_filter(vault: Vault) -> None:
    """`oathdesk audit export` and the audit pages (API, console) read one filter the same
    way: the same records, the export oldest first, the pages newest first. Filters as people
    type them: blanks around a serial or an operator, a UPN in capitals, a time range."""
    add_stock(vault, ["e1", "e2"], upn="olaf@contoso.com")  # one import record for both
    add_records(vault, 6, upn="helga@contoso.com")
    entries = [
        AuditEntry("local:ops", "test.other", "olaf@contoso.com", "e1", {"n": 1}),
        AuditEntry("local:test", "test.note", "", "e2", {"n": 2}),
        AuditEntry("local:ops", "test.note", "helga@contoso.com", "", {"n": 3}),
    ]
    with vault.transaction() as conn:
        vault.audit_entries(conn, entries)
    everything = vault.export_audit()
    middle = datetime.fromisoformat(everything[len(everything) // 2]["at"])
    filters: list[dict[str, Any]] = [
        {},
        {"serial": "e1"},
        {"serial": " e1 "},
        {"serial": "e2", "action": "test.note"},
        {"serial": "e2", "actor": "local:test"},
        {"upn": " OLAF@contoso.com"},
        {"upn": "helga@contoso.com", "actor": " local:ops"},
        {"actor": "local:ops", "action": "test.note"},
        {"action": "test.note", "since": middle},
        {"until": middle},
        {"actor": "local:test ", "since": middle, "until": middle + timedelta(hours=1)},
        {"serial": "nothing"},
    ]
    for typed in filters:
        exported = [record["seq"] for record in vault.export_audit(**typed)]
        pages = walk_pages(
            functools.partial(
                lambda cursor, wanted: lookup.audit_page(vault, wanted, cursor=cursor),
                wanted=AuditFilter(**typed),
            )
        )
        paged = [record["seq"] for page in pages for record in page]
        assert exported == sorted(paged), typed
    assert [r["seq"] for r in vault.export_audit(serial=" e1 ")] == [
        r["seq"] for r in vault.export_audit(serial="e1")
    ]
    assert len(vault.export_audit(serial="e1")) == 2  # the import's record and its own


def test_rows_added_during_a_walk_neither_repeat_nor_shift_the_others(vault: Vault) -> None:
    add_stock(vault, [f"M{n:03d}" for n in range(0, 60, 2)])  # M000, M002, ... M058
    seen: list[str] = []
    cursor = None
    added_behind: list[str] = []
    added_ahead: list[str] = []
    while True:
        page = lookup.token_page(vault, cursor=cursor, limit=7)
        seen.extend(t.serial for t in page.items)
        if page.next_cursor is None:
            break
        last = int(page.items[-1].serial[1:])
        # One before the cursor (already passed: never shown) and one after (shown once).
        behind, ahead = f"M{last - 1:03d}", f"M{last + 1:03d}"
        add_stock(vault, [behind, ahead])
        added_behind.append(behind)
        added_ahead.append(ahead)
        cursor = page.next_cursor
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert set(seen) == {f"M{n:03d}" for n in range(0, 60, 2)} | set(added_ahead)
    assert not set(seen) & set(added_behind)


def test_audit_records_appended_during_a_walk_do_not_appear_in_it(vault: Vault) -> None:
    add_records(vault, 30)
    before = [r["seq"] for r in lookup.audit_page(vault, AuditFilter(), limit=MAX_LIMIT).items]
    seen: list[int] = []
    cursor = None
    while True:
        page = lookup.audit_page(vault, AuditFilter(), cursor=cursor, limit=4)
        seen.extend(r["seq"] for r in page.items)
        if page.next_cursor is None:
            break
        add_records(vault, 3)  # new records are newer than every page still to come
        cursor = page.next_cursor
    assert seen == before


def tampered(cursor: str) -> Iterator[str]:
    raw = _unb64(cursor)
    for position in (0, len(raw) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        yield _b64(bytes(flipped))
    yield cursor[:-1]
    yield cursor + "A"


def test_cursors_cannot_be_altered_or_carried_to_another_list_or_filter(
    vault: Vault, location: VaultLocation, tmp_path: Any
) -> None:
    add_stock(vault, [f"T{n:03d}" for n in range(6)])
    add_stock(vault, [f"A{n:03d}" for n in range(4)], upn="olaf@contoso.com")
    add_records(vault, 6, upn="olaf@contoso.com")
    stock = lookup.token_page(vault, state=TokenState.IN_STOCK, limit=2).next_cursor
    assert stock is not None
    refusals: list[Callable[[], object]] = [
        lambda: lookup.token_page(vault, state=TokenState.ASSIGNED, cursor=stock, limit=2),
        lambda: lookup.token_page(vault, cursor=stock, limit=2),  # the filter left out
        lambda: lookup.token_page(vault, kind=TokenKind.CLASSIC, cursor=stock),
        lambda: lookup.user_page(vault, cursor=stock),
        lambda: lookup.search_tokens(vault, "T", cursor=stock),
        lambda: lookup.audit_page(vault, AuditFilter(), cursor=stock),
        lambda: OperatorDirectory(vault).page(cursor=stock),
    ]
    olaf = lookup.audit_page(vault, AuditFilter(upn="olaf@contoso.com"), limit=2).next_cursor
    assert olaf is not None
    refusals += [
        lambda: lookup.audit_page(vault, AuditFilter(upn="helga@contoso.com"), cursor=olaf),
        lambda: lookup.audit_page(vault, AuditFilter(), cursor=olaf),
    ]
    refusals += [
        functools.partial(lookup.token_page, vault, state=TokenState.IN_STOCK, cursor=bad)
        for bad in [*tampered(stock), "!!!!", "A", "AAAA", "x" * 400, "é"]
    ]
    for refused in refusals:
        with pytest.raises(CursorInvalid) as caught:
            refused()
        assert caught.value.message == REFUSED
    # The same filter written differently is the same filter: the UPN is normalised.
    again = lookup.audit_page(vault, AuditFilter(upn=" OLAF@contoso.com"), cursor=olaf, limit=2)
    assert len(again.items) == 2

    # Another vault's cursor (another key) is refused too, even for the same list and filter.
    other_path = tmp_path / "other.sqlite3"
    other_location = VaultLocation(f"sqlite:///{other_path}", tmp_path / "other.key", other_path)
    other = Vault.create(other_location, MasterKey.generate(), ADMIN)
    try:
        with pytest.raises(CursorInvalid):
            lookup.token_page(other, state=TokenState.IN_STOCK, cursor=stock, limit=2)
    finally:
        other.close()


def test_a_cursor_holds_no_more_than_a_sort_key_and_is_short(vault: Vault) -> None:
    add_stock(vault, ["K1", "K2"])
    cursor = lookup.token_page(vault, limit=1).next_cursor
    assert cursor is not None
    assert len(cursor) < 40
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_")
    assert json.loads(_unb64(cursor)[:-12]) == ["K1"]


def test_limits_outside_1_to_1000_are_refused_in_one_line(vault: Vault) -> None:
    for bad in (0, -1, MAX_LIMIT + 1):
        with pytest.raises(InvalidInput) as caught:
            lookup.token_page(vault, limit=bad)
        assert caught.value.message == "limit must be between 1 and 1000; page with the cursor"
    assert lookup.token_page(vault, limit=1).items == []
    assert lookup.audit_page(vault, AuditFilter(), limit=MAX_LIMIT).next_cursor is None


class StatementLog:
    """The SELECT statements an engine runs, with their parameters (to ask the database how it
    answers each one)."""

    def __init__(self, engine: sa.Engine, *, with_limit: bool = True) -> None:
        self.engine = engine
        self.with_limit = with_limit  # only statements with a LIMIT (a page's own query)
        self.seen: list[tuple[str, Any]] = []

    def __enter__(self) -> StatementLog:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        wanted = "LIMIT" in statement.upper() or not self.with_limit
        if statement.lstrip().upper().startswith("SELECT") and wanted:
            self.seen.append((statement, parameters))


def fresh_statistics(vault: Vault) -> None:
    """What a vault in use has: on PostgreSQL the statistics autovacuum gathers (ANALYZE); on
    SQLite none, as oathdesk never runs ANALYZE there (with them SQLite's planner chose better
    by itself, and tests that gave it them hid plans that read a whole index)."""
    if vault.engine.dialect.name == "postgresql":
        with vault.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def rows_read(vault: Vault, statement: str, parameters: Any) -> dict[str, int]:
    """How many rows the database read from each table (through the table or an index) to
    answer ``statement``: PostgreSQL's EXPLAIN ANALYZE, actual rows of every scan node (those
    its filter removed included), times its loops."""
    with vault.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
        tree = plan.scalar_one()
    tree = json.loads(tree) if isinstance(tree, str) else tree
    read: dict[str, int] = {}

    def visit(node: dict[str, Any]) -> None:
        if "Scan" in node["Node Type"]:
            rows = int(node["Actual Rows"]) + int(node.get("Rows Removed by Filter", 0))
            table = node.get("Relation Name", node["Node Type"])
            read[table] = read.get(table, 0) + rows * int(node.get("Actual Loops", 1))
        for child in node.get("Plans", []):
            visit(child)

    visit(tree[0]["Plan"])
    return read


def page_statement(vault: Vault, call: Callable[[], T]) -> tuple[T, str, Any]:
    """What ``call`` returns, and the first SELECT with a LIMIT it ran (a page's own query)
    with its parameters."""
    with StatementLog(vault.engine) as log:
        page = call()
    (statement, parameters), *_ = log.seen
    return page, statement, parameters


def sqlite_plan(vault: Vault, statement: str, parameters: Any) -> str:
    with vault.engine.connect() as conn:
        found = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in found)


def add_zed_among_others(vault: Vault) -> None:
    """Zed's two tokens, Z0 and Z1, after 600 others' in serial order (each user has one)."""
    vault.add_tokens(
        ADMIN,
        [programmable(f"A{n:05d}", upn=f"a{n}@contoso.com") for n in range(600)]
        + [programmable(f"Z{n}", upn="zed@contoso.com") for n in range(2)],
        create_missing_users=True,
    )


def test_a_users_tokens_under_another_filter_are_read_by_owner(vault: Vault) -> None:
    """``upn=`` with ``state=``, ``kind=`` or drift-measured: the user's few tokens are read
    through the owner index and the other filter checked on them. SQLite read the (state,
    serial) or (kind, serial) index instead, to spare a sort: every token of that state or kind
    with a serial before the user's (here 600; 100,000 on a big vault)."""
    add_zed_among_others(vault)
    with vault.transaction() as conn:
        for serial in [f"A{n:05d}" for n in range(0, 600, 20)] + ["Z0", "Z1"]:
            vault.record_drift(conn, vault.get_token(serial, conn), 5)
    fresh_statistics(vault)
    calls: list[Callable[[], Page[Any]]] = [
        lambda: lookup.token_page(vault, upn="zed@contoso.com", state=TokenState.ASSIGNED),
        lambda: lookup.token_page(vault, upn="zed@contoso.com", kind=TokenKind.PROGRAMMABLE),
        lambda: lookup.token_page(vault, upn="zed@contoso.com", drift_measured=True),
    ]
    for call in calls:
        page, statement, parameters = page_statement(vault, call)
        assert [token.serial for token in page.items] == ["Z0", "Z1"]
        if vault.engine.dialect.name == "postgresql":
            read = rows_read(vault, statement, parameters)
            assert read["tokens"] <= 2, (read, statement)
        else:
            plan = sqlite_plan(vault, statement, parameters)
            assert "ix_tokens_user_id" in plan, plan


def test_a_users_tokens_listed_whole_are_read_by_owner(
    vault: Vault, location: VaultLocation, master_key: MasterKey
) -> None:
    """The same for the unpaged lists: ``Vault.list_tokens`` (burning a user's assigned token
    asks it) and the quick reader of the reading commands, on SQLite."""
    add_zed_among_others(vault)
    fresh_statistics(vault)
    with StatementLog(vault.engine, with_limit=False) as log:
        listed = vault.list_tokens(upn="zed@contoso.com", state=TokenState.ASSIGNED.value)
    assert [token.serial for token in listed] == ["Z0", "Z1"]
    (statement, parameters), *_ = [seen for seen in log.seen if "FROM tokens" in seen[0]]
    if vault.engine.dialect.name == "postgresql":
        read = rows_read(vault, statement, parameters)
        assert read["tokens"] <= 2, (read, statement)
        return
    assert "ix_tokens_user_id" in sqlite_plan(vault, statement, parameters)
    reader = QuickReader.open(location, master_key)
    assert reader is not None
    traced: list[str] = []
    reader._db.set_trace_callback(traced.append)
    try:
        quick = reader.list_tokens(upn="zed@contoso.com", state="assigned")
        assert [token.serial for token in quick] == ["Z0", "Z1"]
        plan = reader._db.execute("EXPLAIN QUERY PLAN " + traced[-1]).fetchall()
    finally:
        reader.close()
    assert "ix_tokens_user_id" in "\n".join(str(row[-1]) for row in plan)


def test_the_token_limit_check_of_many_users_reads_their_tokens_by_owner(vault: Vault) -> None:
    """An import checks every user's token count: its look-up read every token in a held state
    for each chunk of 500 users on SQLite (re-importing a file of 100,000 known users: 5 s in
    this check, more as the vault grew); now each user's tokens through the owner index."""
    vault.add_tokens(
        ADMIN,
        [programmable(f"A{n:05d}", upn=f"a{n}@contoso.com") for n in range(1500)],
        create_missing_users=True,
    )
    fresh_statistics(vault)
    upns = [f"a{n}@contoso.com" for n in range(0, 1500, 50)]
    with StatementLog(vault.engine, with_limit=False) as log:
        counts = vault.token_counts([*upns, "nobody@contoso.com"])
    assert counts == {**dict.fromkeys(upns, 1), "nobody@contoso.com": 0}
    if vault.engine.dialect.name == "postgresql":
        return  # its statistics choose: on a table this small, a scan is rightly cheaper
    counted = [seen for seen in log.seen if "FROM tokens" in seen[0]]
    assert counted
    for statement, parameters in counted:
        assert "ix_tokens_user_id" in sqlite_plan(vault, statement, parameters)


def test_a_page_reads_at_most_limit_plus_one_rows(vault: Vault) -> None:
    """Deep in a big list and under each filter, a page costs its own rows, not the list's."""
    add_stock(vault, [f"B{n:05d}" for n in range(1500)])
    vault.add_tokens(ADMIN, [classic(f"D{n:05d}") for n in range(300)])
    owned = [programmable(f"E{n:05d}", upn=f"e{n}@contoso.com") for n in range(200)]
    vault.add_tokens(ADMIN, owned, create_missing_users=True)
    add_records(vault, 1500, upn="helga@contoso.com")
    add_records(vault, 300, upn="olaf@contoso.com", action="test.other")
    fresh_statistics(vault)
    limit = 20
    calls: list[Callable[[str | None], Page[Any]]] = [
        lambda c: lookup.token_page(vault, cursor=c, limit=limit),
        lambda c: lookup.token_page(vault, state=TokenState.IN_STOCK, cursor=c, limit=limit),
        lambda c: lookup.token_page(vault, kind=TokenKind.CLASSIC, cursor=c, limit=limit),
        lambda c: lookup.token_page(vault, state=TokenState.ASSIGNED, cursor=c, limit=limit),
        lambda c: lookup.user_page(vault, cursor=c, limit=limit),
        lambda c: lookup.audit_page(vault, AuditFilter(), cursor=c, limit=limit),
        lambda c: lookup.audit_page(
            vault, AuditFilter(upn="olaf@contoso.com"), cursor=c, limit=limit
        ),
        lambda c: lookup.audit_page(vault, AuditFilter(action="test.other"), cursor=c, limit=limit),
    ]
    for call in calls:
        deeper = call(None).next_cursor
        for _ in range(3):  # a few pages in
            if deeper is None:
                break
            deeper = call(deeper).next_cursor
        page, statement, parameters = page_statement(vault, functools.partial(call, deeper))
        assert len(page.items) <= limit
        if vault.engine.dialect.name == "postgresql":
            read = rows_read(vault, statement, parameters)
            assert max(read.values()) <= limit + 1, (read, statement)
        else:
            plan = sqlite_plan(vault, statement, parameters)
            # Read in the index's order from the cursor on (no sort of every match, no scan of
            # the table), so LIMIT stops the read after limit + 1 rows.
            assert "TEMP B-TREE" not in plan, plan
            assert "SEARCH" in plan or "USING INDEX" in plan or "PRIMARY KEY" in plan, plan


def test_a_page_under_a_state_and_a_kind_reads_only_its_own_rows(vault: Vault) -> None:
    """``state=`` with ``kind=``, a rare pair (five assigned classic tokens after 1,500 classic
    ones in stock): read from a (state, kind, serial) index in page order. SQLite, without
    statistics, read the kind's tokens in serial order and checked the state on each: every
    classic token before the five (100,000 on a big vault). PostgreSQL's planner picks by its
    statistics."""
    vault.add_tokens(ADMIN, [classic(f"B{n:05d}") for n in range(1500)])
    vault.add_tokens(
        ADMIN,
        [classic(f"Z{n}", upn=f"z{n}@contoso.com") for n in range(5)]
        + [programmable(f"P{n}", upn=f"p{n}@contoso.com") for n in range(30)],
        create_missing_users=True,
    )
    fresh_statistics(vault)
    pairs = [
        (TokenState.ASSIGNED, TokenKind.CLASSIC, [f"Z{n}" for n in range(5)]),
        (TokenState.IN_STOCK, TokenKind.PROGRAMMABLE, []),
        (TokenState.ASSIGNED, TokenKind.PROGRAMMABLE, sorted(f"P{n}" for n in range(30))[:20]),
    ]
    for state, kind, first_page in pairs:
        page, statement, parameters = page_statement(
            vault, functools.partial(lookup.token_page, vault, state=state, kind=kind, limit=20)
        )
        assert [token.serial for token in page.items] == first_page
        if vault.engine.dialect.name == "postgresql":
            # Its statistics choose: at worst the tokens of the rarer filter, read and sorted.
            rarer = min(
                len(vault.list_tokens(state=state.value)), len(vault.list_tokens(kind=kind))
            )
            read = rows_read(vault, statement, parameters)
            assert read["tokens"] <= max(21, rarer), (read, statement)
        else:
            plan = sqlite_plan(vault, statement, parameters)
            assert "state=? AND kind=?" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


def test_an_audit_page_under_an_action_and_an_operator_reads_only_its_own_records(
    vault: Vault,
) -> None:
    """``action=`` with ``operator=``: an operator's few reveals after 1,500 by others, read
    from an (action, actor, seq) index newest first. SQLite read the action's records newest
    first and checked the operator on each: every reveal since the operator's last."""
    mine = [AuditEntry("helpdesk:hugo", "token.revealed", "", "", {"n": n}) for n in range(5)]
    others = [
        AuditEntry(f"helpdesk:op{n % 7}", "token.revealed", "", "", {"n": n}) for n in range(1500)
    ]
    with vault.transaction() as conn:
        vault.audit_entries(conn, mine)
        vault.audit_entries(conn, others)
    fresh_statistics(vault)
    wanted = AuditFilter(action="token.revealed", actor="helpdesk:hugo")
    page, statement, parameters = page_statement(
        vault, functools.partial(lookup.audit_page, vault, wanted, limit=20)
    )
    assert [record["details"]["n"] for record in page.items] == [4, 3, 2, 1, 0]
    if vault.engine.dialect.name == "postgresql":
        read = rows_read(vault, statement, parameters)
        assert read["audit_log"] <= 21, (read, statement)
    else:
        plan = sqlite_plan(vault, statement, parameters)
        assert "action=? AND actor=?" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.sets(st.text(alphabet="0123456789abcXYZ-_.", min_size=1, max_size=8), max_size=40),
    limit=st.integers(min_value=1, max_value=12),
    extra=st.integers(min_value=0, max_value=25),
)
def test_any_data_and_page_size_walk_like_a_sorted_list(
    vault: Vault, names: set[str], limit: int, extra: int
) -> None:
    """Serials of any shape, any page size: the walk of a filtered list equals a plain sorted
    list of what matches (each example in its own part of the vault, by a fresh prefix)."""
    prefix = f"h{uuid.uuid4().hex[:6]}"
    serials = [f"{prefix}{name}" for name in names]
    if serials:
        add_stock(vault, serials)
    if extra:  # a tail of one upn's audit records too
        add_records(vault, extra, upn=f"{prefix}@contoso.com")
    walked = walk_pages(
        lambda cursor: lookup.search_tokens(vault, prefix, cursor=cursor, limit=limit)
    )
    assert all(len(page) == limit for page in walked[:-1])
    assert [t.serial for page in walked for t in page] == sorted(serials)
    wanted = AuditFilter(upn=f"{prefix}@contoso.com")
    records = walk_pages(
        lambda cursor: lookup.audit_page(vault, wanted, cursor=cursor, limit=limit)
    )
    seqs = [r["seq"] for page in records for r in page]
    assert len(seqs) == extra
    assert seqs == sorted(seqs, reverse=True)
