"""Console-script entry point.

``oathdesk code SECRET`` is the helpdesk's ``t2otp.exe SECRET``: it is run often and from scripts,
so it gets a fast path that avoids importing click. Everything else goes through the click group.
"""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "code":
        from oathdesk.cli.fastcode import try_fast_code

        status = try_fast_code(argv[1:])
        if status is not None:
            return status
    from oathdesk.cli.main import run

    return run(argv)
