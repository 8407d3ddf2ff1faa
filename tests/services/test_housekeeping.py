"""Housekeeping cycles on a real SQLite file and a real PostgreSQL database: every step runs, a
failed step is an alert (the alert file, a real JSON-lines file) and does not stop the others,
each cycle is one audit record, a slot's cycle runs once, and a second cycle does nothing twice.
(A failing Entra sync against the fake Graph: tests/graph/test_housekeeping_sync.py; servers:
tests/web/test_serve_housekeeping.py.)"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oathdesk.errors import Conflict, InvalidInput, NotFound
from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import (
    DONE_ALREADY,
    HOUSEKEEPING_ACTOR,
    LEASE_JOB,
    STEPS,
    Context,
    Schedule,
    parse_interval,
    run_cycle,
    slot_of,
)
from oathdesk.services.overview import overview
from oathdesk.vault import housekeeping as records
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import NewToken, utc_now
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN, fail_audit_inserts

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
HOUR = timedelta(hours=1)


def _tokens(vault: Vault) -> dict[str, bytes]:
    """Two tokens delivered now and two assigned now (serial -> seed)."""
    seeds = {f"HK{n:04d}": os.urandom(20) for n in range(1, 5)}
    vault.add_user(ADMIN, ALICE)
    vault.add_user(ADMIN, BOB)
    vault.add_tokens(
        ADMIN,
        [
            NewToken(serial, "Token2", "C202", TokenKind.CLASSIC, secret=seed, upn=upn)
            for (serial, seed), upn in zip(seeds.items(), (ALICE, BOB, ALICE, BOB), strict=True)
        ],
    )
    for serial in ("HK0001", "HK0002"):
        vault.move(ADMIN, serial, TokenState.REGISTERED)
        vault.move(ADMIN, serial, TokenState.DELIVERED)
    return seeds


def _alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _later(days: int) -> datetime:
    """A moment when the retention (14 days) and the warning period (30 days) are over."""
    return utc_now() + timedelta(days=days)


def test_a_cycle_purges_warns_once_and_is_one_audit_record(vault: Vault, tmp_path: Path) -> None:
    seeds = _tokens(vault)
    alert_file = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(alert_file)), vault)
    moment = _later(31)

    first = run_cycle(vault, sink, now=lambda: moment)

    assert [step.name for step in first.steps] == [name for name, _ in STEPS]
    by_name = {step.name: step for step in first.steps}
    assert by_name["entra_sync"].skipped.startswith("no Entra connection")
    assert by_name["purge"].did == {"purged": 2}
    assert by_name["undelivered_warning"].did == {"late": 2, "warned": 2}
    assert not first.failed
    assert {t.serial: t.state for t in vault.list_tokens()} == {
        "HK0001": TokenState.SECRET_PURGED,
        "HK0002": TokenState.SECRET_PURGED,
        "HK0003": TokenState.ASSIGNED,
        "HK0004": TokenState.ASSIGNED,
    }
    warnings = [a for a in _alerts(alert_file) if a["event"] == "tokens.undelivered"]
    assert len(warnings) == 1
    assert sorted(warnings[0]["serials"]) == ["HK0003", "HK0004"]

    second = run_cycle(vault, sink, now=lambda: moment + HOUR)

    steps = {step.name: step.did for step in second.steps}
    assert steps["purge"] == {"purged": 0}
    assert steps["undelivered_warning"] == {"late": 2, "warned": 0}  # still late, not re-alerted
    assert len(_alerts(alert_file)) == 1
    cycles = vault.export_audit(action=records.CYCLE_ACTION)
    assert [c["seq"] for c in cycles] == [first.seq, second.seq]
    assert cycles[0]["actor"] == HOUSEKEEPING_ACTOR.name
    assert cycles[0]["details"]["steps"]["purge"] == {"purged": 2}
    # Each seed erased once, each late token warned once.
    purged = [r["serial"] for r in vault.export_audit(action="token.secret_purged")]
    assert sorted(purged) == ["HK0001", "HK0002"]
    warned = vault.export_audit(action=records.WARNED_ACTION)
    assert sorted((r["serial"], r["upn"]) for r in warned) == [("HK0003", ALICE), ("HK0004", BOB)]
    text = json.dumps(cycles) + alert_file.read_text()
    for seed in seeds.values():
        assert seed.hex() not in text


def test_a_failed_step_is_an_alert_and_the_others_still_run(vault: Vault, tmp_path: Path) -> None:
    _tokens(vault)
    alert_file = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(alert_file)), vault)

    def refused(_context: Context) -> dict[str, Any]:
        raise NotFound("the thing is not there; add it first")

    def buggy(_context: Context) -> dict[str, Any]:
        raise RuntimeError("a message that might quote a row: JBSWY3DPEHPK3PXP")

    steps = (("first", refused), ("second", buggy), *STEPS)
    result = run_cycle(vault, sink, now=lambda: _later(31), steps=steps)

    assert [s.name for s in result.failed] == ["first", "second"]
    assert result.steps[0].error == "the thing is not there; add it first"
    assert result.steps[1].error.startswith("unexpected RuntimeError")
    assert {s.name: s.did for s in result.steps[2:]}["purge"] == {"purged": 2}
    failed_alerts = [a for a in _alerts(alert_file) if a["event"] == "housekeeping.step_failed"]
    assert [a["step"] for a in failed_alerts] == ["first", "second"]
    (cycle,) = vault.export_audit(action=records.CYCLE_ACTION)
    assert cycle["details"]["failed"] == ["first", "second"]
    assert cycle["details"]["steps"]["first"] == {"error": "the thing is not there; add it first"}
    assert "JBSWY3DPEHPK3PXP" not in json.dumps(cycle) + alert_file.read_text()


def test_an_alert_that_cannot_be_sent_fails_the_step_and_is_audited(
    vault: Vault, tmp_path: Path
) -> None:
    """The warning is recorded only once it went out: the next cycle tries it again."""
    _tokens(vault)
    unwritable = tmp_path / "no-such-folder" / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(unwritable)), vault)

    result = run_cycle(vault, sink, now=lambda: _later(31))

    (warning,) = [s for s in result.steps if s.name == "undelivered_warning"]
    assert "was not sent" in warning.error
    assert "next cycle" in warning.error
    assert vault.export_audit(action=records.WARNED_ACTION) == []
    assert vault.export_audit(action="alert.failed")
    sink = AlertSink(AlertSettings(str(tmp_path / "alerts.jsonl")), vault)
    again = run_cycle(vault, sink, now=lambda: _later(31))
    (warning,) = [s for s in again.steps if s.name == "undelivered_warning"]
    assert warning.did == {"late": 2, "warned": 2}


def test_a_slots_cycle_runs_once(vault: Vault) -> None:
    sink = AlertSink(AlertSettings(), vault)
    moment = datetime.fromtimestamp(1_800_000_000 + 10, tz=utc_now().tzinfo)

    ran = run_cycle(vault, sink, interval=HOUR, now=lambda: moment)
    again = run_cycle(vault, sink, interval=HOUR, now=lambda: moment + timedelta(minutes=30))
    next_slot = run_cycle(vault, sink, interval=HOUR, now=lambda: moment + HOUR)

    assert ran.ran
    assert ran.slot == slot_of(moment, HOUR)
    assert again.skipped == DONE_ALREADY
    assert next_slot.ran
    assert next_slot.slot == ran.slot + 1
    with vault.reading() as conn:
        assert records.cycles_per_slot(conn) == {ran.slot: 1, ran.slot + 1: 1}


def test_a_cycle_another_run_holds_is_skipped_by_a_server_and_refused_by_the_cli(
    vault: Vault,
) -> None:
    sink = AlertSink(AlertSettings(), vault)
    with vault.lease(LEASE_JOB, ADMIN, host="elsewhere", ttl=HOUR):
        skipped = run_cycle(vault, sink, interval=HOUR, host="here")
        assert not skipped.ran
        assert "already running" in skipped.skipped
        with pytest.raises(Conflict, match="already running") as refused:
            run_cycle(vault, sink, host="here")
        assert "\n" not in str(refused.value)
    assert run_cycle(vault, sink, interval=HOUR).ran
    assert len(vault.export_audit(action=records.CYCLE_ACTION)) == 1


def test_the_schedule_outlives_a_cycle_that_cannot_be_recorded(
    vault: Vault, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The vault refuses every audit record: each cycle fails as a whole; the thread logs it,
    alerts, and tries again (it does not die)."""
    alert_file = tmp_path / "alerts.jsonl"
    with vault.transaction() as conn:
        fail_audit_inserts(conn)
    schedule = Schedule(vault, AlertSink(AlertSettings(str(alert_file)), vault), timedelta(1))
    with caplog.at_level(logging.ERROR, logger="oathdesk.housekeeping"):
        assert schedule.run_once() is None
        assert schedule.run_once() is None
    failures = [r for r in caplog.records if "housekeeping cycle failed" in r.getMessage()]
    assert len(failures) == 2
    assert [a["event"] for a in _alerts(alert_file)].count("housekeeping.cycle_failed") == 2


