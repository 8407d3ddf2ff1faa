"""A Windows helpdesk desk, as far as Linux can show it: the commands a desk uses run in Pythons
without the POSIX-only modules and functions (tests/windows_sim/sitecustomize.py takes away
fcntl, resource, pwd, grp, termios, uvloop, os.fchmod, os.getuid and friends, os.fork, every
signal Windows lacks and SO_REUSEPORT before anything is imported) and work."""

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

SIMULATION = Path(__file__).parent / "windows_sim"
SECRET = bytes(range(70, 90))
UPN = "helga@contoso.com"


def desk_env(tmp_path: Path) -> dict[str, str]:
    """A Windows-like environment: no HOME-based XDG dirs, a profile's LOCALAPPDATA, USERNAME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OATHDESK_", "XDG_"))}
    for name in ("USER", "LOGNAME", "LNAME"):
        env.pop(name, None)  # Windows has USERNAME only
    env.update(
        PYTHONPATH=str(SIMULATION),
        LOCALAPPDATA=str(tmp_path / "AppData" / "Local"),
        USERNAME="helga.desk",
        PYTHONUNBUFFERED="1",
    )
    return env


def desk(env: dict[str, str], *args: str, input: str = "") -> CliResult:
    result = subprocess.run(
        [str(OATHDESK), *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return CliResult(result.returncode, result.stdout, result.stderr)


def ok(env: dict[str, str], *args: str, input: str = "") -> str:
    result = desk(env, *args, input=input)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def test_the_simulation_takes_the_posix_only_parts_away(tmp_path: Path) -> None:
    probe = (
        "import importlib.util, os, signal, socket\n"
        "missing = []\n"
        "for name in ('fcntl', 'resource', 'pwd', 'grp', 'uvloop'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        missing.append(name)\n"
        "missing += [n for n in ('fchmod', 'getuid', 'geteuid', 'fork') if not hasattr(os, n)]\n"
        "missing += [n for n in ('SIGKILL', 'SIGHUP', 'SIGCHLD') if not hasattr(signal, n)]\n"
        "missing += [] if hasattr(socket, 'SO_REUSEPORT') else ['SO_REUSEPORT']\n"
        "print(' '.join(missing))\n"
        "print(hasattr(signal, 'SIGINT') and hasattr(signal, 'SIGTERM'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=desk_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[0].split() == [
        *("fcntl", "resource", "pwd", "grp", "uvloop"),
        *("fchmod", "getuid", "geteuid", "fork"),
        *("SIGKILL", "SIGHUP", "SIGCHLD", "SO_REUSEPORT"),
    ]
    assert out[1] == "True"


def test_desk_commands_work_without_posix_only_modules(tmp_path: Path) -> None:
    env = desk_env(tmp_path)
    b32 = encode_base32(SECRET)
    created = ok(env, "init")
    data = tmp_path / "AppData" / "Local" / "oathdesk"
    assert str(data / "vault.sqlite3") in created  # the profile's LOCALAPPDATA, not ~/.local
    # No POSIX modes here: the message says what protects the key instead of "mode 0600".
    assert "mode 0600" not in created
    assert "not checked" in created
    source = tmp_path / "order.csv"
    source.write_text(
        "upn,serial number,secret key,timeinterval,manufacturer,model\n"
        f"{UPN},60234567,{b32},30,Token2,C202\n"
    )
    assert "imported 1 classic token(s)" in ok(env, "import", str(source))
    ok(env, "token", "registered", "60234567")
    ok(env, "user", "edit", UPN, "--phone", "+41790000000")  # the callback's number
    revealed = json.loads(
        ok(
            env,
            *("reveal", UPN, "--method", "callback", "--ticket", "INC-1", "--channel", "phone"),
            "--json",
        )
    )
    assert revealed["serial"] == "60234567"
    audit = [json.loads(line) for line in ok(env, "audit", "export").splitlines()]
    assert any("local:helga.desk" in json.dumps(record) for record in audit), audit[:2]
    assert ok(env, "code", "-", input=b32).strip().isdigit()
    assert "accepted" in ok(env, "codes", "-", input=b32)
    ok(env, "seed", "qr", "-", "--output", str(tmp_path / "seed.png"), input=b32)
    ok(env, "backup", str(tmp_path / "vault.backup"))
    # No reader service in this test: one line that says what to start, not a crash.
    assert_one_line_error(
        desk({**env, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no")}, "token", "info")
    )


def test_serve_starts_and_answers_without_posix_only_modules(tmp_path: Path) -> None:
    env = desk_env(tmp_path)
    port = free_port()
    refused = desk(env, "serve", "--port", str(port), "--workers", "2")
    assert_one_line_error(refused)
    assert "one worker" in refused.stderr
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        read_banner(process, timeout=60)
        page = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=10)
        assert page.status_code == 200
    finally:
        process.terminate()  # SIGTERM: what Windows' os.kill and service managers send
        _out, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err


@pytest.mark.parametrize("name", ["fcntl", "resource", "pwd", "grp"])
def test_no_module_of_oathdesk_imports_a_posix_only_module(name: str) -> None:
    """Statically: the only platform differences live in oathdesk/platform_io.py."""
    source = Path(__file__).parent.parent / "src" / "oathdesk"
    for path in source.rglob("*.py"):
        if path.name == "platform_io.py":
            continue
        text = path.read_text()
        assert f"import {name}" not in text, path
        for posix_only in ("os.fchmod", "os.getuid", "os.geteuid", "os.fork", "O_CLOEXEC"):
            assert posix_only not in text, (path, posix_only)
