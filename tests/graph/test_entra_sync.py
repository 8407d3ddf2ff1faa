"""`oathdesk entra push --stock` and `oathdesk entra sync` against the fake Graph.

Users self-assign stock tokens the way My Security Info does it (a real HTTPS call to
``/me/.../assignAndActivateBySerialNumber`` with the user's own token and a code from the seed);
other admins act through Graph with the app's token. The vault is a real SQLite file or a real
PostgreSQL database; an interrupted sync is a real process killed with SIGKILL.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from oathdesk.services.entra_reconcile import KINDS
from oathdesk.vault.console import undelivered_tokens
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import utc_now
from tests.conftest import assert_one_line_error
from tests.formats.helpers import StockToken, graph_style_csv
from tests.graph.entra_helpers import ADMIN, EntraWorld, pg_world, world
from tests.graph.fake_graph.helpers import DEVICES, graph_client

__all__ = ["pg_world", "world"]

DOMAIN = "contoso.onmicrosoft.com"
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
YEAR = dt.timedelta(days=365)


def _b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode()


def _code(world: EntraWorld, serial: str) -> str:
    """The code the token shows now (pyotp, the oracle). Entra accepts +-1 day at activation,
    so a step boundary between here and the fake's check does not matter."""
    return str(pyotp.TOTP(_b32(world.seeds[serial])).now())


def _add_stock(world: EntraWorld, count: int, *, first: int = 1) -> list[str]:
    """``count`` tokens in stock (no user), imported by the real `oathdesk import` from a vendor's
    Graph-style CSV (serialNumber,secretKey,timeIntervalInSeconds,manufacturer,model,
    hashFunction), as Token2's inventory sends them. SHA-1, 30 s: ``_code`` computes theirs."""
    tokens = [
        StockToken(f"5{number:09d}", os.urandom(20)) for number in range(first, first + count)
    ]
    world.seeds.update((t.serial, t.secret) for t in tokens)
    path = world.location.key_file.parent / "stock.csv"
    path.write_text(graph_style_csv(tokens))
    try:
        imported = world.cli("import", str(path))
    finally:
        path.unlink()
    assert imported.returncode == 0, imported
    return [t.serial for t in tokens]


def _audit(world: EntraWorld) -> list[tuple[str, str, str, dict[str, object]]]:
    """(action, upn, serial, details) of every audit record."""
    with world.vault.engine.connect() as conn:
        found = conn.execute(sa.text("SELECT action, upn, serial, details FROM audit_log"))
        return [(a, u, s, json.loads(d) if d else {}) for a, u, s, d in found]


def _changes(world: EntraWorld) -> list[tuple[str, str, str]]:
    """Audit records other than Graph calls and the syncs' summaries: what a sync changed."""
    return [(a, u, s) for a, u, s, _ in _audit(world) if a not in ("graph.call", "entra.synced")]


def _sync(world: EntraWorld) -> dict[str, Any]:
    result = world.cli("entra", "sync", "--json")
    assert result.returncode == 0, result
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _kinds(found: object) -> Counter[str]:
    assert isinstance(found, list)
    return Counter(d["kind"] for d in found)


# -- push --stock ----------------------------------------------------------------------------------


