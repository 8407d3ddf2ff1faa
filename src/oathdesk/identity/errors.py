"""The refusals of a Microsoft sign-in: each one line, saying what to do; never a token."""

from __future__ import annotations

from oathdesk.errors import OathdeskError, PermissionDenied


class SsoRefused(PermissionDenied):
    """The sign-in was refused; ``reason`` is a short word for the audit record."""

    code = "sso_refused"

    def __init__(self, reason: str, message: str, *, tid: str = "", oid: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        # Who it was, when the token was good enough to say (a refusal for want of a role).
        self.tid = tid
        self.oid = oid


class IdentityUnreachable(OathdeskError):
    """The identity platform did not answer as it should (network, TLS, a bad document)."""

    code = "identity_unreachable"


class AccessTokenRefused(SsoRefused):
    """An Entra access token presented to the REST API was refused (401 there); ``azp`` names
    the app when its token was good enough to say."""

    code = "unauthorized"
    azp = ""
