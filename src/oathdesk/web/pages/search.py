"""/search?q=: users by UPN or name, tokens by serial or tracking reference (partial, any case)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oathdesk.errors import OathdeskError
from oathdesk.services.directory import SearchResult, search
from oathdesk.web.deps import render
from oathdesk.web.pages.helpdesk_common import ActorDep, VaultDep, status_for

router = APIRouter()


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    vault: VaultDep,
    actor: ActorDep,
    q: str = "",
) -> HTMLResponse:
    try:
        result = search(vault, actor, q)
    except OathdeskError as refused:
        return render(
            request,
            "search.html",
            {"result": SearchResult(q, [], []), "query": q, "error": refused.message},
            status_code=status_for(refused),
        )
    return render(request, "search.html", {"result": result, "query": q, "error": ""})