def test_push_stock_uploads_unassigned_and_registers_without_a_user(world: EntraWorld) -> None:
    stock = _add_stock(world, 3)
    (assigned,) = world.add_tokens(ALICE, 1, first=1)
    world.login()

    dry = world.cli("entra", "push", "--stock", "--dry-run")
    assert dry.returncode == 0, dry
    assert "would create unassigned" in dry.stdout
    assert "each seed uploaded leaves the vault for Microsoft's inventory" in dry.stdout
    assert world.fake.devices == []

    result = world.cli("entra", "push", "--stock", "--json")
    assert result.returncode == 0, result
    outcomes = json.loads(result.stdout)["outcomes"]
    assert {o["serial"]: o["result"] for o in outcomes} == dict.fromkeys(stock, "uploaded as stock")
    for serial in stock:
        device = world.fake.device(serial)
        assert device["status"] == "available"
        assert device["assignedTo"] is None
        assert device["secretKey"] == _b32(world.seeds[serial])
        token = world.vault.get_token(serial)
        assert token.state is TokenState.REGISTERED
        assert token.upn is None
    # The user's token is not stock: --stock leaves it to a plain push.
    assert world.vault.get_token(assigned).state is TokenState.ASSIGNED
    creates = [r for r in world.fake.request_bodies if r[0] == "PATCH" and DEVICES in r[1]]
    assert all("assignTo" not in item for _, _, body in creates for item in body["value"])

    again = world.cli("entra", "push", "--stock")
    assert again.returncode == 0, again
    assert "nothing to push: no token in stock without a user waits" in again.stdout
    named = world.cli("entra", "push", "--stock", "--json", "--serial", stock[0])
    assert named.returncode == 0, named
    (outcome,) = json.loads(named.stdout)["outcomes"]
    assert outcome["result"] == "already done"
    assert "uploaded to Entra as stock by an earlier push" in outcome["detail"]
    assert len(world.fake.devices) == 3
    refused = world.cli("entra", "push", "--stock", "--serial", assigned)
    assert refused.returncode == 1
    assert "--stock takes tokens in stock without a user" in refused.stdout
    # Stock registered without a user is not "undelivered" to anyone.
    later = world.vault.undelivered(now=utc_now() + dt.timedelta(days=400))
    assert assigned in {t.serial for t in later}
    assert not set(stock) & {t.serial for t in later}
    with world.vault.engine.begin() as conn:  # the console's page of them, a year on
        conn.execute(
            sa.text("UPDATE tokens SET created_at = :t, assigned_at = :t"), {"t": utc_now() - YEAR}
        )
    page, total = undelivered_tokens(world.vault, limit=10)
    assert [t.serial for t in page] == [assigned]
    assert total == 1


