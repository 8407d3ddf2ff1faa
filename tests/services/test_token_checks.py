"""`oathdesk verify`, delivery confirmation and the drift report."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from oathdesk.services.token_checks import drift_report
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.vault import NewToken, Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault_fixtures import ADMIN, cli_env

SECRET = bytes(range(90, 110))
UPN = "helga@contoso.com"


def code_at(at: float) -> str:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return subprocess.run(["oathtool", "--totp", f"--now={stamp}", "-"], input=SECRET.hex(),
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


@pytest.fixture
def shipped(vault: Vault) -> Vault:
    vault.add_user(ADMIN, UPN)
    vault.add_token(
        ADMIN, NewToken("T1", "Token2", "C302-i", TokenKind.PROGRAMMABLE, SECRET, upn=UPN)
    )
    vault.move(ADMIN, "T1", TokenState.REGISTERED)
    vault.move(ADMIN, "T1", TokenState.SHIPPED, carrier="DHL", tracking="1")
    return vault


def test_verify_records_drift_and_gates_delivery(
    shipped: Vault, location: VaultLocation, cli: RunCli
) -> None:
    del shipped
    env = cli_env(location)
    refused = cli("token", "deliver", "T1", env=env)
    assert_one_line_error(refused)
    assert "oathdesk verify" in refused.stderr
    now = datetime.now(UTC).timestamp()
    slow = cli("verify", UPN, code_at(now - 150), code_at(now - 120), "--json", env=env)
    assert slow.returncode == 0, slow.stderr
    payload = json.loads(slow.stdout)
    assert -180 <= payload["drift_seconds"] <= -120  # whole steps; a boundary may pass meanwhile
    assert payload["inside_window"] is False
    outside = cli("token", "deliver", "T1", env=env)
    assert_one_line_error(outside)
    assert "outside the entra window" in outside.stderr
    good = cli("verify", UPN, code_at(datetime.now(UTC).timestamp()), env=env)
    assert "inside the entra sign-in window" in good.stdout
    assert cli("token", "deliver", "T1", env=env).returncode == 0
    assert cli("verify", UPN, "000000", "111111", env=env).returncode == 1


def test_drift_report_predicts_when_a_token_falls_out(shipped: Vault) -> None:
    token = shipped.get_token("T1")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with shipped.transaction() as conn:
        shipped.record_drift(conn, token, 0, measured_at=start)
        shipped.record_drift(conn, token, 30, measured_at=start.replace(month=4))  # 90 days later
    rows = drift_report(shipped)
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "near"  # 30 s of a 60 s window
    assert row.rate_seconds_per_day == pytest.approx(30 / 90)
    assert row.predicted_outside is not None
    assert row.predicted_outside.date() == datetime(2026, 6, 30, tzinfo=UTC).date()
    with shipped.transaction() as conn:
        shipped.record_drift(conn, token, 90, measured_at=start.replace(month=7))
    assert drift_report(shipped)[0].status == "outside"
