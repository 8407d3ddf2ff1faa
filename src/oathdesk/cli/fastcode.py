"""A click-free path for the common `oathdesk code ...` call (it starts in a fraction of the time).

Anything it does not recognise (--help, unknown options, malformed values) returns None so the
click command handles it, with click's usual messages.
"""

from __future__ import annotations

import sys

from oathdesk.errors import OathdeskError

_VALUE_OPTIONS = {"--at", "--algorithm", "--digits", "--period"}
_INT_OPTIONS = {"--digits", "--period"}


def _parse(args: list[str]) -> tuple[str | None, dict[str, str]] | None:
    secret: str | None = None
    options: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if name not in _VALUE_OPTIONS or name in options:
                return None
            if not equals:
                index += 1
                if index >= len(args):
                    return None
                value = args[index]
            if name in _INT_OPTIONS and not value.isdigit():
                return None
            options[name] = value
        elif arg.startswith("-") and arg != "-":
            return None
        elif secret is None:
            secret = arg
        else:
            return None
        index += 1
    return secret, options


def try_fast_code(args: list[str]) -> int | None:
    parsed = _parse(args)
    if parsed is None:
        return None
    secret_argument, options = parsed
    from oathdesk.cli.code_request import resolve_code_request
    from oathdesk.cli.secret_input import read_secret_text
    from oathdesk.otp import totp

    try:
        request = resolve_code_request(
            read_secret_text(secret_argument),
            at=options.get("--at"),
            algorithm=options.get("--algorithm"),
            digits=int(options["--digits"]) if "--digits" in options else None,
            period=int(options["--period"]) if "--period" in options else None,
        )
        code = totp(
            request.key,
            request.at,
            algorithm=request.algorithm,
            digits=request.digits,
            period=request.period,
        )
    except OathdeskError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    try:
        sys.stdout.write(code + "\n")
        sys.stdout.flush()
    except OSError as failed:
        from oathdesk.cli.output_failures import IO_ERROR_STATUS, io_failed, output_closed

        if isinstance(failed, BrokenPipeError):
            return output_closed()
        sys.stderr.write(f"error: {io_failed(failed)}\n")
        return IO_ERROR_STATUS
    return 0
