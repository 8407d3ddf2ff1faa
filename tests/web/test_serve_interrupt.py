"""Ctrl-C at any moment of `oathdesk serve`'s start-up stops it promptly and quietly: no
Python warning or traceback on the terminal, whatever step the signal lands in (uvicorn not yet
running, the housekeeping thread just started, the server coming up)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import OATHDESK
from tests.web.conftest import free_port
from tests.web.test_serve import clean_env

# Moments after the banner's alerts line: the signal lands before, during and after the steps
# between the banner and uvicorn's own handlers.
DELAYS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.4)


@pytest.mark.slow
def test_ctrl_c_at_any_moment_of_start_up_stops_promptly_and_quietly(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    for number, delay in enumerate(DELAYS):
        vault = tmp_path / f"vault{number}.sqlite3"
        process = subprocess.Popen(
            [str(OATHDESK), "serve", "--port", str(free_port()), "--vault", str(vault)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("alerts:"):
                break
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError(
                f"serve did not stop within 15 s of Ctrl-C at +{delay} s"
            ) from None
        assert "Warning" not in stderr, (delay, stderr)
        assert "Traceback" not in stderr, (delay, stderr)
        assert process.returncode in (0, 130), (delay, process.returncode, stderr)
