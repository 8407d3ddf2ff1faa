"""Housekeeping with an Entra connection, against the fake Graph (real HTTPS, a real SQLite file
or PostgreSQL database): the sync step learns what users did and the purge erases their seeds
in the same cycle; Graph failing (500) is an alert (the alert file) while the other steps run;
`oathdesk housekeeping` says so in one line per step and fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import run_cycle
from oathdesk.vault import housekeeping as records
from oathdesk.vault.lifecycle import TokenState
from tests.conftest import assert_one_line_error
from tests.graph.entra_helpers import ADMIN, EntraWorld, pg_world, world
from tests.graph.fake_graph.helpers import DEVICES
from tests.graph.test_entra_sync import DOMAIN, _add_stock, _code

__all__ = ["pg_world", "world"]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_world(request: pytest.FixtureRequest) -> EntraWorld:
    found: EntraWorld = request.getfixturevalue(
        "world" if request.param == "sqlite" else "pg_world"
    )
    return found


def _self_service(world: EntraWorld, stock: int, taken: int) -> list[str]:
    """``stock`` tokens pushed unassigned; the first ``taken`` self-assigned and activated."""
    world.login()
    serials = _add_stock(world, stock)
    assert world.cli("entra", "push", "--stock").returncode == 0
    for number, serial in enumerate(serials[:taken]):
        upn = f"user{number}@{DOMAIN}"
        world.fake.add_user(upn)
        assert world.fake.self_assign(upn, serial, _code(world, serial)) == 204
    return serials


def test_one_cycle_syncs_then_purges_and_a_second_changes_nothing(
    any_world: EntraWorld, tmp_path: Path
) -> None:
    world = any_world
    serials = _self_service(world, stock=6, taken=3)
    world.vault.update_settings(ADMIN, retention_days=0)
    sink = AlertSink(AlertSettings(str(tmp_path / "alerts.jsonl")), world.vault)

    first = run_cycle(world.vault, sink)

    steps = {step.name: step for step in first.steps}
    assert not first.failed, [s.line() for s in first.steps]
    assert steps["entra_sync"].did["delivered"] == 3
    assert steps["entra_sync"].did["inventory"] == 6
    assert steps["purge"].did == {"purged": 3}
    states = {t.serial: t.state for t in world.vault.list_tokens()}
    assert [states[s] for s in serials] == [TokenState.SECRET_PURGED] * 3 + [
        TokenState.REGISTERED
    ] * 3
    second = run_cycle(world.vault, sink)
    steps = {step.name: step for step in second.steps}
    assert steps["entra_sync"].did["delivered"] == 0
    assert steps["purge"].did == {"purged": 0}
    purged = [r["serial"] for r in world.vault.export_audit(action="token.secret_purged")]
    assert sorted(purged) == sorted(serials[:3])
    audit = world.audit_text()
    for seed in world.seeds.values():
        assert seed.hex() not in audit


def test_graph_failing_is_an_alert_and_the_other_steps_still_run(
    any_world: EntraWorld, tmp_path: Path
) -> None:
    world = any_world
    _self_service(world, stock=2, taken=0)
    alert_file = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(alert_file)), world.vault)
    world.fake.fail_next(1, status=500, path_contains=DEVICES)

    result = run_cycle(world.vault, sink)

    assert [step.name for step in result.failed] == ["entra_sync"]
    assert "(500 generalException" in result.failed[0].error
    assert {s.name for s in result.steps if not s.failed} == {
        "purge",
        "undelivered_warning",
        "audit_chain",
    }
    alerts = [json.loads(line) for line in alert_file.read_text().splitlines()]
    assert [(a["event"], a["step"]) for a in alerts] == [("housekeeping.step_failed", "entra_sync")]
    (cycle,) = world.vault.export_audit(action=records.CYCLE_ACTION)
    assert cycle["details"]["failed"] == ["entra_sync"]
    assert cycle["details"]["steps"]["entra_sync"] == {"error": result.failed[0].error}


def test_the_housekeeping_command_prints_a_line_per_step_and_fails_with_graph(
    world: EntraWorld, tmp_path: Path
) -> None:
    _self_service(world, stock=2, taken=1)
    alert_file = tmp_path / "alerts.jsonl"
    world.env["OATHDESK_ALERTS"] = str(alert_file)

    done = world.cli("housekeeping")

    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "entra_sync",
        "purge",
        "undelivered_warning",
        "audit_chain",
    ]
    assert "delivered 1" in lines[0]
    world.fake.fail_next(1, status=500, path_contains=DEVICES)

    failed = world.cli("housekeeping")

    assert failed.returncode == 1
    assert failed.stdout.splitlines()[0].startswith("entra_sync: failed: ")
    assert failed.stdout.splitlines()[1].startswith("purge: purged ")
    assert_one_line_error(failed)
    assert "1 housekeeping step(s) failed (entra_sync)" in failed.stderr
    events = [json.loads(line)["event"] for line in alert_file.read_text().splitlines()]
    assert events == ["housekeeping.step_failed"]
    as_json = world.cli("housekeeping", "--json")
    assert json.loads(as_json.stdout)["failed"] == []
