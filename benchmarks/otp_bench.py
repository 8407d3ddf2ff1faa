"""Issue 2: the OTP engine against pyotp, oathtool and the stdlib floor."""

from __future__ import annotations

import base64
import hmac
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pyotp

from benchmarks.harness import Row, Section, best_seconds, median_process_seconds, verdict
from oathdesk.otp import measure_drift, totp, totp_codes

KEY = bytes(range(20))
KEY_B32 = base64.b32encode(KEY).decode()
AT = 1_800_000_000
WINDOW = 1_000
DRIFT_STEPS = 2_880


def stdlib_floor_window() -> list[str]:
    """The plainest correct loop over the standard library: hmac.digest per counter."""
    first = AT // 30
    codes = []
    for counter in range(first, first + WINDOW):
        mac = hmac.digest(KEY, struct.pack(">Q", counter), "sha1")
        offset = mac[-1] & 0x0F
        codes.append(f"{(int.from_bytes(mac[offset : offset + 4]) & 0x7FFFFFFF) % 1_000_000:06d}")
    return codes


def window_section() -> Section:
    ours = best_seconds(lambda: totp_codes(KEY, AT, behind=0, ahead=WINDOW - 1))
    floor = best_seconds(stdlib_floor_window)
    oracle = pyotp.TOTP(KEY_B32)
    pyotp_time = best_seconds(
        lambda: [oracle.at(AT + step * 30) for step in range(WINDOW)], repeat=3
    )
    assert totp_codes(KEY, AT, behind=0, ahead=WINDOW - 1) == stdlib_floor_window()
    rows = [
        Row("oathdesk totp_codes", WINDOW / ours, "codes/s"),
        Row("stdlib hmac.digest loop (floor)", WINDOW / floor, "codes/s"),
        Row("pyotp TOTP.at", WINDOW / pyotp_time, "codes/s"),
    ]
    if shutil.which("oathtool"):
        argv = ["oathtool", "--totp", "--now=2027-01-15 08:00:00 UTC", f"-w{WINDOW - 1}", "-"]
        seconds = median_process_seconds(argv, runs=10, stdin=KEY.hex())
        rows.append(
            Row(
                "oathtool -w 999 (one process)",
                WINDOW / seconds,
                "codes/s",
                "includes process start-up",
            )
        )
    return Section(
        f"Codes for a {WINDOW:,}-step window (SHA-1, 6 digits)",
        "Best of 7 runs in one process; oathtool is a separate C program, timed as a whole.",
        rows,
        [
            verdict("oathdesk / stdlib floor", floor / ours, 0.9),
            verdict("oathdesk / pyotp", pyotp_time / ours, 2.5),
        ],
    )


def drift_section() -> Section:
    code = totp(KEY, AT - 1_500 * 30)
    ours = best_seconds(lambda: measure_drift(KEY, code, AT, max_steps=DRIFT_STEPS), repeat=25)
    oracle = pyotp.TOTP(KEY_B32)
    pyotp_time = best_seconds(
        lambda: oracle.verify(code, for_time=AT, valid_window=DRIFT_STEPS), repeat=3
    )
    rows = [
        Row("oathdesk measure_drift", ours * 1000, "ms"),
        Row("pyotp verify(valid_window=2880)", pyotp_time * 1000, "ms", "answers only yes/no"),
    ]
    if shutil.which("oathtool"):
        argv = [
            "oathtool",
            "--totp",
            "--now=2027-01-15 08:00:00 UTC",
            f"-w{DRIFT_STEPS}",
            KEY.hex(),
            "000000",
        ]
        # oathtool exits 1 when the code is not found; time the whole search anyway.
        start_ok = subprocess.run(argv, capture_output=True, check=False)
        del start_ok
        rows.append(
            Row(
                "oathtool -w 2880 (one process)",
                _oathtool_seconds(argv) * 1000,
                "ms",
                "forward window only; includes start-up",
            )
        )
    return Section(
        f"Drift search over +-{DRIFT_STEPS:,} steps (one day at 30 s)",
        "Time to find a code's step offset in a 5,761-step window.",
        rows,
        [verdict("oathdesk drift search, ms", ours * 1000, 10, higher_is_better=False)],
    )


def _oathtool_seconds(argv: list[str]) -> float:
    import time

    times = []
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def cold_start_section() -> Section:
    bin_dir = Path(sys.executable).parent
    env_secret = {"OATHDESK_SECRET": KEY_B32}
    os.environ.update(env_secret)
    python_pass = median_process_seconds([sys.executable, "-c", "pass"])
    ours = median_process_seconds([str(bin_dir / "oathdesk"), "code"])
    rows = [
        Row("python -c pass", python_pass * 1000, "ms"),
        Row("oathdesk code", ours * 1000, "ms"),
    ]
    if shutil.which("oathtool"):
        rows.append(
            Row(
                "oathtool --totp",
                median_process_seconds(["oathtool", "--totp", KEY.hex()]) * 1000,
                "ms",
            )
        )
    return Section(
        "Cold start of one code",
        "Median of 30 process starts (the console script of the project's virtual environment).",
        rows,
        [verdict("oathdesk code / python -c pass", ours / python_pass, 4, higher_is_better=False)],
    )


SECTIONS = [window_section, drift_section, cold_start_section]
