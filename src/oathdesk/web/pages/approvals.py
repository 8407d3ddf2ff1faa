"""A four-eyes reveal approved by a fresh Microsoft sign-in (services/sso_approval.py).

The requester fills the reveal form and presses "Approve with Microsoft"; the approver signs in
again at Entra in this browser; the shared redirect URL (/auth/callback, which hands approvals
here by their state) checks the sign-in and keeps the approved reveal under a cookie; the
requester's own session (SameSite=Strict: it comes back on a same-site step, the continue page)
then takes it, once, and sees the code in the POST response only.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.identity.errors import SsoRefused
from oathdesk.services.directory import reveal_form
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealRequest,
    VerificationMethod,
)
from oathdesk.services.reveal_queue import Reveals
from oathdesk.services.sso_approval import (
    finish_approval,
    start_approval,
    start_override_approval,
    take_approved,
)
from oathdesk.vault.operators import SignInRefused
from oathdesk.vault.sso import FLOW_LIFETIME
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import flash, get_config, get_vault, render, verify_csrf
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
from oathdesk.web.pages.signin_common import note_sso_failure, sso_throttled
from oathdesk.web.security import client_ip, is_secure

router = APIRouter()

APPROVAL_COOKIE = "oathdesk_sso_approval"


def _set_cookie(request: Request, response: Response, value: str) -> None:
    # Lax, path /: it must come back on the top-level redirect from Entra to /auth/callback
    # and then to the user's reveal page.
    response.set_cookie(
        APPROVAL_COOKIE,
        value,
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path="/",
        secure=is_secure(request, get_config(request)),
        httponly=True,
        samesite="lax",
    )


def _drop_cookie(response: Response) -> None:
    response.delete_cookie(APPROVAL_COOKIE, path="/", httponly=True, samesite="lax")


def _to_microsoft(request: Request, auth_uri: str, cookie: str) -> Response:
    # A page, not a 303: the console's CSP (form-action 'self') stops a form's POST that
    # redirects to another site, and the approval starts from a form.
    response = render(request, "approval_redirect.html", {"auth_uri": auth_uri})
    response.headers.update(NO_STORE)
    _set_cookie(request, response, cookie)
    return response


def _refused_form(
    request: Request,
    vault: Vault,
    actor: Actor,
    upn: str,
    fields: dict[str, str],
    error: str,
    status: int,
) -> HTMLResponse:
    return form_page(
        request, vault, actor, upn, values=kept(fields), error=error, status_code=status
    )


def _start(
    request: Request, vault: Vault, actor: Actor, upn: str, fields: dict[str, str]
) -> Response:
    try:
        # The same checks the reveal form makes before it asks anyone to approve.
        choice(VerificationMethod, fields.get("method", ""), "how the identity was verified")
        choice(Channel, fields.get("channel", ""), "how the code is passed on")
        if not fields.get("ticket", "").strip():
            raise InvalidInput("give the ticket reference of the call")
        reveal_form(vault, actor, upn).check_callback(fields.get("method", ""))
        fields = {
            **fields,
            "method": fields["method"].strip(),
            "channel": fields["channel"].strip(),
        }
        started = start_approval(vault, actor, upn, fields)
    except OathdeskError as refused:
        return _refused_form(
            request, vault, actor, upn, fields, refused.message, status_for(refused)
        )
    return _to_microsoft(request, started.auth_uri, started.cookie)


@router.post(
    "/users/{upn}/reveal/microsoft-approval",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
)
async def approval_start(request: Request, upn: str, vault: VaultDep, actor: ActorDep) -> Response:
    fields = await form_text(request)
    return await run_in_threadpool(_start, request, vault, actor, upn, fields)


def approval_callback(request: Request) -> Response:
    """/auth/callback for an approval (auth.py hands it over by the state's mark). No session
    here: the SameSite=Strict session cookie does not come with a redirect from Entra."""
    throttled = sso_throttled(request)
    if throttled is not None:
        _drop_cookie(throttled)
        return throttled
    vault = get_vault(request)
    params = dict(request.query_params.items())
    try:
        finished = finish_approval(
            vault,
            request.cookies.get(APPROVAL_COOKIE, ""),
            params,
            client=client_ip(request, get_config(request)),
        )
    except (SsoRefused, SignInRefused) as refused:
        note_sso_failure(request)
        response: Response = render(
            request,
            "error.html",
            {"title": "Approval refused", "message": refused.message},
            status_code=403,
        )
        _drop_cookie(response)
        return response
    if not finished.cookie:  # an override: recorded already
        response = render(
            request,
            "approval_recorded.html",
            {"next_path": finished.next_path, "until": finished.until},
        )
        _drop_cookie(response)
        return response
    response = render(request, "sso_continue.html", {"next_path": finished.next_path})
    _set_cookie(request, response, finished.cookie)
    return response


def _start_override(
    request: Request, vault: Vault, actor: Actor, upn: str, fields: dict[str, str]
) -> Response:
    try:
        started = start_override_approval(vault, actor, upn, ticket=fields.get("ticket", ""))
    except OathdeskError as refused:
        flash(request, f"not approved: {refused.message}", "error")
        return RedirectResponse(f"/users/{quote(upn, safe='@')}", status_code=303)
    return _to_microsoft(request, started.auth_uri, started.cookie)


@router.post("/users/{upn}/approve-reveal/microsoft", dependencies=[Depends(verify_csrf)])
async def override_start(request: Request, upn: str, vault: VaultDep, actor: ActorDep) -> Response:
    fields = await form_text(request)
    return await run_in_threadpool(_start_override, request, vault, actor, upn, fields)


@router.get("/users/{upn}/reveal/approved", response_class=HTMLResponse)
def approved_page(request: Request, upn: str, actor: ActorDep) -> HTMLResponse:
    response = render(request, "reveal_approved.html", {"upn": upn})
    response.headers.update(NO_STORE)
    return response


def _reveal_approved(
    request: Request, vault: Vault, actor: Actor, alerts: AlertsDep, upn: str
) -> Response:
    reveals: Reveals = request.app.state.reveal_queue
    fields: dict[str, str] = {}
    try:
        approved = take_approved(vault, request.cookies.get(APPROVAL_COOKIE, ""), actor, upn)
        fields = approved.fields
        job = RevealJob(
            RevealRequest(
                upn=upn,
                check=IdentityCheck(
                    VerificationMethod(fields["method"]), fields["ticket"], fields["note"]
                ),
                channel=Channel(fields["channel"]),
                serial=fields.get("serial") or None,
                override_reason=fields.get("override_reason") or None,
                approver=approved.approver,
            ),
            actor=actor,
        )
        result = reveals.submit(job).result().result_or_raise(alerts)
    except OathdeskError as refused:
        response: Response = _refused_form(
            request, vault, actor, upn, fields, refused.message, status_for(refused)
        )
    else:
        response = render(request, "reveal_code.html", code_context(result))
        response.headers.update(NO_STORE)
    _drop_cookie(response)
    return response


@router.post(
    "/users/{upn}/reveal/approved",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
)
def approved_reveal(
    request: Request, upn: str, vault: VaultDep, actor: ActorDep, alerts: AlertsDep
) -> Response:
    return _reveal_approved(request, vault, actor, alerts, upn)
