"""/users/{upn}/reveal: the identity-verification form, then the emergency code.

The code exists only in the body of the POST response (no-store): never in a URL, a redirect,
a flash message or a log line, and the seed never leaves the server. Policy (identity record,
channel, limits, four-eyes, state rules, the audit record) is all in ``services.reveal``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import OathdeskError
from oathdesk.services.alerts import AlertSink
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealRequest,
    VerificationMethod,
)
from oathdesk.services.reveal_queue import Reveals
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
from oathdesk.web.pages.reveal_common import choice, code_context, form_page

router = APIRouter()


@router.get("/users/{upn}/reveal", response_class=HTMLResponse)
def reveal_form_page(
    request: Request,
    upn: str,
    vault: VaultDep,
    actor: ActorDep,
) -> HTMLResponse:
    return form_page(request, vault, actor, upn)


def _request_from(vault: Vault, upn: str, fields: dict[str, str]) -> RevealRequest:
    check = IdentityCheck(
        choice(VerificationMethod, fields.get("method", ""), "how the identity was verified"),
        fields.get("ticket", "").strip(),
        fields.get("note", "").strip(),
    )
    channel = choice(Channel, fields.get("channel", ""), "how the code is passed on")
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
        return form_page(
            request,
            vault,
            actor,
            upn,
            values=kept(fields),
            error=refused.message,
            status_code=status_for(refused),
        )
    response = render(request, "reveal_code.html", code_context(result))
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
