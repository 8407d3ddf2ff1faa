"""Issue 14's first "What it must show", as the issue states it: 1,000 stock tokens imported from a
Graph-style CSV (the real `oathdesk import`), pushed unassigned (`entra push --stock`); 300 users
of the fake tenant self-assign and activate theirs with codes from the seeds (real HTTPS calls, as
My Security Info makes them) and 5 things are odd; ONE housekeeping cycle (with retention 0 days)
assigns and delivers exactly those 300, reports the 5, and purges the 300 seeds, which are then
gone from the vault's files (the SQLite file and its WAL, read as bytes); a second cycle changes
nothing. SQLite only: the PostgreSQL cycle is tests/graph/test_housekeeping_sync.py's."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from oathdesk.seed import encode_base32
from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import run_cycle
from oathdesk.vault import housekeeping as records
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.schema import token_secrets, tokens
from tests.graph.entra_helpers import ADMIN, EntraWorld, world
from tests.graph.fake_graph.helpers import DEVICES, graph_client
from tests.graph.test_entra_sync import DOMAIN, _add_stock, _code

__all__ = ["world"]

STOCK, TAKEN = 1000, 300
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
DAVE = f"dave@{DOMAIN}"


def _ciphertexts(world: EntraWorld, serials: list[str]) -> list[bytes]:
    query = (
        sa.select(token_secrets.c.ciphertext)
        .join(tokens, tokens.c.id == token_secrets.c.token_id)
        .where(tokens.c.serial.in_(serials))
    )
    with world.vault.engine.connect() as conn:
        return [bytes(row.ciphertext) for row in conn.execute(query)]


def _seed_forms(seed: bytes) -> list[bytes]:
    b32 = encode_base32(seed)
    return [
        seed,
        seed.hex().encode(),
        b32.encode(),
        b32.rstrip("=").encode(),
        base64.b64encode(seed),
    ]


def _vault_files(world: EntraWorld) -> dict[str, bytes]:
    """The SQLite file and its WAL (and shared memory), as bytes on disk."""
    path = world.location.sqlite_path
    assert path is not None
    found = {p.name: p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))}
    assert {"vault.sqlite3", "vault.sqlite3-wal"} <= set(found)
    return found


def _changes(world: EntraWorld) -> list[tuple[object, ...]]:
    """Every audit record but the reads (Graph calls, each sync's summary) and the cycles'."""
    with world.vault.engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT seq, action, upn, serial, details FROM audit_log "
                "WHERE action NOT IN ('graph.call', :cycle, :synced) ORDER BY seq"
            ),
            {"cycle": records.CYCLE_ACTION, "synced": records.SYNCED_ACTION},
        )
        return [tuple(row) for row in found]


def _token_rows(world: EntraWorld) -> list[tuple[object, ...]]:
    with world.vault.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(tokens).order_by(tokens.c.serial))]


@pytest.mark.slow
def test_one_housekeeping_cycle_takes_in_300_self_service_enrolments_of_1000(
    world: EntraWorld, tmp_path: Path
) -> None:
    w = world
    stock = _add_stock(w, STOCK)  # the real `oathdesk import` of a Graph-style CSV
    alices = w.add_tokens(ALICE, 2, first=1)
    for upn in (BOB, DAVE):
        w.fake.add_user(upn)
    w.login()
    assert w.cli("entra", "push").returncode == 0  # alice's two, assigned to her
    pushed = w.cli("entra", "push", "--stock")
    assert pushed.returncode == 0, pushed
    assert f"{STOCK} registered, 0 failed" in pushed.stdout
    assert all(w.fake.device(s)["assignedTo"] is None for s in stock)

    # 300 users self-assign and activate their token with a code off it.
    takers = [f"user{n:04d}@{DOMAIN}" for n in range(TAKEN)]
    with httpx.Client(verify=w.fake.ssl_context(), timeout=30) as http:
        for upn, serial in zip(takers, stock, strict=False):
            w.fake.add_user(upn)
            assert w.fake.self_assign(upn, serial, _code(w, serial), client=http) == 204

    # Five odd things, each for a person.
    deleted, doubled = stock[TAKEN : TAKEN + 2]
    taken_from_alice, unassigned = alices
    with graph_client(w.fake) as admin:
        assert admin.delete(f"{DEVICES}/{w.fake.device(deleted)['id']}").status_code == 204
        method = f"/users/{w.fake.user_id(ALICE)}/authentication/hardwareOathMethods"
        for serial in alices:
            assert admin.delete(f"{method}/{w.fake.device(serial)['id']}").status_code == 204
    assert w.fake.self_assign(BOB, taken_from_alice, _code(w, taken_from_alice)) == 204
    w.fake.add_device(doubled, encode_base32(os.urandom(20)), allow_duplicate_serial=True)
    # dave registers a token the vault never had
    w.fake.add_device("77770001", encode_base32(os.urandom(20)), assign_to=DAVE, activated=True)
    odd = {
        ("unknown_to_vault", "77770001"),
        ("not_in_entra", deleted),
        ("wrong_user", taken_from_alice),
        ("unassigned_in_entra", unassigned),
        ("duplicate", doubled),
    }

    sealed = _ciphertexts(w, stock[:TAKEN])
    assert len(sealed) == TAKEN
    kept = _ciphertexts(w, stock[TAKEN + 2 :])
    w.vault.update_settings(ADMIN, retention_days=0)
    w.fake.page_size = 100  # Graph's pages
    alert_file = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(alert_file)), w.vault)
    before_cycle = _changes(w)

    first = run_cycle(w.vault, sink)

    assert first.ran
    assert not first.failed, [s.line() for s in first.steps]
    steps = {s.name: s.did for s in first.steps}
    assert steps["entra_sync"]["assigned"] == TAKEN
    assert steps["entra_sync"]["delivered"] == TAKEN
    assert steps["entra_sync"]["users_added"] == TAKEN
    assert steps["entra_sync"]["reported"] == 5
    assert steps["entra_sync"]["differences"] == {
        "self_activated": TAKEN,
        "wrong_user": 1,
        "unknown_to_vault": 1,
        "unassigned_in_entra": 1,
        "not_in_entra": 1,
        "duplicate": 1,
    }
    assert steps["purge"] == {"purged": TAKEN}
    # ONE audit record for the cycle, which names the 5 a person must look at.
    (cycle,) = w.vault.export_audit(action=records.CYCLE_ACTION)
    assert cycle["seq"] == first.seq
    step_record = cycle["details"]["steps"]["entra_sync"]
    assert {(d["kind"], d["serial"]) for d in step_record["for_a_person"]} == odd
    (synced,) = w.vault.export_audit(action=records.SYNCED_ACTION)  # the sync's own record
    assert {(d["kind"], d["serial"]) for d in synced["details"]["for_a_person"]} == odd
    (sync_line,) = [s.line() for s in first.steps if s.name == "entra_sync"]
    assert all(f"{kind} {serial}" in sync_line for kind, serial in odd)  # the CLI's, the page's

    # Exactly those 300: each assigned to its user and delivered once (source: entra), purged.
    new = _changes(w)[len(before_cycle) :]
    by_action = Counter(str(r[1]) for r in new)
    assert by_action == {
        "user.added": TAKEN,
        "token.assigned": TAKEN,
        "token.delivered": TAKEN,
        "token.secret_purged": TAKEN,
        records.FINDING_ALERTED_ACTION: len(odd),  # the 5, each named once by an alert
    }
    assert sorted(str(r[2]) for r in new if r[1] == "user.added") == takers
    for action in ("token.assigned", "token.delivered"):
        found = [(str(r[3]), str(r[2])) for r in new if r[1] == action]
        assert sorted(found) == sorted(zip(stock, takers, strict=False))
        assert all(json.loads(str(r[4]))["source"] == "entra" for r in new if r[1] == action)
    assert sorted(str(r[3]) for r in new if r[1] == "token.secret_purged") == sorted(stock[:TAKEN])
    by_serial = {t.serial: t for t in w.vault.list_tokens()}
    for upn, serial in zip(takers, stock, strict=False):
        token = by_serial[serial]
        assert (token.state, token.upn, token.has_secret) == (TokenState.SECRET_PURGED, upn, False)
    # The 5 are left as they were.
    assert {by_serial[s].upn for s in alices} == {ALICE}
    assert by_serial[deleted].state is TokenState.REGISTERED
    untouched = [by_serial[s] for s in stock[TAKEN:]]
    assert all(t.has_secret for t in untouched)

    # The 300 seeds are gone from the vault's files; the other stock's are still there, sealed.
    files = _vault_files(w)
    for name, data in files.items():
        for ciphertext in sealed:
            assert ciphertext not in data, f"a purged ciphertext is still in {name}"
        for serial in stock[:TAKEN]:
            for form in _seed_forms(w.seeds[serial]):
                assert form not in data, f"a purged seed of {serial} is in {name}"
    assert len(_ciphertexts(w, stock[TAKEN + 2 :])) == len(kept)

    # A second cycle changes nothing, and reports the same 5.
    rows, changes = _token_rows(w), _changes(w)
    second = run_cycle(w.vault, sink)
    assert second.ran
    assert not second.failed, [s.line() for s in second.steps]
    steps = {s.name: s.did for s in second.steps}
    assert (steps["entra_sync"]["assigned"], steps["entra_sync"]["delivered"]) == (0, 0)
    assert steps["entra_sync"]["reported"] == 5
    assert steps["purge"] == {"purged": 0}
    assert _token_rows(w) == rows
    assert _changes(w) == changes
    assert len(w.vault.export_audit(action=records.CYCLE_ACTION)) == 2
    # The 5 reached the alert channel once: the first cycle's one alert; the second sent none.
    (alert,) = [json.loads(line) for line in alert_file.read_text().splitlines()]
    assert alert["event"] == "entra.for_a_person"
    assert {(f["kind"], f["serial"]) for f in alert["findings"]} == odd


def test_the_overview_shows_the_last_sync_whoever_ran_it(world: EntraWorld, tmp_path: Path) -> None:
    """Entra's view beside the vault's comes from the last sync, run by `oathdesk entra sync`
    (or the console's Sync now) as well as by a housekeeping cycle; a cycle whose sync failed
    after it shows that failure beside the figures of the last sync that worked."""
    from oathdesk.services.overview import overview

    stock = _add_stock(w := world, 3)
    w.login()
    assert w.cli("entra", "push", "--stock").returncode == 0
    w.fake.add_user(DAVE)
    assert w.fake.self_assign(DAVE, stock[0], _code(w, stock[0])) == 204
    assert overview(w.vault, ADMIN).entra.synced_at is None

    synced = w.cli("entra", "sync")
    assert synced.returncode == 0, synced

    view = overview(w.vault, ADMIN).entra
    assert view.synced_at is not None
    assert (view.inventory, view.differences, view.error) == (3, {"self_activated": 1}, "")
    w.fake.fail_next(1, status=500, path_contains=DEVICES)
    sink = AlertSink(AlertSettings(str(tmp_path / "alerts.jsonl")), w.vault)
    assert [s.name for s in run_cycle(w.vault, sink).failed] == ["entra_sync"]
    after = overview(w.vault, ADMIN).entra
    assert (after.synced_at, after.inventory) == (view.synced_at, 3)
    assert "500" in after.error