def test_the_schedule_logs_a_cycle_by_when_its_slot_began(
    vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    """The log line names the cycle by its slot's start, not by the slot's number (which an
    operator reading the log cannot place: "cycle 499018")."""
    moment = datetime(2026, 12, 5, 10, 41, 7, tzinfo=UTC)
    schedule = Schedule(vault, AlertSink(AlertSettings(), vault), HOUR, clock=lambda: moment)
    with caplog.at_level(logging.INFO, logger="oathdesk.housekeeping"):
        assert schedule.run_once() is not None
    (line,) = [r.getMessage() for r in caplog.records if "housekeeping cycle" in r.getMessage()]
    assert line.startswith("housekeeping cycle of 2026-12-05 10:00:00 UTC: "), line


def test_the_schedule_runs_each_slot_in_its_thread(vault: Vault) -> None:
    schedule = Schedule(vault, AlertSink(AlertSettings(), vault), timedelta(seconds=1))
    schedule.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with vault.reading() as conn:
                done = records.cycles_per_slot(conn)
            if len(done) >= 3:
                break
            time.sleep(0.1)
    finally:
        schedule.stop()
    assert len(done) >= 3
    assert set(done.values()) == {1}
    assert not any(t.name == "oathdesk-housekeeping" for t in threading.enumerate())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90s", 90), ("15m", 900), ("1h", 3600), (" 2D ", 172800), ("off", None)],
)
def test_intervals(text: str, seconds: int | None) -> None:
    interval = parse_interval(text)
    assert (interval.total_seconds() if interval else None) == seconds
    assert parse_interval("0") is None


