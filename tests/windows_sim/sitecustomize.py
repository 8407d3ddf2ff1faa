"""Python as it is on Windows, as far as Linux can show it: imported first by every Python
started with this folder on PYTHONPATH (tests/test_portability.py), it takes away the modules
and functions Windows lacks, so code that needs them fails there as it would on a desk.

What it cannot take away: the POSIX path rules, fork-free process start-up, the Proactor event
loop, ACLs; docs/burning.md says what was and was not tried."""

from __future__ import annotations

import importlib.abc
import os
import signal
import socket
import sys
import warnings

# Modules Windows does not have (uvloop: not installed there, see its marker in pyproject.toml).
ABSENT_MODULES = frozenset(
    {"fcntl", "resource", "pwd", "grp", "termios", "tty", "pty", "posix_ipc", "uvloop"}
)
ABSENT_OS = (
    "fchmod",
    "fchown",
    "chown",
    "lchown",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "fork",
    "forkpty",
    "setsid",
    "getpgid",
    "killpg",
    "O_CLOEXEC",
)
# Windows has SIGINT, SIGTERM, SIGABRT, SIGFPE, SIGILL, SIGSEGV (and SIGBREAK); no other.
KEPT_SIGNALS = frozenset({"SIGINT", "SIGTERM", "SIGABRT", "SIGFPE", "SIGILL", "SIGSEGV"})


# Libraries that choose a backend by sys.platform, which stays "linux" here: their Linux backend
# may import what Windows lacks, as their Windows backend there does not (psutil's _pslinux
# imports resource; _pswindows does not).
PLATFORM_BACKENDS = ("psutil.",)


def _imported_by_a_platform_backend() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("importlib", "_frozen_importlib")) and module != __name__:
            return str(module).startswith(PLATFORM_BACKENDS)
        frame = frame.f_back  # type: ignore[assignment]
    return False


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in ABSENT_MODULES and not _imported_by_a_platform_backend():
            raise ModuleNotFoundError(f"No module named {name!r} (simulated Windows)", name=name)


sys.meta_path.insert(0, _Absent())
for _module in ABSENT_MODULES:
    sys.modules.pop(_module, None)
for _name in ABSENT_OS:
    if hasattr(os, _name):
        delattr(os, _name)
for _name in [n for n in dir(signal) if n.startswith("SIG") and not n.startswith("SIG_")]:
    if _name not in KEPT_SIGNALS:
        delattr(signal, _name)
if hasattr(socket, "SO_REUSEPORT"):
    del socket.SO_REUSEPORT
# filelock picks its Windows lock by sys.platform; here, without fcntl, it falls back to a lock
# file's existence and warns so on every command.
warnings.filterwarnings("ignore", "only soft file lock is available", UserWarning)
os.environ["OATHDESK_SIMULATED_WINDOWS"] = "1"  # lets a test see that this ran
