"""Log lines that a request cannot forge: every control character escaped, one record one line.

A request path, a header or an exception's message is text an attacker chooses. Written raw,
a newline in it starts a forged record, an ESC sequence rewrites the operator's terminal, a NUL
truncates a journal field, U+2028 breaks a line in some viewers and a bidi override reverses
what a reader sees. The server installs ``SafeFormatter`` on every handler it sets up (see
``oathdesk.cli.serve.log_config``), so no call site has to remember to escape.
"""

from __future__ import annotations

import logging

# The escaping itself lives in textsafe (no logging import: the CLI's tables use it too).
from oathdesk.textsafe import one_line as one_line


class SafeFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose whole output, message, arguments and traceback included,
    is one line with every control character escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


LINE_FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def guard_unhandled() -> None:
    """For a server process: what no handler of ours would take, formatted safely too.

    A background thread's uncaught exception (an import job's, a reveal writer's) becomes one
    error line naming the thread and the exception's type; Python's default prints the whole
    traceback raw on standard error, past every formatter, and its message may quote input. A
    library's record that no handler takes goes to Python's last-resort handler: that one
    formats with ``SafeFormatter`` now. (Not a handler on the root logger: configuring the root
    would remove the handlers others put there, e.g. a test run's log capture.)"""
    import sys
    import threading

    last_resort = logging.StreamHandler(sys.stderr)
    last_resort.setLevel(logging.WARNING)
    last_resort.setFormatter(SafeFormatter(LINE_FORMAT, DATE_FORMAT))
    logging.lastResort = last_resort
    thread_log = logging.getLogger("oathdesk.threads")

    def hook(failure: threading.ExceptHookArgs) -> None:
        if failure.exc_type is SystemExit:
            return
        name = failure.thread.name if failure.thread is not None else "a thread"
        thread_log.error("%s stopped on an unexpected %s", name, failure.exc_type.__name__)

    threading.excepthook = hook