# -- the acceptance test of issue 14 (sync part) ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_thousand_stock_tokens_300_self_assigned_5_odd_one_sync(
    backend: str, request: pytest.FixtureRequest
) -> None:
    w: EntraWorld = request.getfixturevalue("world" if backend == "sqlite" else "pg_world")
    count, taken = (1000, 300) if backend == "sqlite" else (200, 60)
    stock = _add_stock(w, count)
    kept_for_alice, unassigned_later = w.add_tokens(ALICE, 2, first=1)
    w.fake.add_user(BOB)
    w.login()
    assert w.cli("entra", "push").returncode == 0  # alice's two, assigned and activated
    pushed = w.cli("entra", "push", "--stock")
    assert pushed.returncode == 0, pushed
    assert f"{count} registered, 0 failed" in pushed.stdout

    users = [f"user{n:04d}@{DOMAIN}" for n in range(taken)]
    with httpx.Client(verify=w.fake.ssl_context(), timeout=30) as http:
        for upn, serial in zip(users, stock, strict=False):
            w.fake.add_user(upn)
            assert w.fake.self_assign(upn, serial, _code(w, serial), client=http) == 204

    # Five odd things, each for a person to look at.
    gone, doubled = stock[taken], stock[taken + 1]
    with graph_client(w.fake) as admin:
        # another admin deletes a stock token from the inventory
        assert admin.delete(f"{DEVICES}/{w.fake.device(gone)['id']}").status_code == 204
        # ... unassigns alice's token, and bob self-assigns it with a code off it
        alice_id = w.fake.user_id(ALICE)
        for serial in (kept_for_alice, unassigned_later):
            method = f"/users/{alice_id}/authentication/hardwareOathMethods"
            assert admin.delete(f"{method}/{w.fake.device(serial)['id']}").status_code == 204
    assert w.fake.self_assign(BOB, kept_for_alice, _code(w, kept_for_alice)) == 204
    # a spare with a serial already there; a token registered in Entra the vault never had
    w.fake.add_device(doubled, _b32(os.urandom(20)), allow_duplicate_serial=True)
    w.fake.add_device("77770001", _b32(os.urandom(20)), assign_to=BOB, activated=True)

    w.fake.page_size = 100  # Graph's page size: the inventory comes in pages
    before = len(w.fake.requests)
    first = _sync(w)
    calls = w.fake.request_bodies[before:]
    listing = [c for c in calls if DEVICES in c[1]]
    assert len(listing) == -(-(count + 4 - 1) // 100)  # one paged listing, no lookups by serial
    # Sync only reads: GETs, and the users' names in JSON batches of GETs (20 lookups a call).
    batches = [body["requests"] for method, path, body in calls if path == "/beta/$batch"]
    filters = math.ceil((taken + 1) / 15)  # the takers and bob, 15 ids a filter
    assert len(batches) == math.ceil(filters / 20)
    assert all(r["method"] == "GET" for requests in batches for r in requests)
    others = [c for c in calls if c[1].startswith("/beta/") and c[1] != "/beta/$batch"]
    assert all(c[0] == "GET" for c in others), others[-3:]

    assert _kinds(first["applied"]) == {"self_activated": taken}
    assert {d["serial"]: d["upn"] for d in first["applied"]} == dict(
        zip(stock, users, strict=False)
    )
    assert sorted(first["users_added"]) == users
    reported = {(d["kind"], d["serial"]) for d in first["reported"]}
    assert reported == {
        ("not_in_entra", gone),
        ("wrong_user", kept_for_alice),
        ("unassigned_in_entra", unassigned_later),
        ("duplicate", doubled),
        ("unknown_to_vault", "77770001"),
    }
    assert first["counts"] == {
        "self_activated": taken,
        "wrong_user": 1,
        "unassigned_in_entra": 1,
        "unknown_to_vault": 1,
        "not_in_entra": 1,
        "duplicate": 1,
    }
    delivered = w.vault.list_tokens(state=TokenState.DELIVERED.value)
    assert {(t.serial, t.upn) for t in delivered} == set(zip(stock, users, strict=False))
    assert all(t.delivered_at is not None for t in delivered)
    rest = w.vault.list_tokens(state=TokenState.REGISTERED.value)
    assert {t.serial for t in rest if t.upn is None} == set(stock[taken:])
    assert w.vault.get_token(kept_for_alice).upn == ALICE  # the conflict is left alone

    records = [r for r in _audit(w) if r[3].get("source") == "entra"]
    assert Counter(a for a, *_ in records) == {"token.assigned": taken, "token.delivered": taken}
    # retention starts with delivery: with 0 days, purge --due takes exactly these
    w.vault.update_settings(ADMIN, retention_days=0)
    due = w.vault.purge_due(ADMIN, dry_run=True)
    assert {t.serial for t in due} == set(stock[:taken])

    changes = _changes(w)
    second = _sync(w)
    assert second["applied"] == []
    assert second["users_added"] == []
    assert {(d["kind"], d["serial"]) for d in second["reported"]} == reported
    assert _changes(w) == changes  # nothing changed the second time

    table = w.cli("entra", "sync")
    assert table.returncode == 0, table
    assert KINDS["wrong_user"] in table.stdout
    assert f"0 assigned, 0 delivered; 5 reported for a person; {count + 3}" in table.stdout
    text = "\n".join(str(r) for r in _audit(w))
    assert not any(_b32(seed) in text for seed in w.seeds.values())


# -- delivery of tokens oathdesk activated ---------------------------------------------------------


def test_a_token_oathdesk_activated_is_delivered_only_by_a_sign_in_after_shipping(
    world: EntraWorld,
) -> None:
    shipped, kept = world.add_tokens(ALICE, 2, first=1)
    world.login()
    assert world.cli("entra", "push").returncode == 0
    world.vault.move(ADMIN, shipped, TokenState.SHIPPED, carrier="DHL", tracking="JJD01")
    shipped_at = world.vault.get_token(shipped).shipped_at
    assert shipped_at is not None

    # The activation oathdesk made (Entra's lastUsedDateTime of it) proves nothing; nor does a
    # use before shipping, nor one of a token never shipped.
    assert _sync(world)["applied"] == []
    world.fake.set_last_used(shipped, shipped_at - dt.timedelta(minutes=5))
    world.fake.set_last_used(kept, utc_now() + dt.timedelta(minutes=5))
    assert _sync(world)["applied"] == []
    assert world.vault.get_token(shipped).state is TokenState.SHIPPED
    assert world.vault.get_token(kept).state is TokenState.REGISTERED

    world.fake.set_last_used(shipped, shipped_at + dt.timedelta(seconds=2))
    found = _sync(world)
    assert [(d["kind"], d["serial"]) for d in found["applied"]] == [
        ("used_after_shipping", shipped)
    ]
    token = world.vault.get_token(shipped)
    assert token.state is TokenState.DELIVERED
    assert token.delivered_at is not None
    (record,) = [r for r in _audit(world) if r[0] == "token.delivered"]
    assert record[2] == shipped
    assert record[3]["source"] == "entra"
    assert _sync(world)["applied"] == []


def test_a_stock_token_assigned_but_not_activated_gets_its_user_not_delivery(
    world: EntraWorld,
) -> None:
    (serial, wrong) = _add_stock(world, 2)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    world.fake.add_user(BOB)
    # bob types a wrong code: Entra keeps the token on him as failedActivation
    # Refused only if absent from Entra's +-1 day window (2,881 codes each side): prove it.
    seed = _b32(world.seeds[wrong])
    now = int(time.time()) // 30
    window = {pyotp.TOTP(seed).at(step * 30) for step in range(now - 2_885, now + 2_886)}
    bad = next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in window)
    assert world.fake.self_assign(BOB, wrong, bad) == 400
    assert world.fake.device(wrong)["status"] == "failedActivation"

    found = _sync(world)
    assert [(d["kind"], d["serial"], d["upn"]) for d in found["applied"]] == [
        ("self_assigned", wrong, BOB)
    ]
    token = world.vault.get_token(wrong)
    assert token.state is TokenState.REGISTERED
    assert token.upn == BOB
    assert world.vault.get_user(BOB).notes.startswith("added by `oathdesk entra sync`")
    assert world.vault.get_token(serial).upn is None
    # Later bob gets it right: now it is delivered (the journal knows oathdesk never activated it).
    with graph_client(world.fake) as admin:
        answer = admin.post(
            f"/users/{world.fake.user_id(BOB)}/authentication/hardwareOathMethods/"
            f"{world.fake.device(wrong)['id']}/activate",
            json={"verificationCode": _code(world, wrong)},
        )
        assert answer.status_code == 204, answer.text
    again = _sync(world)
    assert [(d["kind"], d["serial"]) for d in again["applied"]] == [("self_activated", wrong)]
    assert world.vault.get_token(wrong).state is TokenState.DELIVERED
    assert _sync(world)["applied"] == []
    pulled = json.loads(world.cli("entra", "pull", "--json").stdout)
    assert [d["kind"] for d in pulled["differences"]] == []


