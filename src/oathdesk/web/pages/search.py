"""/search?q=: users by UPN or name, tokens by serial or tracking reference (partial, any case),
a page of each; "more" links carry a cursor for each list (``users_after``, ``tokens_after``)."""

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
    users_after: str = "",
    tokens_after: str = "",
) -> HTMLResponse:
    try:
        result = search(
            vault, actor, q, users_after=users_after or None, tokens_after=tokens_after or None
        )
    except OathdeskError as refused:
        return render(
            request,
            "search.html",
            {"result": SearchResult(q, [], []), "query": q, "error": refused.message},
            status_code=status_for(refused),
        )
    shown = {"result": result, "query": q, "error": ""}
    shown |= {"users_after": users_after, "tokens_after": tokens_after}
    return render(request, "search.html", shown)
