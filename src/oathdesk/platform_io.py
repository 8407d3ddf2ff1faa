"""What differs between a POSIX server and a Windows helpdesk desk, in one place: locking a file,
keeping a file private to its owner, checking that a key file is, sharing a port between
processes, and a child process noticing that its parent is gone. The rest of oathdesk calls
these and has no ``os.name`` branches of its own.

Each difference is decided by what the running Python has (``os.getuid``, ``os.fchmod``,
``socket.SO_REUSEPORT``), not by the platform's name, so a test can take those away on Linux
and run oathdesk as it runs on Windows (tests/test_portability.py).

Private files on Windows: a file gets the permissions its folder hands down, and a folder under
the user's profile (where the vault and its key live by default, %LOCALAPPDATA%) is readable by
its owner, SYSTEM and the administrators only. oathdesk sets no ACL of its own there, and it
cannot check one: it says so (``PRIVATE_FILES``) rather than pretend. docs/burning.md says what
this means for a desk.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

# POSIX ownership and mode bits mean something only where there are user ids.
POSIX_PERMISSIONS = hasattr(os, "getuid") and hasattr(os, "fchmod")

# How a freshly written private file is protected, for the messages that name one.
PRIVATE_FILES = (
    "mode 0600"
    if POSIX_PERMISSIONS
    else "private to your account only if its folder is, as your profile is; not checked"
)

# Several sockets on one port, the kernel spreading connections over them (serve --workers).
SHARES_PORT = hasattr(socket, "SO_REUSEPORT")


# -- locks ----------------------------------------------------------------------------------------


class LockBusy(Exception):
    """Another process holds the lock; try again later."""


class FileLock:
    """An exclusive lock on ``path`` held by this process (flock on POSIX, a byte-range lock
    on Windows, both through the ``filelock`` package); the system drops it when the process
    dies, so a killed writer never leaves it held. Not re-entrant: the caller counts."""

    def __init__(self, path: Path) -> None:
        import filelock  # only commands that write a vault pay for it

        self._busy = filelock.Timeout
        # The lock file holds nothing, but the vault's folder is nobody else's business: 0600
        # where there are modes (filelock fchmods an explicit mode, which Windows lacks).
        self._lock = (
            filelock.FileLock(path, mode=0o600, thread_local=False)
            if POSIX_PERMISSIONS
            else filelock.FileLock(path, thread_local=False)
        )

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it. OSError when the
        lock file cannot be made (a read-only directory)."""
        try:
            self._lock.acquire(blocking=False)
        except self._busy:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


# -- private files --------------------------------------------------------------------------------


def open_private(path: Path, *, exclusive: bool = False) -> BinaryIO:
    """Open ``path`` for writing bytes, truncated, readable by its owner only: mode 0600 on
    POSIX, whatever the umask says (see the module's note for Windows). ``exclusive``:
    FileExistsError if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    flags |= getattr(os, "O_BINARY", 0)  # Windows: no newline translation
    fd = os.open(path, flags, 0o600)
    try:
        make_private(fd)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def make_private(fd: int) -> None:
    """Make the open file ``fd`` readable by its owner only (a file that existed kept its
    mode through os.open; the umask may have taken bits from a new one)."""
    if POSIX_PERMISSIONS:
        os.fchmod(fd, 0o600)


def chmod_private(path: str) -> None:
    """``make_private`` for a file some other code created (SQLite's -wal and -shm files)."""
    if POSIX_PERMISSIONS:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(path, 0o600)


def exposure(path: Path) -> str | None:
    """Why ``path`` (a key or secret file) is not private, as "readable by others; run ...",
    or None: private, or a platform where oathdesk cannot tell (Windows ACLs)."""
    if not POSIX_PERMISSIONS:
        return None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"readable by others; run `chmod 600 {path}` and try again"
    return None


# -- the user -------------------------------------------------------------------------------------


def login_name() -> str:
    """Who runs this command, for the audit log: the login name from the environment (USERNAME
    on Windows), else the account database where there is one, else "unknown"."""
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):  # no pwd module (Windows), or no such uid
        return "unknown"


def data_home(env: Mapping[str, str]) -> Path:
    """Where per-user data lives: $XDG_DATA_HOME, else %LOCALAPPDATA% (Windows: private to the
    user by the profile's permissions), else ~/.local/share."""
    base = env.get("XDG_DATA_HOME") or env.get("LOCALAPPDATA")
    return Path(base) if base else Path.home() / ".local" / "share"


# -- processes ------------------------------------------------------------------------------------


def parent_sentinel() -> int | None:
    """What ``multiprocessing.connection.wait`` reports ready once this process's parent has
    ended (a pipe end on POSIX, the parent's handle on Windows); None in a process that
    multiprocessing did not start."""
    import multiprocessing  # here: every CLI start imports this module, few use processes

    parent = multiprocessing.parent_process()
    return None if parent is None else parent.sentinel


def when_parent_exits(callback: Callable[[], None]) -> None:
    """Call ``callback`` (on a thread of its own) when the parent process ends, however it
    ends: SIGKILL gives the parent no chance to stop its children itself."""
    sentinel = parent_sentinel()
    if sentinel is None:
        return

    def watch() -> None:
        import multiprocessing.connection

        multiprocessing.connection.wait([sentinel])
        callback()

    threading.Thread(target=watch, name="oathdesk-parent-watch", daemon=True).start()
