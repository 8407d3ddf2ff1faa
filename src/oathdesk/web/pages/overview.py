"""/overview: tokens per state and how long each has waited, what waits too long, seeds due for
purge, and Entra's view beside the vault's (services/overview.py computes; this renders)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oathdesk.services.overview import overview
from oathdesk.timetext import duration_text
from oathdesk.web.deps import render
from oathdesk.web.pages.helpdesk_common import ActorDep, VaultDep

router = APIRouter()


@router.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request, vault: VaultDep, actor: ActorDep) -> HTMLResponse:
    figures = overview(vault, actor)
    waited = {
        figure.state: duration_text((figures.now - figure.oldest_since).total_seconds())
        for figure in figures.states
        if figure.oldest_since is not None
    }
    return render(request, "overview.html", {"o": figures, "waited": waited})
