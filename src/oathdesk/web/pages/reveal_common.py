"""What the reveal form and the Microsoft-approved reveal (approvals.py) share: the form page,
its choices read back, and the page of the code.

Not a page module (it has no router); reveal.py and approvals.py import it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from oathdesk.errors import InvalidInput
from oathdesk.otp import TimedCode
from oathdesk.services import sso
from oathdesk.services.directory import reveal_form
from oathdesk.services.reveal import Channel, RevealResult, VerificationMethod
from oathdesk.timetext import duration_text, moment_text
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import render
from oathdesk.web.pages.helpdesk_common import NO_STORE

HIDE_AFTER_SECONDS = 60
METHOD_LABELS = {
    VerificationMethod.CALLBACK: "Called back on the phone number on file",
    VerificationMethod.MANAGER: "The user's manager confirmed",
    VerificationMethod.VIDEO: "Video call, checked against a photo ID",
    VerificationMethod.IN_PERSON: "In person",
    VerificationMethod.OTHER: "Other (say how in the note)",
}
CHANNEL_LABELS = {
    Channel.PHONE: "Read out on the phone",
    Channel.CHAT: "In a chat",
    Channel.EMAIL: "By e-mail (the longest-valid code)",
}


def form_page(
    request: Request,
    vault: Vault,
    actor: Actor,
    upn: str,
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The identity-verification form for ``upn``, again with ``values`` and ``error`` after a
    refusal (no-store: it may come back with what the operator typed)."""
    form = reveal_form(vault, actor, upn)
    response = render(
        request,
        "reveal_form.html",
        {
            "form": form,
            # Approvers sign with a local password and code: say so while Microsoft sign-in is on.
            "sso_on": form.four_eyes and sso.enabled_settings(vault) is not None,
            "values": values or {"channel": "phone"},
            "error": error,
            "methods": METHOD_LABELS,
            "channels": CHANNEL_LABELS,
        },
        status_code=status_code,
    )
    response.headers.update(NO_STORE)
    return response


def choice(kind: type[VerificationMethod] | type[Channel], text: str, what: str) -> Any:
    """The method or channel a form field names; one line asking to choose otherwise."""
    try:
        return kind(text.strip())
    except ValueError:
        raise InvalidInput(f"choose {what}") from None


def grouped(code: str) -> str:
    """``123456`` as ``123 456``: easier to read out and to type."""
    middle = len(code) // 2
    return f"{code[:middle]} {code[middle:]}"


def _code_view(item: TimedCode, now: float) -> dict[str, Any]:
    until = item.accepted_until
    # In UTC: the server's zone is not the operator's, and the page does not know theirs.
    return {
        "grouped": grouped(item.code),
        "plain": item.code,
        "step_offset": item.step_offset,
        "accepted_until": moment_text(until, datetime.fromtimestamp(now, UTC), UTC),
        "accepted_until_iso": until.isoformat(),
        "accepted_until_epoch": int(until.timestamp()),
        "accepted_in": duration_text(until.timestamp() - now),
        "shown_until_epoch": int(item.shown_until.timestamp()),
    }


def code_context(result: RevealResult) -> dict[str, Any]:
    """What reveal_code.html shows of a reveal: the code to pass on first, by its channel."""
    # From the moment the codes were computed (reveal.js counts on from the browser's clock).
    now = result.at
    current = _code_view(result.current, now)
    longest = _code_view(result.longest, now)
    email = result.channel is Channel.EMAIL
    return {
        "token": result.token,
        "profile": result.profile,
        "channel": result.channel.value,
        "primary": longest if email else current,
        "primary_kind": "longest" if email else "current",
        "secondary": current if email else longest,
        "secondary_kind": "current" if email else "longest",
        "next_step_epoch": current["shown_until_epoch"],
        "next_step_in": max(current["shown_until_epoch"] - int(now), 0),
        "hide_after": HIDE_AFTER_SECONDS,
    }
