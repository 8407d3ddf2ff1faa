"""What a command does when the reader of its output goes away (`oathdesk ... | head`)."""

from __future__ import annotations

import os
import sys

# A Unix tool stopped by SIGPIPE exits non-zero and says nothing; click does the same for the
# commands it runs (exit 1), and so do the paths outside it.
EXIT_STATUS = 1


def output_closed() -> int:
    """Point standard output at the null device, so that the interpreter's last flush of what
    is still buffered has nowhere to fail (it would print "Exception ignored ... BrokenPipeError"
    and exit 120), and return the exit status."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return EXIT_STATUS
