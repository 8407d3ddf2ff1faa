"""Console-script entry point.

``oathdesk code SECRET`` is the helpdesk's ``t2otp.exe SECRET``: it is run often and from scripts,
so it gets a fast path that avoids importing click. Everything else goes through the click group.
"""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if sys.stdout is None:
        # Started with file descriptor 1 closed: the next file opened (the vault) would take
        # its number, and anything written to "standard output" would land in it.
        from oathdesk.cli.output_failures import IO_ERROR_STATUS, STDOUT_CLOSED

        if sys.stderr is not None:
            sys.stderr.write(f"error: {STDOUT_CLOSED}\n")
        return IO_ERROR_STATUS
    if argv and argv[0] == "code":
        from oathdesk.cli.fastcode import try_fast_code

        status = try_fast_code(argv[1:])
        if status is not None:
            return status
    from oathdesk.cli.main import run

    return run(argv)
