"""`oathdesk code`, `codes` and `check` through the real console script, checked by oathtool."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime

import pytest

from oathdesk.seed import encode_base32
from tests.conftest import RunCli, assert_one_line_error
from tests.window_codes import code_outside_window

SECRET = encode_base32(bytes(range(40, 60)))
AT = 1_800_000_015


def oathtool(*args: str, secret: str = SECRET) -> list[str]:
    proc = subprocess.run(
        ["oathtool", "--base32", *args, "-"],
        input=secret,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.split()


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_code_prints_the_code_alone(cli: RunCli) -> None:
    result = cli("code", SECRET, "--at", str(AT))
    assert result.returncode == 0
    assert result.stdout == oathtool("--totp", f"--now={stamp(AT)}")[0] + "\n"
    assert result.stderr == ""


def test_code_now_matches_oathtool(cli: RunCli) -> None:
    before = oathtool("--totp")
    result = cli("code", SECRET)
    after = oathtool("--totp")
    assert result.stdout.strip() in before + after


@pytest.mark.parametrize(
    ("options", "oathtool_options"),
    [
        (["--algorithm", "SHA256"], ["--totp=sha256"]),
        (["--algorithm=sha512", "--digits", "8"], ["--totp=sha512", "--digits=8"]),
        (["--period", "60"], ["--totp", "--time-step-size=60s"]),
    ],
)
def test_code_options(cli: RunCli, options: list[str], oathtool_options: list[str]) -> None:
    result = cli("code", SECRET, "--at", "2027-01-15T10:00:07Z", *options)
    at = datetime(2027, 1, 15, 10, 0, 7, tzinfo=UTC).timestamp()
    assert result.stdout.strip() == oathtool(*oathtool_options, f"--now={stamp(at)}")[0]


def test_secret_from_stdin_and_environment(cli: RunCli) -> None:
    expected = oathtool("--totp", f"--now={stamp(AT)}")[0]
    assert cli("code", "-", "--at", str(AT), input=SECRET + "\n").stdout.strip() == expected
    from_env = cli("code", "--at", str(AT), env={"OATHDESK_SECRET": SECRET})
    assert from_env.stdout.strip() == expected


def test_otpauth_uri_parameters_apply(cli: RunCli) -> None:
    uri = f"otpauth://totp/x:y?secret={SECRET}&algorithm=SHA256&digits=8&period=60"
    result = cli("code", "-", "--at", str(AT), input=uri)
    expected = oathtool("--totp=sha256", "--digits=8", "--time-step-size=60s", f"--now={stamp(AT)}")
    assert result.stdout.strip() == expected[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["code", "86596120001"], "serial number"),
        (["code", SECRET, "--algorithm", "md5"], "use sha1, sha256 or sha512"),
        (["code", SECRET, "--at", "yesterday"], "cannot read the time"),
        (["code", SECRET, "--digits", "4"], "digits must be from 6 to 10"),
        (["code"], "no secret given"),
        (["code", "JBSWY3DPEHPK3PX0JBSWY"], "0 is not base32"),
        (["codes", SECRET, "--window", "custom"], "custom profile needs"),
        (["check", SECRET], "give the code the token shows"),
        (["codes", SECRET, "--bogus"], "No such option"),
    ],
)
def test_errors_are_one_line_without_the_secret(cli: RunCli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert_one_line_error(result)
    assert message in result.stderr
    assert SECRET not in result.stderr


def test_fast_path_and_click_path_agree(cli: RunCli) -> None:
    # "--at=X" goes through the fast path; "-h"-free unusual spellings fall back to click.
    fast = cli("code", SECRET, f"--at={AT}")
    assert fast.stdout == cli("code", "--at", str(AT), SECRET).stdout
    assert "Print the current code" in cli("code", "--help").stdout


def test_codes_json(cli: RunCli) -> None:
    result = cli("codes", SECRET, "--at", str(AT), "--past", "2", "--future", "3", "--json")
    payload = json.loads(result.stdout)
    assert payload["profile"] == "entra"
    offsets = [item["step_offset"] for item in payload["codes"]]
    assert offsets == [-2, -1, 0, 1, 2, 3]
    first_step_start = AT - AT % 30 - 60
    expected = oathtool("--totp", f"--now={stamp(first_step_start)}", "--window=5")
    assert [item["code"] for item in payload["codes"]] == expected
    current = payload["codes"][2]
    assert current["shown_from"] == datetime.fromtimestamp(AT - 15, UTC).isoformat()
    assert current["accepted_until"] == datetime.fromtimestamp(AT - 15 + 90, UTC).isoformat()


@pytest.mark.parametrize(("profile", "steps"), [("entra", 2), ("legacy", 15)])
def test_codes_longest(cli: RunCli, profile: str, steps: int) -> None:
    result = cli("codes", SECRET, "--at", str(AT), "--longest", "--window", profile, "--json")
    payload = json.loads(result.stdout)
    assert payload["step_offset"] == steps
    assert payload["code"] == oathtool("--totp", f"--now={stamp(AT + steps * 30)}")[0]
    until = AT - 15 + (2 * steps + 1) * 30
    assert payload["accepted_until"] == datetime.fromtimestamp(until, UTC).isoformat()
    plain = cli("codes", SECRET, "--at", str(AT), "--longest", "--window", profile)
    assert plain.stdout.strip() == payload["code"]
    assert "accepted until" in plain.stderr


def test_accepted_until_days_away_names_the_day_the_zone_and_days(cli: RunCli) -> None:
    """entra-activation: the date, the zone's name and days/hours, wherever `codes` says when a
    code stops being accepted (issue 13, item 13). AT is 2027-01-15 08:00:15 UTC."""
    zurich = {"TZ": "Europe/Zurich"}
    args = ("codes", SECRET, "--at", str(AT), "--window", "entra-activation")
    longest = cli(*args, "--longest", env=zurich)
    assert longest.returncode == 0, longest.stderr
    assert longest.stderr.startswith(
        "accepted until 2027-01-17 09:00:30 CET (in 2 d 0 h 00 min), 2027-01-17 08:00:30 UTC, "
    ), longest.stderr
    table = cli(*args, "--past", "0", "--future", "0", env=zurich)
    assert table.returncode == 0, table.stderr
    assert "2027-01-16 09:00:30 CET" in table.stdout
    # on the same day: the time and the zone, no date
    near = cli("codes", SECRET, "--at", str(AT), "--longest", env=zurich)
    assert near.stderr.startswith("accepted until 09:02:30 CET (in 2 min 15 s), 08:02:30 UTC, "), (
        near.stderr
    )


def test_codes_table(cli: RunCli) -> None:
    result = cli("codes", SECRET, "--at", str(AT), "--past", "1", "--future", "1")
    assert result.returncode == 0
    for code in oathtool("--totp", f"--now={stamp(AT - 30)}", "--window=2"):
        assert code in result.stdout
    assert "entra" in result.stdout


@pytest.mark.parametrize("offset", [-7, 0, 3])
def test_check_reports_offset_and_drift(cli: RunCli, offset: int) -> None:
    token_time = AT + offset * 30
    code, following = oathtool("--totp", f"--now={stamp(token_time)}", "--window=1")
    result = cli("check", SECRET, code, following, "--at", str(AT), "--json")
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    assert payload["step_offset"] == offset
    assert payload["drift_seconds"] == offset * 30
    assert payload["confirmed_by_next_code"] is True
    assert payload["inside_window"] is (abs(offset) <= 2)
    text = cli("check", code, "--at", str(AT), env={"OATHDESK_SECRET": SECRET})
    assert f"drift {offset * 30:+d} s" in text.stdout


def test_check_no_match_exits_1(cli: RunCli) -> None:
    # A code from 3 days on, or the nearest later one that does not recur by chance within the
    # +-1 day search; a few moments (each a process), the choice itself is tested at 1,000.
    for at in (AT, AT + 12_345, AT + 987_654):
        far, _ = code_outside_window(
            bytes(range(40, 60)), at // 30, 2880, 2880, side=1, start=3 * 2880
        )
        result = cli("check", SECRET, far, "--at", str(at))
        assert result.returncode == 1
        assert "no match" in result.stdout


def test_cold_start_is_fast(cli: RunCli) -> None:
    """A sanity bound only; the real comparison with `python -c pass` is in make bench."""
    start = time.perf_counter()
    cli("code", SECRET)
    assert time.perf_counter() - start < 5


def test_demo_runs_the_tour(cli: RunCli) -> None:
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    assert "$ oathdesk code" in result.stdout
    assert "match at step offset -3: drift -90 s" in result.stdout
    assert "error" not in result.stderr
