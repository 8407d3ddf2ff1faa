"""JSON batching (``POST /$batch``, learn.microsoft.com/graph/json-batching): the fake keeps
Graph's contract (at most 20 requests, unique ids, every request answered on its own, throttled
on its own), and the Graph client names the users of a sync 300 ids a call (20 filters of 15)
instead of 15, waiting out a request Graph throttles inside a batch. Real HTTPS to the fake."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from oathdesk.graph.errors import GraphPermissionError
from oathdesk.services.entra_session import open_session
from tests.graph.entra_helpers import ADMIN, EntraWorld, world
from tests.graph.fake_graph.graph_api import READ_USERS
from tests.graph.fake_graph.helpers import graph_client

__all__ = ["world"]

DOMAIN = "contoso.onmicrosoft.com"


def _users(world: EntraWorld, count: int) -> dict[str, str]:
    """``count`` users in the fake tenant: object id -> UPN."""
    upns = [f"batch{n:04d}@{DOMAIN}" for n in range(count)]
    return {world.fake.add_user(upn): upn for upn in upns}


def _batches(world: EntraWorld, since: int) -> list[list[dict[str, object]]]:
    return [
        body["requests"]
        for method, path, body in world.fake.request_bodies[since:]
        if method == "POST" and path == "/beta/$batch"
    ]


def test_user_names_asks_for_300_ids_a_call_in_json_batches(world: EntraWorld) -> None:
    users = _users(world, 320)
    world.login()
    since = len(world.fake.requests)
    unknown = ["00000000-0000-0000-0000-00000000dead"]
    with open_session(world.vault, ADMIN) as session:
        found = session.api.user_names([*users, *unknown])
    assert found == users  # the unknown id is simply not there
    calls = [c for c in world.fake.requests[since:] if c[1].startswith("/beta/")]
    assert [(m, p) for m, p, _ in calls] == [("POST", "/beta/$batch")] * 2
    # 321 ids: 22 filters of at most 15, 20 in the first batch and 2 in the second; only GETs
    batches = _batches(world, since)
    assert [len(b) for b in batches] == [20, 2]
    assert all(
        r["method"] == "GET" and str(r["url"]).startswith("/users?") for b in batches for r in b
    )


def test_a_request_throttled_inside_a_batch_is_sent_again_alone(world: EntraWorld) -> None:
    users = _users(world, 40)  # three filters in one batch
    world.login()
    since = len(world.fake.requests)
    world.fake.throttle(1, retry_after=0.2, path_contains="/users?")  # the first inner request
    with open_session(world.vault, ADMIN) as session:
        found = session.api.user_names(list(users))
    assert found == users
    assert [len(b) for b in _batches(world, since)] == [3, 1]
    with world.vault.engine.connect() as conn:
        records = [
            json.loads(d)
            for (d,) in conn.execute(
                sa.text("SELECT details FROM audit_log WHERE action = 'graph.call' ORDER BY seq")
            )
        ]
    lookups = [r for r in records if r["operation"] == "users.list"]
    assert [(r["method"], r["status"], r["result"]) for r in lookups] == [
        ("POST", 200, "ok"),
        ("GET", 429, "throttled"),  # the request inside it, waited out
        ("POST", 200, "ok"),
    ]


def test_a_refusal_inside_a_batch_is_the_calls_own_one_line_error(world: EntraWorld) -> None:
    users = _users(world, 3)
    world.login()
    world.fake.revoke(*READ_USERS)
    with open_session(world.vault, ADMIN) as session, pytest.raises(GraphPermissionError) as err:
        session.api.user_names(list(users))
    message = str(err.value)
    assert "\n" not in message
    assert "User.Read.All" in message


def test_the_fakes_batch_keeps_graphs_contract(world: EntraWorld) -> None:
    users = _users(world, 2)
    first = next(iter(users))
    with graph_client(world.fake) as admin:
        one = {"id": "1", "method": "GET", "url": f"/users/{first}"}
        many = [{**one, "id": str(n)} for n in range(21)]
        assert admin.post("/$batch", json={"requests": many}).status_code == 400  # over 20
        twice = [one, {**one, "url": "/users"}]
        assert admin.post("/$batch", json={"requests": twice}).status_code == 400  # same id
        assert admin.post("/$batch", json={"value": []}).status_code == 400
        assert admin.get("/$batch").status_code == 405
        # each request answered on its own: one found, one not, one throttled with its header
        world.fake.throttle(1, retry_after=3, path_contains="/users?$top=1")
        mixed = [
            one,
            {"id": "b", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
            {"id": "c", "method": "GET", "url": "users?$top=1"},  # the leading slash is optional
            {
                "id": "d",
                "method": "GET",
                "url": "/users?" + "$filter=" + quote(f"id in ('{first}')"),
            },
        ]
        answer = admin.post("/$batch", json={"requests": mixed})
        assert answer.status_code == 200
        by_id = {r["id"]: r for r in answer.json()["responses"]}
        assert by_id["1"]["status"] == 200
        assert by_id["1"]["body"]["userPrincipalName"] == users[first]
        assert by_id["b"]["status"] == 404
        assert by_id["b"]["body"]["error"]["code"]
        assert by_id["c"]["status"] == 429
        assert by_id["c"]["headers"]["Retry-After"] == "3"
        assert [u["id"] for u in by_id["d"]["body"]["value"]] == [first]
    # the log holds the batch as one request, as Graph's own request count would
    assert [p for _, p, _ in world.fake.requests].count("/beta/$batch") == 5