# -- users and the vault's limits ------------------------------------------------------------------


def test_a_user_entra_can_no_longer_name_is_reported_and_never_added(world: EntraWorld) -> None:
    """A user who self-assigned stock and was deleted since: the device still names them by id,
    /users no longer finds them. Reported for a person; no user made up in the vault."""
    gone_user, kept = f"carol@{DOMAIN}", f"dave@{DOMAIN}"
    (theirs, other) = _add_stock(world, 2)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    for upn, serial in ((gone_user, theirs), (kept, other)):
        world.fake.add_user(upn)
        assert world.fake.self_assign(upn, serial, _code(world, serial)) == 204
    gone_id = world.fake.user_id(gone_user)
    world.fake.delete_user(gone_user)

    found = _sync(world)
    assert [(d["kind"], d["serial"], d["upn"]) for d in found["applied"]] == [
        ("self_activated", other, kept)
    ]
    (reported,) = found["reported"]
    assert (reported["kind"], reported["serial"], reported["upn"]) == ("wrong_user", theirs, "")
    assert gone_id in reported["detail"]
    assert found["users_added"] == [kept]
    assert gone_user not in {u.upn for u in world.vault.list_users()}
    token = world.vault.get_token(theirs)
    assert (token.state, token.upn) == (TokenState.REGISTERED, None)
    assert _sync(world)["applied"] == []


