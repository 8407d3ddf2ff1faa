"""Housekeeping with an Entra connection, against the fake Graph (real HTTPS, a real SQLite file
or PostgreSQL database): the sync step learns what users did and the purge erases their seeds
in the same cycle; Graph failing (500) is an alert (the alert file) while the other steps run;
`oathdesk housekeeping` says so in one line per step and fails; what a sync leaves for a person
is alerted once per finding, and an alert that cannot be sent is tried again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import run_cycle
from oathdesk.vault import housekeeping as records
from oathdesk.vault.lifecycle import TokenState
from tests.conftest import assert_one_line_error
from tests.graph.entra_helpers import ADMIN, EntraWorld, pg_world, world
from tests.graph.fake_graph.helpers import DEVICES
from tests.graph.test_entra_sync import DOMAIN, _add_stock, _b32, _code

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
        "entra_findings",
        "purge",
        "undelivered_warning",
        "audit_chain",
        "token_counts",
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
        "entra_findings",
        "purge",
        "undelivered_warning",
        "audit_chain",
        "token_counts",
    ]
    assert "delivered 1" in lines[0]
    world.fake.fail_next(1, status=500, path_contains=DEVICES)

    failed = world.cli("housekeeping")

    assert failed.returncode == 1
    assert failed.stdout.splitlines()[0].startswith("entra_sync: failed: ")
    assert failed.stdout.splitlines()[2].startswith("purge: purged ")
    assert_one_line_error(failed)
    assert "1 housekeeping step(s) failed (entra_sync)" in failed.stderr
    events = [json.loads(line)["event"] for line in alert_file.read_text().splitlines()]
    assert events == ["housekeeping.step_failed"]
    as_json = world.cli("housekeeping", "--json")
    assert json.loads(as_json.stdout)["failed"] == []


def _events(path: Path, event: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines()]
    return [alert for alert in found if alert["event"] == event]


def test_what_a_sync_leaves_for_a_person_is_alerted_once(
    any_world: EntraWorld, tmp_path: Path
) -> None:
    """Nobody watches a cycle: a difference it cannot apply (a token in Entra the vault never
    had) reaches the alert channel and the audit log, in one alert a cycle, each finding once."""
    world = any_world
    _self_service(world, stock=2, taken=0)
    world.fake.add_device("77770001", _b32(os.urandom(20)))
    world.fake.add_device("77770002", _b32(os.urandom(20)))
    alert_file = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(alert_file)), world.vault)

    first = run_cycle(world.vault, sink)

    assert not first.failed, [s.line() for s in first.steps]
    steps = {step.name: step for step in first.steps}
    assert steps["entra_findings"].did == {"for_a_person": 2, "alerted": 2}
    (alert,) = _events(alert_file, "entra.for_a_person")
    assert alert["count"] == 2
    assert alert["kinds"] == {"unknown_to_vault": 2}
    assert sorted(f["serial"] for f in alert["findings"]) == ["77770001", "77770002"]
    assert "oathdesk entra pull" in alert["see"]

    second = run_cycle(world.vault, sink)  # the same differences: no second alert

    steps = {step.name: step for step in second.steps}
    assert steps["entra_findings"].did == {"for_a_person": 2, "alerted": 0}
    assert len(_events(alert_file, "entra.for_a_person")) == 1
    world.fake.add_device("77770003", _b32(os.urandom(20)))

    run_cycle(world.vault, sink)

    alerts = _events(alert_file, "entra.for_a_person")
    assert len(alerts) == 2
    assert [(f["kind"], f["serial"]) for f in alerts[1]["findings"]] == [
        ("unknown_to_vault", "77770003")
    ]
    alerted = world.vault.export_audit(action=records.FINDING_ALERTED_ACTION)
    assert sorted((r["serial"], r["details"]["kind"]) for r in alerted) == [
        ("77770001", "unknown_to_vault"),
        ("77770002", "unknown_to_vault"),
        ("77770003", "unknown_to_vault"),
    ]
    cycles = world.vault.export_audit(action=records.CYCLE_ACTION)
    assert [c["details"]["steps"]["entra_findings"]["alerted"] for c in cycles] == [2, 0, 1]


def test_a_findings_alert_that_cannot_be_sent_fails_its_step_and_is_tried_again(
    world: EntraWorld, tmp_path: Path
) -> None:
    _self_service(world, stock=1, taken=0)
    world.fake.add_device("77770001", _b32(os.urandom(20)))
    unwritable = tmp_path / "no-such-folder" / "alerts.jsonl"

    result = run_cycle(world.vault, AlertSink(AlertSettings(str(unwritable)), world.vault))

    (findings,) = [s for s in result.steps if s.name == "entra_findings"]
    assert "sync finding(s) for a person was not sent" in findings.error
    assert "next cycle" in findings.error
    assert not [s for s in result.steps if s.failed and s.name != "entra_findings"]
    failed = world.vault.export_audit(action="alert.failed")
    assert "entra.for_a_person" in [r["details"]["event"] for r in failed]
    assert world.vault.export_audit(action=records.FINDING_ALERTED_ACTION) == []
    alert_file = tmp_path / "alerts.jsonl"

    again = run_cycle(world.vault, AlertSink(AlertSettings(str(alert_file)), world.vault))

    (findings,) = [s for s in again.steps if s.name == "entra_findings"]
    assert findings.did == {"for_a_person": 1, "alerted": 1}
    (alert,) = _events(alert_file, "entra.for_a_person")
    assert alert["findings"] == [{"kind": "unknown_to_vault", "serial": "77770001", "upn": ""}]
