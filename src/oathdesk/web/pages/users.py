"""/users/{upn}: the user, their tokens (state, shipping, drift) with the actions each allows,
and the recent audit events about them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oathdesk.services.directory import user_overview
from oathdesk.services.token_actions import ACTIONS
from oathdesk.web.deps import render
from oathdesk.web.pages.helpdesk_common import ActorDep, VaultDep, short_time

router = APIRouter()


@router.get("/users/{upn}", response_class=HTMLResponse)
def user_page(
    request: Request,
    upn: str,
    vault: VaultDep,
    actor: ActorDep,
) -> HTMLResponse:
    overview = user_overview(vault, actor, upn)
    return render(
        request,
        "user.html",
        {"overview": overview, "actions": ACTIONS, "short_time": short_time},
    )