def test_sync_keeps_the_vaults_tokens_per_user_limit(world: EntraWorld) -> None:
    """A stock token self-assigned by a user who holds the vault's limit already is reported
    for a person, never given; another user's is applied in the same run."""
    (held,) = world.add_tokens(ALICE, 1, first=1)
    stock = _add_stock(world, 4)
    world.vault.update_settings(ADMIN, max_tokens_per_user=2)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    world.fake.add_user(BOB)
    # alice (1 held) takes two: the first reaches the limit, the second is over it;
    # bob (new to the vault) takes one whose activation failed: assigned, and within his limit.
    for serial in stock[:2]:
        assert world.fake.self_assign(ALICE, serial, _code(world, serial)) == 204
    with graph_client(world.fake) as admin:
        bob_id = world.fake.user_id(BOB)
        answer = admin.post(
            f"/users/{bob_id}/authentication/hardwareOathMethods",
            json={"device": {"id": world.fake.device(stock[2])["id"]}},
        )
        assert answer.status_code in (200, 201), answer.text
    assert world.fake.self_assign(BOB, stock[3], _code(world, stock[3])) == 204

    found = _sync(world)
    assert {(d["kind"], d["serial"], d["upn"]) for d in found["applied"]} == {
        ("self_activated", stock[0], ALICE),
        ("self_assigned", stock[2], BOB),
        ("self_activated", stock[3], BOB),
    }
    (over,) = found["reported"]
    assert (over["kind"], over["serial"], over["upn"]) == ("over_token_limit", stock[1], ALICE)
    assert "max_tokens_per_user" in over["detail"]
    assert world.vault.get_token(stock[1]).upn is None
    assert {t.serial for t in world.vault.list_tokens() if t.upn == ALICE} == {held, stock[0]}
    # the same the next time; once the limit is raised the next sync gives it
    again = _sync(world)
    assert again["applied"] == []
    assert {(d["kind"], d["serial"]) for d in again["reported"]} == {
        ("not_activated", stock[2]),  # bob's, given to him, still waits for his activation
        ("over_token_limit", stock[1]),
    }
    world.vault.update_settings(ADMIN, max_tokens_per_user=3)
    assert [(d["kind"], d["serial"]) for d in _sync(world)["applied"]] == [
        ("self_activated", stock[1])
    ]


# -- failures --------------------------------------------------------------------------------------


def test_a_graph_failure_mid_paging_changes_nothing_and_the_next_sync_completes(
    world: EntraWorld,
) -> None:
    stock = _add_stock(world, 12)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    users = [f"u{n}@{DOMAIN}" for n in range(5)]
    for upn, serial in zip(users, stock, strict=False):
        world.fake.add_user(upn)
        assert world.fake.self_assign(upn, serial, _code(world, serial)) == 204
    world.fake.page_size = 4
    # pull (read-only) shows what sync will apply, naming users the vault does not know yet
    pulled = json.loads(world.cli("entra", "pull", "--json").stdout)["differences"]
    assert {(d["kind"], d["serial"], d["upn"]) for d in pulled} == {
        ("self_activated", serial, upn) for upn, serial in zip(users, stock, strict=False)
    }
    changes = _changes(world)
    world.fake.fail_next(1, status=500, path_contains="skiptoken")
    failed = world.cli("entra", "sync")
    assert_one_line_error(failed)
    assert _changes(world) == changes
    world.fake.throttle(2, path_contains="skiptoken")  # 429s are waited out, not failures
    found = _sync(world)
    assert _kinds(found["applied"]) == {"self_activated": 5}
    assert _sync(world)["applied"] == []


