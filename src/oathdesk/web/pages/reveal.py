"""/users/{upn}/reveal: the identity-verification form, then the emergency code.

The code exists only in the body of the POST response (no-store): never in a URL, a redirect,
a flash message or a log line, and the seed never leaves the server. Policy (identity record,
channel, limits, four-eyes, state rules, the audit record) is all in ``services.reveal``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.otp import TimedCode
from oathdesk.services import sso
from oathdesk.services.alerts import AlertSink
from oathdesk.services.directory import reveal_form
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealRequest,
    RevealResult,
    VerificationMethod,
)
from oathdesk.services.reveal_queue import Reveals
from oathdesk.timetext import duration_text, moment_text
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import render, verify_csrf
from oathdesk.web.pages.helpdesk_common import (
    NO_STORE,
    ActorDep,
    AlertsDep,
    VaultDep,
    form_text,
    kept,
    status_for,
)

router = APIRouter()

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


def _form_page(
    request: Request,
    vault: Vault,
    actor: Actor,
    upn: str,
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
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


@router.get("/users/{upn}/reveal", response_class=HTMLResponse)
def reveal_form_page(
    request: Request,
    upn: str,
    vault: VaultDep,
    actor: ActorDep,
) -> HTMLResponse:
    return _form_page(request, vault, actor, upn)


def _choice(kind: type[VerificationMethod] | type[Channel], text: str, what: str) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        raise InvalidInput(f"choose {what}") from None


def _request_from(vault: Vault, upn: str, fields: dict[str, str]) -> RevealRequest:
    check = IdentityCheck(
        _choice(VerificationMethod, fields.get("method", ""), "how the identity was verified"),
        fields.get("ticket", "").strip(),
        fields.get("note", "").strip(),
    )
    channel = _choice(Channel, fields.get("channel", ""), "how the code is passed on")
    approver = None
    approver_name = fields.get("approver", "").strip()
    if approver_name and vault.settings().four_eyes:
        approver = OperatorDirectory(vault).approve(
            approver_name, fields.get("approver_password", ""), fields.get("approver_code", "")
        )
    return RevealRequest(
        upn=upn,
        check=check,
        channel=channel,
        serial=fields.get("serial", "").strip() or None,
        override_reason=fields.get("override_reason", "").strip() or None,
        approver=approver,
    )


def _reveal(
    request: Request,
    vault: Vault,
    actor: Actor,
    alerts: AlertSink,
    upn: str,
    fields: dict[str, str],
) -> HTMLResponse:
    reveals: Reveals = request.app.state.reveal_queue
    try:
        # A callback without a number on file is the reveal service's refusal (audited as
        # reveal.refused), as on the CLI and the API.
        job = RevealJob(_request_from(vault, upn, fields), actor=actor)
        # Through the server's vault writer, like the API's reveals (we are in a worker thread).
        result = reveals.submit(job).result().result_or_raise(alerts)
    except OathdeskError as refused:
        return _form_page(
            request,
            vault,
            actor,
            upn,
            values=kept(fields),
            error=refused.message,
            status_code=status_for(refused),
        )
    response = render(request, "reveal_code.html", _code_context(result))
    response.headers.update(NO_STORE)
    return response


@router.post(
    "/users/{upn}/reveal", response_class=HTMLResponse, dependencies=[Depends(verify_csrf)]
)
async def reveal_post(
    request: Request,
    upn: str,
    vault: VaultDep,
    actor: ActorDep,
    alerts: AlertsDep,
) -> HTMLResponse:
    fields = await form_text(request)
    return await run_in_threadpool(_reveal, request, vault, actor, alerts, upn, fields)


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


def _code_context(result: RevealResult) -> dict[str, Any]:
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
