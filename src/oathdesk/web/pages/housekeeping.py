"""/housekeeping: the last housekeeping cycles (newest first, a page at a time) with what each
step did or why it failed, and when the next cycle is due."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oathdesk.services.housekeeping import describe_interval, status
from oathdesk.web.deps import render
from oathdesk.web.pages.helpdesk_common import ActorDep, VaultDep

router = APIRouter()

PAGE_SIZE = 20


@router.get("/housekeeping", response_class=HTMLResponse)
def housekeeping_page(
    request: Request, vault: VaultDep, actor: ActorDep, before: int | None = None
) -> HTMLResponse:
    shown = status(vault, actor, limit=PAGE_SIZE, before=before)
    return render(
        request,
        "housekeeping.html",
        {
            "status": shown,
            "schedule": describe_interval(shown.interval) if shown.next_due else "",
            "first_page": before is None,
        },
    )
