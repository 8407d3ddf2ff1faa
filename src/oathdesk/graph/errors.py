"""Graph and sign-in failures as one-line messages with plain-word hints.

Messages name the operation, the HTTP status and Graph's error code, and say what to do. Text
that comes back from Graph is cut to one line and has every value we sent that is secret (a
verification code, a client secret) replaced, in case a server quotes it back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from oathdesk.errors import OathdeskError, PermissionDenied
from oathdesk.graph.operations import Operation

_MAX_DETAIL = 160


class GraphError(OathdeskError):
    """Graph answered with an error (or could not be reached)."""

    code = "graph_error"
    exit_code = 6

    def __init__(self, message: str, *, status: int | None = None, graph_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.graph_code = graph_code


class GraphPermissionError(GraphError, PermissionDenied):
    """403: the credentials lack a permission (or the signed-in admin a role)."""

    code = "graph_forbidden"
    exit_code = 3


class GraphSignInError(GraphError):
    """The identity platform refused to issue a token."""

    code = "graph_sign_in"


class GraphConnectionLost(GraphError):
    """The connection dropped while a change was in flight: it may or may not have happened."""

    code = "graph_connection_lost"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` on one line, shortened, with every secret in ``secrets`` replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _MAX_DETAIL else one_line[: _MAX_DETAIL - 3] + "..."


def error_parts(body: Any) -> tuple[str, str]:
    """Graph's ``{"error": {"code", "message"}}`` (and OAuth's ``error``/``error_description``)."""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            return str(inner.get("code") or ""), str(inner.get("message") or "")
        if isinstance(inner, str):
            return inner, str(body.get("error_description") or "")
    return "", ""


def graph_error(
    operation: Operation,
    status: int,
    body: Any,
    *,
    app_only: bool,
    target: str = "",
    secrets: Iterable[str] = (),
) -> GraphError:
    """The error for a failed call, with the hint that fits the status."""
    code, message = error_parts(body)
    detail = redact(message, secrets)
    about = f" {target}" if target else ""
    said = f" ({status}{' ' + code if code else ''}{': ' + detail if detail else ''})"
    if status == 403:
        if app_only:
            hint = (
                f"the app registration needs the Microsoft Graph application permission "
                f"{operation.permission}: in the Entra admin center open App registrations > "
                "your app > API permissions, add it, then click 'Grant admin consent'"
            )
        else:
            hint = (
                f"the signed-in admin needs the delegated permission {operation.permission} "
                f"(admin-consented) and the {operation.role} role"
            )
        return GraphPermissionError(
            f"Graph refused to {operation.what}{about} (403{' ' + code if code else ''}); {hint}",
            status=status,
            graph_code=code,
        )
    if status == 401:
        hint = "the sign-in expired or was revoked; run `oathdesk entra login` again"
    elif status == 404:
        hint = "it does not exist in Entra (check the UPN or serial, or run `oathdesk entra pull`)"
    elif status == 409:
        hint = "it clashes with what Entra already holds; run `oathdesk entra pull` to compare"
    elif status in (429, 503):
        hint = "Graph is throttling; wait a few minutes and run the command again (it resumes)"
    elif status >= 500:
        hint = "Graph failed on its side; try again later"
    else:
        hint = "Graph refused the request; fix what it names and run the command again"
    return GraphError(
        f"could not {operation.what}{about}{said}; {hint}", status=status, graph_code=code
    )


# AADSTS codes an operator meets while setting up an app registration, in plain words.
_SIGN_IN_HINTS = {
    "AADSTS7000215": "the client secret is wrong; copy the secret's Value (not its ID) again",
    "AADSTS7000222": "the client secret has expired; create a new one under Certificates & secrets",
    "AADSTS700027": "the certificate is not the one uploaded to the app registration",
    "AADSTS700016": "no app with this client id in this tenant; check --client-id and --tenant",
    "AADSTS90002": "no such tenant; check --tenant",
    "AADSTS7000218": (
        "the app does not allow device-code sign-in: set Authentication > 'Allow public client "
        "flows' to Yes in the app registration, or sign in with --client-secret/--certificate"
    ),
    "AADSTS65001": "no admin consent for the app's permissions yet; click 'Grant admin consent'",
    "AADSTS70016": "the device code was not approved yet",
    "AADSTS70020": "the device code expired before it was approved; run login again",
    "AADSTS50126": "the user name or password was wrong",
}
_AADSTS = re.compile(r"AADSTS\d+")


def sign_in_error(result: dict[str, Any], *, secrets: Iterable[str] = ()) -> GraphSignInError:
    """An msal error result (``error``, ``error_description``) as one line."""
    code = str(result.get("error") or "sign-in failed")
    description = str(result.get("error_description") or "")
    found = _AADSTS.search(description)
    aadsts = found.group(0) if found else ""
    hint = _SIGN_IN_HINTS.get(aadsts, "")
    if not hint:
        if code == "invalid_client":
            hint = "the client secret or certificate was refused; check it in the app registration"
        elif code == "expired_token":
            hint = "the device code expired before it was approved; run login again"
        elif code in ("authorization_declined", "access_denied"):
            hint = "the sign-in was declined"
        else:
            hint = redact(description.split(" Trace ID")[0], secrets) or "see the app registration"
    label = f"{code}{' ' + aadsts if aadsts else ''}"
    return GraphSignInError(f"sign-in to Entra failed ({label}): {hint}", graph_code=code)
