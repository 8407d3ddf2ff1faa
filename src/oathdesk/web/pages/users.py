"""/users/{upn}: the user, their tokens (state, shipping, drift) with the actions each allows,
and the recent audit events about them; /users/{upn}/edit: their name, phone number and notes."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import OathdeskError
from oathdesk.people import phone_text
from oathdesk.services import sso
from oathdesk.services.directory import user_overview
from oathdesk.services.reveal_override import approve_one_more_reveal
from oathdesk.services.token_actions import ACTIONS
from oathdesk.vault.vault import Actor, User, Vault
from oathdesk.web.deps import flash, render, verify_csrf
from oathdesk.web.pages.helpdesk_common import (
    ActorDep,
    AdminDep,
    VaultDep,
    form_text,
    short_time,
    status_for,
)

router = APIRouter()


@router.get("/users/{upn}", response_class=HTMLResponse)
def user_page(
    request: Request,
    upn: str,
    vault: VaultDep,
    actor: ActorDep,
    events: str = "",
) -> HTMLResponse:
    overview = user_overview(vault, actor, upn, events_cursor=events or None)
    return render(
        request,
        "user.html",
        {
            "overview": overview,
            "actions": ACTIONS,
            "short_time": short_time,
            # An admin who signs in with Microsoft confirms an override with a fresh sign-in.
            "sso_on": overview.can_approve and sso.enabled_settings(vault) is not None,
        },
    )


def _edit_page(
    request: Request,
    user: User,
    values: dict[str, str],
    *,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "user_edit.html",
        {"user": user, "values": values, "error": error},
        status_code=status_code,
    )


@router.get("/users/{upn}/edit", response_class=HTMLResponse)
def user_edit_form(request: Request, upn: str, vault: VaultDep, actor: AdminDep) -> HTMLResponse:
    user = vault.get_user(upn)
    values = {
        "display_name": user.display_name,
        "phone": phone_text(user.phone),
        "notes": user.notes,
    }
    return _edit_page(request, user, values)


@router.post("/users/{upn}/edit", dependencies=[Depends(verify_csrf)])
async def user_edit(request: Request, upn: str, vault: VaultDep, actor: AdminDep) -> Response:
    fields = await form_text(request)
    return await run_in_threadpool(_edit, request, vault, actor, upn, fields)


def _edit(
    request: Request, vault: Vault, actor: Actor, upn: str, fields: dict[str, str]
) -> Response:
    values = {key: fields.get(key, "") for key in ("display_name", "phone", "notes")}
    try:
        user = vault.update_user(actor, upn, **values)
    except OathdeskError as refused:
        return _edit_page(
            request,
            vault.get_user(upn),
            values,
            error=refused.message,
            status_code=status_for(refused),
        )
    flash(request, f"saved {user.upn}: name, phone number and notes")
    return RedirectResponse(f"/users/{quote(user.upn, safe='@')}", status_code=303)


@router.post("/users/{upn}/approve-reveal", dependencies=[Depends(verify_csrf)])
async def approve_reveal(request: Request, upn: str, vault: VaultDep, actor: AdminDep) -> Response:
    fields = await form_text(request)
    return await run_in_threadpool(_approve, request, vault, actor, upn, fields)


def _approve(
    request: Request, vault: Vault, actor: Actor, upn: str, fields: dict[str, str]
) -> Response:
    user = vault.get_user(upn)
    try:
        until = approve_one_more_reveal(
            vault,
            actor,
            user.upn,
            ticket=fields.get("ticket", ""),
            password=fields.get("password", ""),
            code=fields.get("code", ""),
            client=request.client.host if request.client else None,
        )
    except OathdeskError as refused:
        flash(request, f"not approved: {refused.message}", "error")
    else:
        flash(
            request,
            f"approved: one more code for {user.upn} beyond the limit, by another operator, "
            f"until {until:%H:%M:%S} UTC",
        )
    return RedirectResponse(f"/users/{quote(user.upn, safe='@')}", status_code=303)
