"""oathdesk without its extra "nfc" (pyscard): a console-only server installs and runs, and the
commands that need a reader say in one line how to add it.

The quick tests hide pyscard from the commands (tests/no_nfc_sim first on PYTHONPATH); the slow
one builds the wheel and installs it into a fresh virtual environment with the locked versions
of its dependencies, which then lack pyscard as a server's would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from oathdesk.seed import encode_base32
from tests.conftest import OATHDESK, CliResult, assert_one_line_error
from tests.web.conftest import free_port
from tests.web.test_serve import read_banner

ROOT = Path(__file__).parent.parent
NO_NFC = Path(__file__).parent / "no_nfc_sim"
SECRET = bytes(range(90, 110))
UPN = "helga@contoso.com"
SERIAL = "60234567"
ADD_IT = "pip install 'oathdesk[nfc]'"


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OATHDESK_", "XDG_"))}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    return env


def run(command: Path, env: dict[str, str], *args: str, stdin: str = "") -> CliResult:
    result = subprocess.run(
        [str(command), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return CliResult(result.returncode, result.stdout, result.stderr)


def ok(command: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
    result = run(command, env, *args, stdin=stdin)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


@pytest.mark.parametrize(
    "args",
    [("burn", UPN), ("token", "info"), ("token", "resync", SERIAL)],
    ids=["burn", "token info", "token resync"],
)
def test_reader_commands_say_how_to_add_nfc(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = base_env(tmp_path)
    ok(OATHDESK, env, "init")
    ok(OATHDESK, env, "user", "add", UPN)
    ok(
        OATHDESK,
        env,
        "token",
        "add",
        "--serial",
        SERIAL,
        "--user",
        UPN,
        stdin=encode_base32(SECRET),
    )
    result = run(OATHDESK, {**env, "PYTHONPATH": str(NO_NFC)}, *args)
    assert_one_line_error(result)
    assert ADD_IT in result.stderr
    assert "libpcsclite-dev" in result.stderr  # what Linux needs to build it


def desk_commands_work(command: Path, env: dict[str, str], tmp_path: Path) -> None:
    """init, import, reveal and serve, as a console-only server runs them."""
    b32 = encode_base32(SECRET)
    ok(command, env, "init")
    source = tmp_path / "order.csv"
    source.write_text(
        "upn,serial number,secret key,timeinterval,manufacturer,model\n"
        f"{UPN},{SERIAL},{b32},30,Token2,C202\n"
    )
    assert "imported 1 classic token(s)" in ok(command, env, "import", str(source))
    ok(command, env, "token", "registered", SERIAL)
    ok(command, env, "user", "edit", UPN, "--phone", "+41790000000")  # the callback's number
    check = ("--method", "callback", "--ticket", "INC-1", "--channel", "phone", "--json")
    assert json.loads(ok(command, env, "reveal", UPN, *check))["serial"] == SERIAL
    port = free_port()
    process = subprocess.Popen(
        [str(command), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        read_banner(process, timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/signin", timeout=10).status_code == 200
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err


def test_console_commands_run_without_pyscard(tmp_path: Path) -> None:
    desk_commands_work(OATHDESK, {**base_env(tmp_path), "PYTHONPATH": str(NO_NFC)}, tmp_path)


@pytest.mark.slow
def test_wheel_without_the_nfc_extra_installs_and_runs(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("oathdesk-*.whl")
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(line for line in lock if not line.startswith("pyscard")))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    installed = subprocess.run(
        [*pip, "--disable-pip-version-check", "-c", str(constraints), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    python = venv / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import smartcard"], capture_output=True, text=True, check=False
    )
    assert probe.returncode != 0, "pyscard came with the wheel although the extra was not asked for"
    env = base_env(tmp_path)
    env.pop("PYTHONPATH", None)
    desk_commands_work(venv / "bin" / "oathdesk", env, tmp_path)
    info = run(venv / "bin" / "oathdesk", env, "token", "info")
    assert_one_line_error(info)
    assert ADD_IT in info.stderr
