"""Console-script entry point.

``oathdesk code SECRET`` is the helpdesk's ``t2otp.exe SECRET``: it is run often and from scripts,
so it gets a fast path that avoids importing click. Everything else goes through the click group.
"""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if None in (sys.stdin, sys.stdout, sys.stderr):
        refused = _closed_streams()
        if refused is not None:
            return refused
    if argv and argv[0] == "code":
        from oathdesk.cli.fastcode import try_fast_code

        status = try_fast_code(argv[1:])
        if status is not None:
            return status
    from oathdesk.cli.main import run

    return run(argv)


def _closed_streams() -> int | None:
    """Standard streams closed before the start (`<&-`, `>&-`, `2>&-`). Python leaves their
    file descriptors free, so the next file opened (the vault) would take one of their numbers,
    and what is read or written there would be the vault. Input and errors are given the null
    device (reading finds nothing, as from `< /dev/null`; errors go nowhere, as asked); a closed
    output is refused in one line, since the output is what a command is for."""
    import os

    if sys.stdin is None:
        _null_onto(0, os.O_RDONLY)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - for the process
    if sys.stderr is None:
        _null_onto(2, os.O_WRONLY)
        sys.stderr = open(  # noqa: SIM115 - for the process
            2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False
        )
    if sys.stdout is None:
        from oathdesk.cli.output_failures import IO_ERROR_STATUS, STDOUT_CLOSED

        sys.stderr.write(f"error: {STDOUT_CLOSED}\n")
        return IO_ERROR_STATUS
    return None


def _null_onto(descriptor: int, mode: int) -> None:
    import os

    null = os.open(os.devnull, mode)
    if null != descriptor:
        os.dup2(null, descriptor)
        os.close(null)
