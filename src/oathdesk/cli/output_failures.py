"""What a command does when its output cannot be written: the reader went away (`oathdesk ...
| head`), the disk under it is full, or standard output was closed before it started.

No click here: the fast `oathdesk code` path (cli/fastcode.py) uses it too.
"""

from __future__ import annotations

import errno
import os
import sys

from oathdesk.textsafe import one_line

# A Unix tool stopped by SIGPIPE exits non-zero and says nothing; click does the same for the
# commands it runs (exit 1), and so do the paths outside it.
READER_GONE_STATUS = 1
# sysexits.h EX_IOERR: an input/output error, for a script to tell from a refusal (1) or misuse.
IO_ERROR_STATUS = 74
STDOUT_CLOSED = "cannot write the output: standard output is closed"

# Without a file name, these come from a write that the system refused: on a command's output
# (stdout, or the file it was told to write), not from anything the command read.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF, errno.EROFS}


def output_closed() -> int:
    """The reader went away: point standard output at the null device, so that the
    interpreter's last flush of what is still buffered has nowhere to fail (it would print
    "Exception ignored ... BrokenPipeError" and exit 120), and return the exit status."""
    _discard_stdout()
    return READER_GONE_STATUS


# What to do about the usual ones, after the system's own words.
_WHAT_TO_DO = {
    errno.ENOENT: "check the path (its folder must exist)",
    errno.EACCES: "check the permissions, or choose another place",
    errno.EPERM: "check the permissions, or choose another place",
    errno.EISDIR: "give a file's path, not a folder's",
    errno.ENOTDIR: "check the path: a part of it is a file, not a folder",
    errno.ENOSPC: "free some space on that disk, or write elsewhere",
    errno.EDQUOT: "free some space within your quota, or write elsewhere",
    errno.EROFS: "that file system is read-only: write elsewhere",
}


def os_error_message(failure: OSError) -> str:
    """One line for an input/output error the system reported: its own words, the file's name
    when it has one (escaped: a name may hold anything), and what to do when that is known."""
    reason = failure.strerror or type(failure).__name__
    hint = _WHAT_TO_DO.get(failure.errno) if failure.errno is not None else None
    reason = f"{reason}; {hint}" if hint else reason
    if failure.filename is not None:
        return f"cannot use {one_line(os.fsdecode(failure.filename))}: {reason}"
    if failure.errno in _WRITE_ERRORS:
        return f"cannot write the output: {reason}"
    return f"input/output failed: {reason}"


def io_failed(failure: OSError) -> str:
    """``os_error_message``, after pointing standard output at the null device when it is the
    output that failed (what is still buffered would fail again at exit, with a traceback)."""
    if failure.filename is None and failure.errno in _WRITE_ERRORS:
        _discard_stdout()
    return os_error_message(failure)


def flush_output() -> None:
    """Write out what is still buffered, so that a failure is reported by the command (one
    line) rather than by the interpreter at exit."""
    if sys.stdout is not None:
        sys.stdout.flush()


def _discard_stdout() -> None:
    if sys.stdout is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
