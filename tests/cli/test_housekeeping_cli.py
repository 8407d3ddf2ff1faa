"""`oathdesk housekeeping` as a real process on a real SQLite file and a real PostgreSQL
database: a line per step, exit 1 with one error line when a step failed (an edited audit
record), a one-line refusal while another cycle holds the lease, and its take-over."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.services.housekeeping import LEASE_JOB
from oathdesk.vault import housekeeping as records
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.schema import audit_log
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault_fixtures import ADMIN, cli_env

STEP_NAMES = [
    "entra_sync",
    "entra_findings",
    "purge",
    "undelivered_warning",
    "audit_chain",
    "token_counts",
]


def test_a_cycle_prints_a_line_per_step(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    result = cli("housekeeping", env=cli_env(location))

    assert result.returncode == 0, result
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == STEP_NAMES
    assert result.stdout.splitlines()[0] == (
        "entra_sync: skipped: no Entra connection (`oathdesk entra login`)"
    )
    assert result.stderr == ""
    (cycle,) = vault.export_audit(action=records.CYCLE_ACTION)
    assert cycle["details"]["slot"] is None  # not a server's scheduled slot
    assert cycle["actor"] == "oathdesk:housekeeping"


def test_a_broken_chain_fails_the_command_with_one_error_line_and_an_alert(
    vault: Vault, location: VaultLocation, cli: RunCli, tmp_path: Path
) -> None:
    with vault.transaction() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 1).values(actor="mallory"))
    alerts = tmp_path / "alerts.jsonl"

    result = cli("housekeeping", env={**cli_env(location), "OATHDESK_ALERTS": str(alerts)})

    assert_one_line_error(result)
    assert result.returncode == 1
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert list(lines) == STEP_NAMES
    assert lines["purge"] == "purged 0"  # the steps before and after it ran
    assert lines["audit_chain"].startswith("failed: the audit chain is broken (1 problem(s)")
    assert "run `oathdesk audit verify`" in lines["audit_chain"]
    assert "1 housekeeping step(s) failed (audit_chain)" in result.stderr
    (alert,) = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert (alert["event"], alert["step"]) == ("housekeeping.step_failed", "audit_chain")


@pytest.mark.slow
def test_a_cycle_held_elsewhere_is_refused_in_one_line_and_can_be_taken_over(
    vault: Vault, location: VaultLocation, cli: RunCli
) -> None:
    env = cli_env(location)
    with vault.lease(LEASE_JOB, ADMIN, host="desk-7.contoso.com", ttl=timedelta(hours=1)):
        refused = cli("housekeeping", env=env)
        assert_one_line_error(refused)
        assert "`oathdesk housekeeping` is already running on this vault" in refused.stderr
        assert "--take-over-lease" in refused.stderr
        no_terminal = cli("housekeeping", "--take-over-lease", env=env)
        assert_one_line_error(no_terminal)
        assert "add --yes once you are sure it is" in no_terminal.stderr

        taken = cli("housekeeping", "--take-over-lease", "--yes", env=env)

    assert taken.returncode == 0, taken
    (record,) = vault.export_audit(action="lease.taken_over")
    assert record["details"]["job"] == LEASE_JOB
    assert record["details"]["from_host"] == "desk-7.contoso.com"
    (cycle,) = vault.export_audit(action=records.CYCLE_ACTION)
    assert "desk-7.contoso.com" in cycle["details"]["took_over"]