def test_a_sync_killed_midway_is_finished_by_the_next_with_nothing_done_twice(
    world: EntraWorld,
) -> None:
    stock = _add_stock(world, 10)
    world.login()
    assert world.cli("entra", "push", "--stock").returncode == 0
    users = [f"k{n}@{DOMAIN}" for n in range(8)]
    for upn, serial in zip(users, stock, strict=False):
        world.fake.add_user(upn)
        assert world.fake.self_assign(upn, serial, _code(world, serial)) == 204
    # A real process runs the sync two changes per transaction and is killed (SIGKILL, by
    # itself, so the moment is exact) after its second transaction committed.
    script = textwrap.dedent(
        """
        import os, signal
        from oathdesk.cli.vault_context import local_actor, open_vault
        from oathdesk.services import entra_sync
        from oathdesk.services.entra_session import open_session

        apply, done = entra_sync._apply_batch, []

        def apply_then_die(*args, **kwargs):
            apply(*args, **kwargs)
            done.append(1)
            if len(done) == 2:
                os.kill(os.getpid(), signal.SIGKILL)

        entra_sync._apply_batch = apply_then_die
        vault = open_vault(None)
        with open_session(vault, local_actor()) as session:
            entra_sync.sync_entra(session, batch_size=2)
        """
    )
    process = subprocess.run(
        [sys.executable, "-c", script],
        env={**world.env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -9, process.stderr
    delivered = world.vault.list_tokens(state=TokenState.DELIVERED.value)
    assert len(delivered) == 4  # two transactions of two: never half of one

    result = world.cli("entra", "sync", "--json")
    assert result.returncode == 0, result
    assert "took over the lease of the sync" in result.stderr  # the killed run's, at once
    found = json.loads(result.stdout)
    assert len(found["applied"]) == 4
    delivered = world.vault.list_tokens(state=TokenState.DELIVERED.value)
    assert {(t.serial, t.upn) for t in delivered} == set(zip(stock, users, strict=False))
    per_serial = Counter(s for a, _, s in _changes(world) if a == "token.delivered")
    assert per_serial == dict.fromkeys(stock[:8], 1)
    added = Counter(u for a, u, _ in _changes(world) if a == "user.added")
    assert added == dict.fromkeys(users, 1)


def test_sync_without_a_connection_or_with_a_busy_lease_says_what_to_do(
    world: EntraWorld,
) -> None:
    missing = world.cli("entra", "sync")
    assert_one_line_error(missing)
    world.login()
    assert_one_line_error(world.cli("entra", "sync", "--yes"))
    with world.vault.lease(
        "oathdesk entra sync", ADMIN, host="desk-9", ttl=dt.timedelta(minutes=5)
    ):
        busy = world.cli("entra", "sync")
    assert_one_line_error(busy)
    assert "`oathdesk entra sync` is already running" in busy.stderr


def test_the_fakes_self_service_and_id_in_filters_keep_graphs_contract(world: EntraWorld) -> None:
    """The fake's additions for sync: My Sign-ins acts only on its own user, and ``id in``
    takes at most 15 values, as Graph documents."""
    (serial,) = _add_stock(world, 1)
    world.fake.add_device(serial, _b32(world.seeds[serial]))
    world.fake.add_user(ALICE)
    bob = world.fake.add_user(BOB)
    own = {"Authorization": f"Bearer {world.fake.self_service_token(ALICE)}"}
    body = {"serialNumber": serial, "verificationCode": _code(world, serial)}
    with httpx.Client(verify=world.fake.ssl_context(), timeout=10) as http:
        other = f"{world.fake.graph_url}/users/{bob}/authentication/hardwareOathMethods"
        answer = http.post(f"{other}/assignAndActivateBySerialNumber", json=body, headers=own)
        assert answer.status_code == 403
    assert world.fake.device(serial)["assignedTo"] is None
    assert world.fake.self_assign(ALICE, serial, _code(world, serial)) == 204
    with graph_client(world.fake) as admin:
        ids = [world.fake.user_id(ALICE), bob]
        quoted = ",".join(f"'{i}'" for i in ids)
        found = admin.get("/users", params={"$filter": f"id in ({quoted})"})
        assert {u["userPrincipalName"] for u in found.json()["value"]} == {ALICE, BOB}
        many = ",".join(f"'{n}'" for n in range(16))
        assert admin.get("/users", params={"$filter": f"id in ({many})"}).status_code == 400
