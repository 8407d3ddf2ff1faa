"""Emergency codes through the real CLI: identity check first, codes equal oathtool's, limits,
four-eyes, state rules, one audit record per reveal, and no code when the audit write fails."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from oathdesk.otp import step_at, totp
from oathdesk.platform_io import login_name
from oathdesk.seed import encode_base32, parse_seed
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import Actor, NewToken
from oathdesk.vault.vault import Vault
from tests.conftest import CliResult, RunCli, assert_one_line_error
from tests.vault_fixtures import cli_env, fail_audit_inserts
from tests.window_codes import code_absent_from_window

SECRET = bytes(range(50, 70))
B32 = encode_base32(SECRET)
UPN = "helga@contoso.com"
SERIAL = "86596120001"
CHECK = ["--method", "callback", "--ticket", "INC-4711"]


def oathtool_at(at: float, steps_ahead: int = 0) -> str:
    stamp = datetime.fromtimestamp(at + steps_ahead * 30, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return subprocess.run(
        ["oathtool", "--totp", "-b", f"--now={stamp}", "-"],
        input=B32,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def env(location: VaultLocation, master_key: MasterKey, tmp_path: Path) -> dict[str, str]:
    """A vault with two users and their tokens (one shipped, one registered), made through the
    library as the CLI's own commands would make it: eight CLI processes cost each test several
    seconds of start-up, and those commands have tests of their own. The reveals below go
    through the CLI."""
    actor = Actor(f"local:{login_name()}", "admin")
    vault = Vault.create(location, master_key, actor)
    try:
        vault.add_user(actor, UPN, phone="+41790000000")
        vault.add_user(actor, "olaf@contoso.com", phone="+41790000002")
        for serial, upn, secret in (
            (SERIAL, UPN, SECRET),
            ("86596120002", "olaf@contoso.com", bytes(20)),
        ):
            token = NewToken(
                serial, "Token2", "programmable", TokenKind.PROGRAMMABLE, secret, upn=upn
            )
            vault.add_token(actor, token, source="cli")
        vault.move(actor, SERIAL, TokenState.REGISTERED)
        vault.move(actor, SERIAL, TokenState.SHIPPED, carrier="DHL", tracking="JD1")
        vault.move(actor, "86596120002", TokenState.REGISTERED)
    finally:
        vault.close()
    return {**cli_env(location), "OATHDESK_ALERTS": str(tmp_path / "alerts.jsonl")}


def reveal(
    cli: RunCli, env: dict[str, str], *extra: str, channel: str = "phone", stdin: str | None = None
) -> CliResult:
    return cli("reveal", UPN, *CHECK, "--channel", channel, "--json", *extra, env=env, input=stdin)


def test_no_verification_record_no_code(env: dict[str, str], cli: RunCli) -> None:
    missing = cli("reveal", UPN, "--channel", "phone", env=env)
    assert_one_line_error(missing)
    assert "--method" in missing.stderr
    no_ticket = cli(
        "reveal", UPN, "--method", "callback", "--ticket", " ", "--channel", "phone", env=env
    )
    assert_one_line_error(no_ticket)
    assert "ticket reference" in no_ticket.stderr
    vague = cli("reveal", UPN, "--method", "other", "--ticket", "T", "--channel", "chat", env=env)
    assert_one_line_error(vague)
    assert "--note" in vague.stderr
    audit = cli("audit", "export", "--action", "code.revealed", env=env)
    assert audit.stdout == ""


@pytest.mark.parametrize(("profile", "steps"), [("entra", 2), ("legacy", 15)])
def test_codes_equal_oathtool_and_accepted_until_follows_the_profile(
    env: dict[str, str], cli: RunCli, profile: str, steps: int
) -> None:
    assert cli("settings", "set", "acceptance_profile", profile, env=env).returncode == 0
    result = reveal(cli, env, channel="email")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    at = payload["at"]
    assert payload["serial"] == SERIAL
    assert payload["current"]["code"] == oathtool_at(at)
    assert payload["longest"]["code"] == oathtool_at(at, steps)
    assert payload["longest"]["step_offset"] == steps
    assert payload["recommended"] == "longest"
    step_start = int(at) - int(at) % 30
    assert datetime.fromisoformat(payload["current"]["accepted_until"]) == datetime.fromtimestamp(
        step_start + (steps + 1) * 30, UTC
    )
    assert datetime.fromisoformat(payload["longest"]["accepted_until"]) == datetime.fromtimestamp(
        step_start + (2 * steps + 1) * 30, UTC
    )
    text = cli("reveal", UPN, *CHECK, "--channel", "phone", env=env)
    assert f"{payload['current']['code'][:3]} " in text.stdout or "read out now" in text.stdout
    assert B32 not in text.stdout + text.stderr


def test_accepted_until_days_away_names_the_day_the_zone_and_days(
    env: dict[str, str], cli: RunCli
) -> None:
    """Under entra-activation a code stays accepted for days: the date, the zone's name and a
    duration in days and hours, not "20:11:00 (in 2880 min 14 s)" (issue 13, item 13)."""
    assert cli("settings", "set", "acceptance_profile", "entra-activation", env=env).returncode == 0
    zurich = {**env, "TZ": "Europe/Zurich"}
    before = datetime.now(UTC)
    text = cli("reveal", UPN, *CHECK, "--channel", "phone", env=zurich)
    after = datetime.now(UTC)
    assert text.returncode == 0, text.stderr
    lines = {line.split(":")[0]: line for line in text.stdout.splitlines()}
    # The current code is accepted 2,880 steps after its own (1 day and 0 to 30 s from now),
    # the longest-valid one 2,880 steps after the furthest (2 days and 0 to 30 s).
    for label, days in (("read out now", 1), ("longest-valid", 2)):
        line = lines[label]
        days_later = {
            (moment + timedelta(days=days)).astimezone(ZoneInfo("Europe/Zurich")).date()
            for moment in (before, after + timedelta(seconds=30))
        }
        assert re.search(
            rf"accepted until ({'|'.join(map(str, days_later))}) \d\d:\d\d:\d\d CES?T "
            rf"\(in {days} d 0 h 00 min\)$",
            line,
        ), line


def test_reveal_json_carries_the_apis_fields_in_its_format(
    env: dict[str, str], cli: RunCli
) -> None:
    """`reveal --json` has the API's shown_from/shown_until/accepted_until, as UTC ISO with Z."""
    from oathdesk.web.api.reveal import CodeOut

    result = reveal(cli, env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    step_start = int(payload["at"]) - int(payload["at"]) % 30
    for kind in ("current", "longest"):
        item = payload[kind]
        assert set(CodeOut.model_fields) <= set(item)
        offset = item["step_offset"]
        begins = datetime.fromtimestamp(step_start + offset * 30, UTC)
        ends = begins + timedelta(seconds=30)
        # the API's (pydantic's) rendering of the same moments
        api = CodeOut(
            code=item["code"],
            step_offset=offset,
            shown_from=begins,
            shown_until=ends,
            accepted_until=datetime.fromisoformat(item["accepted_until"]),
        ).model_dump(mode="json")
        assert {key: item[key] for key in api} == api
        assert item["shown_from"].endswith("Z")


def test_each_reveal_is_one_audit_record(env: dict[str, str], cli: RunCli) -> None:
    before = len(cli("audit", "export", env=env).stdout.splitlines())
    assert reveal(cli, env, "--note", "called back on file number").returncode == 0
    records = [json.loads(line) for line in cli("audit", "export", env=env).stdout.splitlines()]
    assert len(records) == before + 1
    last = records[-1]
    assert last["action"] == "code.revealed"
    assert (last["upn"], last["serial"]) == (UPN, SERIAL)
    details = last["details"]
    assert details["verification"] == "callback"
    assert details["ticket"] == "INC-4711"
    assert details["channel"] == "phone"
    assert details["step_offsets"] == [0, 2]
    line = json.dumps(last)
    for code in (oathtool_at(datetime.now(UTC).timestamp() + d * 30) for d in range(-2, 4)):
        assert code not in line  # codes are never written to the audit log
    assert cli("audit", "verify", env=env).returncode == 0


def test_limits_refuse_and_alert(env: dict[str, str], cli: RunCli, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[str] = []

    class Collect(Message):
        def handle_message(self, message: object) -> None:
            received.append(str(message))

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail_env = {
            **env,
            "OATHDESK_SMTP_HOST": "127.0.0.1",
            "OATHDESK_SMTP_PORT": str(port),
            "OATHDESK_ALERT_TO": "security@contoso.com",
        }
        for _ in range(3):
            assert reveal(cli, mail_env).returncode == 0
        refused = reveal(cli, mail_env)
    finally:
        controller.stop()
    assert_one_line_error(refused)
    assert "3 codes in 24 hours" in refused.stderr
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["event"] for a in alerts] == ["reveal.limit_reached"]
    assert alerts[0]["upn"] == UPN
    assert alerts[0]["operator"].startswith("local:")
    assert len(received) == 1
    assert "reveal.limit_reached" in received[0]
    assert (
        "limit_reached"
        in cli("audit", "export", "--action", "reveal.limit_reached", env=env).stdout
    )
    # The per-operator limit: one more user, and the operator's own ceiling.
    assert cli("settings", "set", "reveal_limit_per_operator", "3", env=env).returncode == 0
    other = cli("reveal", "olaf@contoso.com", *CHECK, "--channel", "chat", env=env)
    assert_one_line_error(other)
    assert "you have revealed 3 codes" in other.stderr


def test_four_eyes(env: dict[str, str], cli: RunCli) -> None:
    password = "a good long password"
    added = cli(
        "operator", "add", "anna", "--role", "helpdesk", "--password-stdin", input=password, env=env
    )
    secret = parse_seed(added.stdout.strip().splitlines()[-1]).secret
    assert cli("settings", "set", "four_eyes", "true", env=env).returncode == 0
    alone = reveal(cli, env)
    assert_one_line_error(alone)
    assert "four-eyes" in alone.stderr
    code = totp(secret, datetime.now(UTC).timestamp())
    approved = reveal(cli, env, "--approver", "anna", stdin=f"{password}\n{code}\n")
    assert approved.returncode == 0, approved.stderr
    record = json.loads(
        cli("audit", "export", "--action", "code.revealed", env=env).stdout.splitlines()[-1]
    )
    assert record["details"]["approver"] == "anna"
    # not "000000": a code of none of the steps the sign-in may accept (+-1 around now or next)
    absent = code_absent_from_window(secret, step_at(datetime.now(UTC).timestamp()), 2, 2)
    wrong = reveal(cli, env, "--approver", "anna", stdin=f"{password}\n{absent}\n")
    assert_one_line_error(wrong)
    assert "sign-in refused" in wrong.stderr


def test_state_rules(env: dict[str, str], cli: RunCli) -> None:
    code = oathtool_at(datetime.now(UTC).timestamp())
    assert cli("verify", UPN, code, env=env).returncode == 0
    assert cli("token", "deliver", SERIAL, env=env).returncode == 0
    delivered = reveal(cli, env)
    assert_one_line_error(delivered)
    assert "--override-reason" in delivered.stderr
    assert reveal(cli, env, "--override-reason", "token broke today").returncode == 0
    assert cli("token", "purge", SERIAL, "--yes", env=env).returncode == 0
    purged = reveal(cli, env)
    assert_one_line_error(purged)
    assert "Temporary Access Pass" in purged.stderr
    assert cli("token", "lost", "86596120002", "--reason", "post", env=env).returncode == 0
    lost = cli("reveal", "olaf@contoso.com", *CHECK, "--channel", "phone", env=env)
    assert_one_line_error(lost)
    assert "lost or revoked" in lost.stderr


def test_helpdesk_role_only(vault: object, location: VaultLocation) -> None:
    from oathdesk.errors import PermissionDenied
    from oathdesk.services.alerts import AlertSettings, AlertSink
    from oathdesk.services.reveal import (
        Channel,
        IdentityCheck,
        RevealRequest,
        VerificationMethod,
        reveal_code,
    )
    from oathdesk.vault.vault import Actor, Vault

    assert isinstance(vault, Vault)
    request = RevealRequest(UPN, IdentityCheck(VerificationMethod.CALLBACK, "T1"), Channel.PHONE)
    with pytest.raises(PermissionDenied, match="may not reveal"):
        reveal_code(vault, Actor("audrey", "auditor"), request, AlertSink(AlertSettings()))


def test_no_code_when_the_audit_write_fails(
    location: VaultLocation, env: dict[str, str], cli: RunCli
) -> None:
    engine = sa.create_engine(location.database_url)
    with engine.begin() as conn:
        fail_audit_inserts(conn)
    engine.dispose()
    result = reveal(cli, env)
    assert result.returncode != 0
    assert result.stdout == ""
    assert oathtool_at(datetime.now(UTC).timestamp()) not in result.stderr
    assert "Traceback" not in result.stderr


def test_callback_needs_a_phone_on_file(env: dict[str, str], cli: RunCli) -> None:
    """A "called back" verification proves nothing without a number on file to call back on:
    refused in one line saying how to add it, audited as a refused reveal, no code (issue 16)."""
    olaf = "nils@contoso.com"
    for args, stdin in (
        (["user", "add", olaf], None),
        (
            ["token", "add", "--serial", "86596120003", "--user", olaf],
            encode_base32(bytes([9]) * 20),
        ),
        (["token", "registered", "86596120003"], None),
    ):
        assert cli(*args, input=stdin, env=env).returncode == 0
    refused = cli("reveal", olaf, *CHECK, "--channel", "phone", "--json", env=env)
    assert_one_line_error(refused)
    assert f"oathdesk user edit {olaf} --phone" in refused.stderr
    assert refused.stdout == ""
    audit = cli("audit", "export", "--user", olaf, env=env)
    records = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [r["action"] for r in records if r["action"].startswith(("code.", "reveal."))] == [
        "reveal.refused"
    ]
    (record,) = [r for r in records if r["action"] == "reveal.refused"]
    assert record["details"]["verification"] == "callback"
    assert record["details"]["ticket"] == "INC-4711"
    # Another method needs no number; with the number added, a callback reveals.
    other = cli(
        "reveal", olaf, "--method", "manager", "--ticket", "T1", "--channel", "phone", env=env
    )
    assert other.returncode == 0, other.stderr
    assert cli("user", "edit", olaf, "--phone", "+41790000001", env=env).returncode == 0
    called = cli("reveal", olaf, *CHECK, "--channel", "phone", env=env)
    assert called.returncode == 0, called.stderr
