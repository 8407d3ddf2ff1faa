"""Errors meant for an operator.

Every error that can reach a person is an ``OathdeskError`` whose message is one line saying what
went wrong and what to do about it. Messages never contain secrets: callers describe the input
("the secret", "line 4, column 'secret key'"), never echo it.
"""

from __future__ import annotations


def _one_line(message: str) -> str:
    if message.isprintable():
        return message
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


class OathdeskError(Exception):
    """An error with a one-line, operator-facing message.

    ``exit_code`` is what the CLI exits with; ``code`` is a stable identifier for the REST API.
    """

    exit_code: int = 2
    code: str = "error"

    def __init__(self, message: str) -> None:
        # A message may quote what someone typed (a UPN, a serial); control characters in it
        # are shown escaped so the message stays one line and cannot forge a second one.
        super().__init__(_one_line(message))

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidInput(OathdeskError):
    """The operator gave something we cannot use; the message says how to fix it."""

    code = "invalid_input"


class SeedError(InvalidInput):
    """A secret (seed) could not be parsed or is unsafe to use."""

    code = "invalid_seed"


class NotFound(OathdeskError):
    code = "not_found"


class Conflict(OathdeskError):
    """The request clashes with the current state (illegal lifecycle move, duplicate, ...)."""

    code = "conflict"


class PermissionDenied(OathdeskError):
    code = "permission_denied"
    exit_code = 3


class PolicyRefused(OathdeskError):
    """A policy (rate limit, four-eyes rule, state rule) refused the action."""

    code = "policy_refused"
    exit_code = 4


class RateLimited(PolicyRefused):
    """Too many of an action in a short time; ``retry_after``: seconds until one is allowed."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[RateLimited], tuple[str, int]]:
        # Outcomes cross from the server's vault-writer process to its workers (pickled).
        return type(self), (self.message, self.retry_after)
