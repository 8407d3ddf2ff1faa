"""Where a CLI command gets a secret from, without it ever appearing in a process list.

Order: the SECRET argument if given ('-' means read one line from standard input), else the
OATHDESK_SECRET environment variable, else a prompt without echo when standard input is a
terminal. A secret typed as an argument still works (the t2otp.exe habit), but scripts should
prefer '-' or the environment variable.

A credential that is not a token's seed (a client secret, a certificate's key: `entra login`,
`sso configure`) comes from '-', a hidden prompt or a file only the operator can read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def read_secret_source(source: str, what: str) -> str:
    """A credential (a client secret) from '-' (standard input), 'prompt' (hidden) or a file
    only we can read; never the credential itself as an argument."""
    if source == "-":
        text = sys.stdin.readline().strip()
        if not text:
            raise InvalidInput(f"no {what} on standard input; pipe it in")
        return text
    if source == "prompt":
        if not sys.stdin.isatty():
            raise InvalidInput(f"cannot prompt for the {what} without a terminal; pass '-'")
        import getpass

        return getpass.getpass(f"{what} (input hidden): ").strip()
    return read_private_file(Path(source), what, show_path=False)


def read_private_file(path: Path, what: str, *, show_path: bool = True) -> str:
    """A credential file's text, refused when others may read it (platform_io.exposure)."""
    # Here, not at the top: `oathdesk code` reads its secret through this module, fast.
    from oathdesk.platform_io import exposure

    try:
        problem = exposure(path)
    except (FileNotFoundError, OSError):
        # The "path" may be the secret itself, typed where a path was expected: never echo it.
        where = f" {path}" if show_path else ""
        raise InvalidInput(
            f"no such file{where}; give the {what} as '-' (standard input), 'prompt' or the "
            "path of a file holding it, never the secret itself"
        ) from None
    if problem:
        raise InvalidInput(f"{path} is {problem}")
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        raise InvalidInput(f"cannot read {path} as text") from None