@pytest.mark.parametrize("text", ["", "1x", "-5", "0s", "1.5h", "hourly"])
def test_a_wrong_interval_is_one_line_saying_what_to_write(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_interval(text)
    assert "\n" not in refused.value.message
    assert "15m, 1h" in refused.value.message


def test_a_server_whose_interval_changed_still_runs_its_slots(vault: Vault) -> None:
    """Slots of different intervals are different numbers (a 2 s slot's number is far above an
    hour's): after a restart from 2 s to hourly, the hour's cycle is not taken as done."""
    sink = AlertSink(AlertSettings(), vault)
    moment = datetime.fromtimestamp(1_800_000_000 + 100, tz=UTC)  # 100 s into an hour's slot
    assert run_cycle(vault, sink, interval=timedelta(seconds=2), now=lambda: moment).ran

    hourly = run_cycle(vault, sink, interval=HOUR, now=lambda: moment + timedelta(seconds=5))

    assert hourly.ran, hourly.skipped
    assert run_cycle(vault, sink, interval=HOUR, now=lambda: moment + timedelta(seconds=6)).skipped


def test_the_overview_figures_come_from_the_database(vault: Vault) -> None:
    """Tokens per state with the oldest entry, late tokens, seeds due and the last sync's
    view, on SQLite and PostgreSQL alike."""
    _tokens(vault)  # HK0001-2 delivered now, HK0003-4 assigned now
    with vault.unit_of_work(ADMIN) as work:
        work.audit(
            records.CYCLE_ACTION,
            details={"steps": {"entra_sync": {"inventory": 7, "differences": {"unknown": 2}}}},
        )
        work.audit(records.CYCLE_ACTION, details={"steps": {"entra_sync": {"error": "Graph: 500"}}})
        work.audit(records.CYCLE_ACTION, details={"steps": {"entra_sync": {"skipped": "off"}}})
    later = _later(31)

    figures = overview(vault, ADMIN, now=later)

    assert [(f.state, f.count) for f in figures.states] == [("assigned", 2), ("delivered", 2)]
    assert all(f.oldest_since is not None and f.oldest_since < later for f in figures.states)
    assert figures.total == 4
    assert figures.purge_due == 2
    assert figures.entra.error == "Graph: 500"  # the newest sync that ran, not the skipped one
    assert figures.entra.vault_in_entra == 2
    assert figures.late_total == 2
    assert [t.serial for t in figures.late] == ["HK0003", "HK0004"]
