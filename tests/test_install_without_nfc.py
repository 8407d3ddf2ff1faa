"""oathdesk without its extra "nfc" (pyscard): a console-only server installs and runs, and the
commands that need a reader say in one line how to add it.

The quick tests hide pyscard from the commands (tests/no_nfc_sim first on PYTHONPATH); the slow
one builds the wheel and installs it into a fresh virtual environment with the locked versions
of its dependencies, which then lack pyscard as a server's would."""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def requirements_of(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.parser.BytesParser().parsebytes(archive.read(metadata))
    return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


def needed_by(requirements: list[Requirement]) -> dict[str, str]:
    """Every distribution these requirements pull in without extras asked for, with the version
    this environment has (installed from the lock), each checked against what asks for it: the
    set pip would install beside the wheel."""
    found: dict[str, str] = {}
    expanded: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements are in
    todo = [(requirement, "") for requirement in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        version = importlib.metadata.version(name)
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
        found[name] = version
        for wanted in ("", *requirement.extras):
            if (name, wanted) not in expanded:
                expanded.add((name, wanted))
                lines = importlib.metadata.requires(name) or []
                todo.extend((Requirement(line), wanted) for line in lines)
    return found


def link_distributions(names: set[str], into: Path) -> None:
    """Symlinks in ``into`` to the files of these distributions as this environment has them
    (the same versions: both come from the lock), and to nothing else: what a fresh install of
    them would give, without unpacking forty wheels again."""
    into.mkdir()
    linked: set[str] = set()
    for name in names:
        distribution = importlib.metadata.distribution(name)
        site = Path(str(distribution.locate_file("")))
        for file in distribution.files or []:
            top = file.parts[0]
            if top == ".." or top in linked:
                continue  # scripts outside site-packages: the commands here are oathdesk's
            linked.add(top)
            (into / top).symlink_to(site / top)


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
    # What the wheel pulls in, read from its own metadata (an unconditional pyscard shows here),
    # every one pinned in the lock at the version installed here.
    wanted = needed_by(requirements_of(wheel))
    assert "pyscard" not in wanted, "pyscard came with the wheel although nfc was not asked for"
    pins = [Requirement(line) for line in lock if "==" in line]
    pinned = {canonicalize_name(pin.name): str(pin.specifier).removeprefix("==") for pin in pins}
    assert {name: pinned.get(canonicalize_name(name)) for name in wanted} == wanted
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    # Those distributions, and only those, then the wheel itself.
    link_distributions(set(wanted), tmp_path / "deps")
    (site_packages(python) / "deps.pth").write_text(str(tmp_path / "deps") + "\n")
    installed = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = subprocess.run(
        [str(python), "-c", "import smartcard"], capture_output=True, text=True, check=False
    )
    assert probe.returncode != 0, "pyscard is importable in the environment without it"
    env = base_env(tmp_path)
    env.pop("PYTHONPATH", None)
    desk_commands_work(venv / "bin" / "oathdesk", env, tmp_path)
    info = run(venv / "bin" / "oathdesk", env, "token", "info")
    assert_one_line_error(info)
    assert ADD_IT in info.stderr


def site_packages(python: Path) -> Path:
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())
