"""Where a CLI command gets a secret from, without it ever appearing in a process list.

Order: the SECRET argument if given ('-' means read one line from standard input), else the
OATHDESK_SECRET environment variable, else a prompt without echo when standard input is a
terminal. A secret typed as an argument still works (the t2otp.exe habit), but scripts should
prefer '-' or the environment variable.
"""

from __future__ import annotations

import os
import sys

from oathdesk.errors import InvalidInput

ENV_VAR = "OATHDESK_SECRET"


def read_secret_text(argument: str | None, *, prompt: str = "Secret") -> str:
    """Return the secret text the operator supplied (still unparsed)."""
    if argument == "-":
        text = sys.stdin.readline()
        if not text.strip():
            raise InvalidInput(
                "no secret on standard input; pipe it in, e.g. `... | oathdesk code -`"
            )
        return text.strip()
    if argument:
        return argument
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return from_env
    if sys.stdin.isatty():
        import getpass

        typed = getpass.getpass(f"{prompt} (input hidden): ")
        if typed.strip():
            return typed.strip()
    raise InvalidInput(f"no secret given; pass it as '-' on standard input or set {ENV_VAR}")
