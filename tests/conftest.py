"""Shared test helpers: run ``oathdesk`` commands as processes of their own (forked from a
server that has the libraries imported, or the console script itself: tests/cli_forks.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_forks import FORKS

pytest_plugins = ["tests.vault_fixtures"]

# Tests press Ctrl-C (SIGINT) in the commands they start, as a person at a terminal does. A test
# run started in the background of a non-interactive shell inherits SIGINT ignored, and every
# command it starts would inherit that too (and never see the key): give them the terminal's
# default. A Python handler, unlike SIG_IGN, is reset to the default in a child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow first (a stable sort: the rest keep their order). xdist hands the
    tests out in this order, so a test of a minute that came last would keep one worker busy
    while the other has nothing left to run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# The console script installed into the same virtual environment as the test runner.
OATHDESK = Path(sys.executable).parent / "oathdesk"


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


RunCli = Callable[..., CliResult]


def run_cli(
    *args: str,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    fresh_process: bool = False,
) -> CliResult:
    """Run ``oathdesk ARGS`` as a user would, with a clean environment plus ``env``: in a process
    forked from one that has the libraries imported (tests/cli_forks.py), or, when the test
    needs it (``fresh_process``: it measures the process) or the environment changes how the
    interpreter starts, through the console script in a new interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    full_env.update(env or {})
    if not fresh_process and FORKS.can_run(full_env):
        argv = [str(OATHDESK), *args]
        status, out, err = FORKS.run(argv, input or "", full_env, timeout, cwd)
        return CliResult(status, out, err)
    proc = subprocess.run(
        [str(OATHDESK), *args],
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> RunCli:
    return run_cli


def assert_one_line_error(result: CliResult) -> None:
    """The house rule for failures: non-zero exit, one line on stderr, no traceback."""
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
