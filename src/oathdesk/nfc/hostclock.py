"""Is this computer's clock synchronised by NTP? A token takes its clock from here when burned.

Answers True, False, or None when it cannot be told (no systemd, not Linux): the caller warns
only on a definite False, so an unknown state makes no noise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

_TIME_ERROR = 5  # adjtimex(2): "the clock is not synchronised"


def ntp_synchronised() -> bool | None:
    told = _timedatectl()
    return told if told is not None else _adjtimex()


def _timedatectl() -> bool | None:
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    answer = done.stdout.strip()
    if done.returncode != 0 or answer not in ("yes", "no"):
        return None
    return answer == "yes"


def _adjtimex() -> bool | None:
    """The kernel's own flag (what NTP daemons set), read without changing anything."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        # struct timex starts with `modes`; 0 = read only. The buffer is larger than the struct.
        buffer = ctypes.create_string_buffer(512)
        state = int(libc.adjtimex(buffer))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR
