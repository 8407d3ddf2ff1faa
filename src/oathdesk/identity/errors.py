"""The refusals of a Microsoft sign-in: each one line, saying what to do; never a token."""

from __future__ import annotations

from oathdesk.errors import OathdeskError, PermissionDenied


class SsoRefused(PermissionDenied):
    """The sign-in was refused; ``reason`` is a short word for the audit record."""

    code = "sso_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class IdentityUnreachable(OathdeskError):
    """The identity platform did not answer as it should (network, TLS, a bad document)."""

    code = "identity_unreachable"
