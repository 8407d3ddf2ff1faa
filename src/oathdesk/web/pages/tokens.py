"""/tokens/{serial}: one token; /tokens/{serial}/{action}: its lifecycle actions.

GET on an action shows its form (for lost, revoke, retire and purge: a confirmation page that
works without JavaScript); POST does it through ``services.token_actions`` and goes back to the
user's page with a message. A refusal shows the form again with the service's one-line reason.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import OathdeskError
from oathdesk.services.directory import token_overview
from oathdesk.services.token_actions import ACTIONS, action_spec, perform
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import flash, render, verify_csrf
from oathdesk.web.pages.helpdesk_common import (
    ActorDep,
    VaultDep,
    form_text,
    kept,
    short_time,
    status_for,
)

router = APIRouter()


@router.get("/tokens/{serial}", response_class=HTMLResponse)
def token_page(
    request: Request,
    serial: str,
    vault: VaultDep,
    actor: ActorDep,
) -> HTMLResponse:
    overview = token_overview(vault, actor, serial)
    return render(
        request,
        "token.html",
        {"overview": overview, "actions": ACTIONS, "short_time": short_time},
    )


def _action_form(
    request: Request,
    vault: Vault,
    actor: Actor,
    serial: str,
    action: str,
    *,
    values: dict[str, str] | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    spec = action_spec(action)
    overview = token_overview(vault, actor, serial)
    return render(
        request,
        "token_action.html",
        {
            "token": overview.view.token,
            "spec": spec,
            "allowed": action in overview.view.actions,
            "values": values or {},
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/tokens/{serial}/{action}", response_class=HTMLResponse)
def token_action_form(
    request: Request,
    serial: str,
    action: str,
    vault: VaultDep,
    actor: ActorDep,
) -> HTMLResponse:
    return _action_form(request, vault, actor, serial, action)


@router.post("/tokens/{serial}/{action}", dependencies=[Depends(verify_csrf)])
async def token_action(
    request: Request,
    serial: str,
    action: str,
    vault: VaultDep,
    actor: ActorDep,
) -> Response:
    fields = await form_text(request)
    return await run_in_threadpool(_do_action, request, vault, actor, serial, action, fields)


def _do_action(
    request: Request, vault: Vault, actor: Actor, serial: str, action: str, fields: dict[str, str]
) -> Response:
    try:
        outcome = perform(vault, actor, serial, action, fields)
    except OathdeskError as refused:
        return _action_form(
            request,
            vault,
            actor,
            serial,
            action,
            values=kept(fields),
            error=refused.message,
            status_code=status_for(refused),
        )
    flash(request, outcome.message, "info" if outcome.ok else "error")
    token = outcome.token
    target = (
        f"/users/{quote(token.upn, safe='@')}" if token.upn else f"/tokens/{quote(token.serial)}"
    )
    return RedirectResponse(target, status_code=303)
