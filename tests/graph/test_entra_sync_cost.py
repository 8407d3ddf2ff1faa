"""What `entra sync` costs the vault: a batch of changes is a fixed number of statements, one
transaction and one append to the audit chain however many changes it holds, and the Graph calls
are audited per run of calls alike, not a transaction per call (issue 14's benchmark: a sync of
10,000 devices took 17 times its listing). Counted with SQLAlchemy's events on the vault's real
engine (SQLite file and PostgreSQL), against the fake Graph over HTTPS."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.graph.errors import GraphError
from oathdesk.services.entra_reconcile import differences, pull
from oathdesk.services.entra_session import open_session
from oathdesk.services.entra_sync import SyncResult, sync_entra
from oathdesk.vault.lifecycle import TokenState
from tests.graph.entra_helpers import ADMIN, EntraWorld, pg_world, world
from tests.graph.test_entra_sync import DOMAIN, _add_stock, _code

__all__ = ["pg_world", "world"]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request: pytest.FixtureRequest) -> EntraWorld:
    found: EntraWorld = request.getfixturevalue(
        "world" if request.param == "sqlite" else "pg_world"
    )
    return found


@dataclass
class Cost:
    statements: int = 0
    commits: int = 0
    audit_appends: int = 0  # moves of the chain's head: one per append, however many records
    token_updates: int = 0
    user_inserts: int = 0
    sql: list[str] = field(default_factory=list)


@contextmanager
def counted(engine: sa.Engine) -> Iterator[Cost]:
    cost = Cost()

    def statement(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        cost.statements += 1
        cost.sql.append(text)
        head = " ".join(text.split()).upper()
        cost.audit_appends += head.startswith("UPDATE AUDIT_HEAD")
        cost.token_updates += head.startswith("UPDATE TOKENS")
        cost.user_inserts += head.startswith("INSERT INTO USERS") or head.startswith(
            'INSERT INTO "USERS"'
        )

    def commit(_conn: Any) -> None:
        cost.commits += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield cost
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


def _take(world: EntraWorld, serials: list[str], first: int) -> None:
    """Users first.. self-assign and activate ``serials`` at My Security Info."""
    for number, serial in enumerate(serials, first):
        upn = f"taker{number:03d}@{DOMAIN}"
        world.fake.add_user(upn)
        assert world.fake.self_assign(upn, serial, _code(world, serial)) == 204


def _sync(world: EntraWorld, batch_size: int = 1000) -> tuple[SyncResult, Cost]:
    with counted(world.vault.engine) as cost, open_session(world.vault, ADMIN) as session:
        result = sync_entra(session, batch_size=batch_size)
    return result, cost


def _graph_records(world: EntraWorld) -> list[dict[str, Any]]:
    with world.vault.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT details FROM audit_log WHERE action = 'graph.call' ORDER BY seq")
        )
        return [json.loads(d) for (d,) in found]


def test_a_batch_costs_the_same_statements_and_one_audit_append_for_5_or_45_changes(
    any_world: EntraWorld,
) -> None:
    world = any_world
    stock = _add_stock(world, 60)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    world.fake.page_size = 10  # six pages: the listing's calls are audited as one record
    idle, idle_cost = _sync(world)
    assert idle.applied == []

    _take(world, stock[:5], 0)
    few, few_cost = _sync(world)
    _take(world, stock[5:50], 5)
    many, many_cost = _sync(world)

    assert Counter(d.kind for d in few.applied) == {"self_activated": 5}
    assert Counter(d.kind for d in many.applied) == {"self_activated": 45}
    assert len(many.users_added) == 45
    delivered = world.vault.list_tokens(state=TokenState.DELIVERED.value)
    assert {t.serial for t in delivered} == set(stock[:50])
    # O(1) per batch: 45 changes cost what 5 did, statement for statement.
    assert many_cost.statements == few_cost.statements, many_cost.sql
    assert many_cost.commits == few_cost.commits
    assert many_cost.token_updates == few_cost.token_updates == 1  # one executemany
    assert many_cost.user_inserts == few_cost.user_inserts == 1
    # The changes and the Graph calls that found them: one append, and the sync's own record
    # (entra.synced) one more; nothing applied: the calls and the sync's record, one append.
    assert few_cost.audit_appends == many_cost.audit_appends == idle_cost.audit_appends + 1
    assert many_cost.audit_appends <= 3, many_cost.sql  # with the lease's own records, if any
    # Each change keeps its own record, as the single operations write them.
    with world.vault.engine.connect() as conn:
        actions = Counter(conn.execute(sa.text("SELECT action FROM audit_log")).scalars())
    assert actions["token.delivered"] == actions["token.assigned"] == 50
    assert actions["user.added"] == 50

    # Batches of 10: a transaction and an append each, 5 of them for 45 more changes.
    _take(world, stock[50:], 50)
    with world.vault.engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    small, small_cost = _sync(world, batch_size=3)
    assert len(small.applied) == 10
    assert small_cost.token_updates == 4  # 3 + 3 + 3 + 1
    assert small_cost.audit_appends == many_cost.audit_appends + 3
    with world.vault.engine.connect() as conn:
        after = conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    # 10 users, 10 assignments, 10 deliveries, the Graph calls' few records and the sync's own
    assert after - before == 30 + _new_graph_records(world, before) + 1


def _new_graph_records(world: EntraWorld, after_seq: int) -> int:
    with world.vault.engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM audit_log WHERE action = 'graph.call' AND seq > :s")
        return int(conn.execute(query, {"s": after_seq}).scalar_one())


def test_graph_calls_are_audited_per_run_and_a_failed_listing_is_audited_too(
    world: EntraWorld,
) -> None:
    stock = _add_stock(world, 30)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    _take(world, stock[:20], 0)
    world.fake.page_size = 5
    start = len(_graph_records(world))
    result, _ = _sync(world)
    assert len(result.applied) == 20
    records = _graph_records(world)[start:]
    listing = [r for r in records if r["operation"] == "devices.list"]
    # six pages, one record: how many calls, their statuses and results, how the run ended
    assert listing == [
        {
            "operation": "devices.list",
            "method": "GET",
            "object": "",
            "status": 200,
            "result": "ok",
            "calls": 6,
            "statuses": {"200": 6},
            "results": {"ok": 6},
        }
    ]
    lookups = [r for r in records if r["operation"] == "users.list"]
    assert sum(r.get("calls", 1) for r in lookups) >= 1

    # A listing Graph fails midway: the sync stops, the vault is unchanged, and the calls it
    # made (the pages read, the one refused) are in the audit all the same.
    start = len(_graph_records(world))
    world.fake.fail_next(1, status=500, path_contains="skiptoken")
    with pytest.raises(GraphError), open_session(world.vault, ADMIN) as session:
        sync_entra(session)
    failed = _graph_records(world)[start:]
    assert failed == [
        {
            "operation": "devices.list",
            "method": "GET",
            "object": "",
            "status": 500,  # how the run ended
            "result": "error",
            "calls": 2,
            "statuses": {"200": 1, "500": 1},
            "results": {"ok": 1, "error": 1},
        }
    ]


def test_pull_and_push_append_their_reads_records_together(world: EntraWorld) -> None:
    """The same class of cost elsewhere: `entra pull` reads two method lists per vault user and
    the whole inventory, `entra push` the inventory before it writes; those reads are audited
    in one append, not a transaction per call. (Push's writes stay a record each, at once.)"""
    for number in range(8):
        world.add_tokens(f"puller{number}@{DOMAIN}", 1, first=number + 1)
    world.login()
    world.fake.page_size = 2
    with counted(world.vault.engine) as cost, open_session(world.vault, ADMIN) as session:
        report = pull(session)
    assert report.users_checked == 8
    assert cost.audit_appends == 1
    records = _graph_records(world)
    per_user = [r for r in records if r["operation"] == "methods.list"]
    assert len(per_user) == 8  # a user's two lists: one record of 2 calls
    assert all(r["calls"] == 2 and r["results"] == {"ok": 2} for r in per_user)

    # push lists the inventory (8 devices, 2 a page) in one record before it writes
    assert world.cli("entra", "push").returncode == 0
    world.add_tokens(f"pusher@{DOMAIN}", 1, first=20)
    before = len(_graph_records(world))
    again = world.cli("entra", "push")
    assert again.returncode == 0, again
    new = _graph_records(world)[before:]
    listing = [r for r in new if r["operation"] == "devices.list"]
    assert [(r["calls"], r["results"]) for r in listing] == [(4, {"ok": 4})]


def test_a_token_changed_after_the_sync_read_it_is_left_out_and_the_rest_applied(
    any_world: EntraWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's one UPDATE checks each token's version: a token an operator changed between
    the sync's read and its write makes the batch fall back to one change at a time, so only
    that one is left (reported ``changed_meanwhile``), never applied over the operator's."""
    world = any_world
    stock = _add_stock(world, 4)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    _take(world, stock[:3], 0)
    moved = stock[1]

    def then_an_operator_ships_one(*args: Any, **kwargs: Any) -> Any:
        found = differences(*args, **kwargs)
        world.vault.move(ADMIN, moved, TokenState.SHIPPED, carrier="DHL", tracking="JJD7")
        return found

    monkeypatch.setattr("oathdesk.services.entra_sync.differences", then_an_operator_ships_one)
    result, _ = _sync(world)
    assert sorted(d.serial for d in result.applied) == [stock[0], stock[2]]
    (left,) = [d for d in result.reported if d.kind == "changed_meanwhile"]
    assert left.serial == moved
    assert left.detail == f"token {moved} changed meanwhile; reload it and try again"
    token = world.vault.get_token(moved)
    assert (token.state, token.upn) == (TokenState.SHIPPED, None)  # the operator's change
    with world.vault.engine.connect() as conn:
        query = sa.text("SELECT action, details FROM audit_log WHERE serial = :s ORDER BY seq")
        records = conn.execute(query, {"s": moved}).all()
    assert [a for a, d in records if json.loads(d).get("source") == "entra"] == []
    assert records[-1][0] == "token.shipped"  # no sync record after the operator's
