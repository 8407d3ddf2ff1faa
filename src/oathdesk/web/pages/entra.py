"""/entra (admin): Entra from the console. Upload the stock for self-service, as `oathdesk entra
push --stock` does: a preview first (the dry run, which says that each seed uploaded leaves the
vault for Microsoft), then the upload only after the admin confirms exactly that. And run
`oathdesk entra sync`, showing its result: what it applied, what it left for a person.

The services are the CLI's (services/entra_push.py, services/entra_sync.py); their Graph calls
run in the thread pool, never on the event loop, and hold the vault's lease as the CLI's do.
The last sync this server process ran is kept on the app to show on the page with all it
applied; otherwise the page shows the newest sync recorded in the vault (``entra.synced``: run by
the CLI, a housekeeping cycle, another server or worker), its counts and what it left for a
person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.services.entra_push import PushOptions, PushReport, push
from oathdesk.services.entra_reconcile import KINDS
from oathdesk.services.entra_session import open_session
from oathdesk.services.entra_sync import SyncResult, sync_entra
from oathdesk.services.overview import last_recorded_sync
from oathdesk.vault.models import utc_now
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import get_vault, render, verify_csrf
from oathdesk.web.pages.helpdesk_common import NO_STORE, AdminDep, VaultDep, form_text, status_for

router = APIRouter()

# What the admin confirms before the upload: the dry run's words (cli/entra.py says the same).
LEAVES_THE_VAULT = (
    "each seed uploaded leaves the vault for Microsoft's inventory, where any user who holds "
    "the token can self-assign it with a code off it"
)
SHOWN_ROWS = 200  # rows of a preview or an upload shown; the counts cover all of them


@dataclass(frozen=True)
class LastSync:
    result: SyncResult
    at: datetime
    by: str


def _last_sync(request: Request) -> LastSync | None:
    # Kept on the app (this server process), not in a module global: one per app.
    found: LastSync | None = getattr(request.app.state, "entra_last_sync", None)
    return found


def _page(
    request: Request,
    actor: Actor,
    *,
    report: PushReport | None = None,
    preview: bool = False,
    synced: LastSync | None = None,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    last = synced or _last_sync(request)
    # This process ran none: the newest one recorded (the CLI, housekeeping, another server).
    recorded = None if last is not None else last_recorded_sync(get_vault(request), actor)
    planned = [o for o in report.outcomes if o.result.startswith("would")] if report else []
    response = render(
        request,
        "entra.html",
        {
            "report": report,
            "preview": preview,
            "planned": len(planned),
            "shown_rows": SHOWN_ROWS,
            "leaves_the_vault": LEAVES_THE_VAULT,
            "last": last,
            "recorded": recorded,
            "just_synced": synced is not None,
            "kinds": KINDS,
            "error": error,
        },
        status_code=status_code,
    )
    response.headers.update(NO_STORE)
    return response


@router.get("/entra", response_class=HTMLResponse)
def entra_page(request: Request, actor: AdminDep) -> HTMLResponse:
    return _page(request, actor)


def _push_stock(request: Request, vault: Vault, actor: Actor, confirmed: bool) -> HTMLResponse:
    try:
        with open_session(vault, actor) as session:
            report = push(session, PushOptions(dry_run=not confirmed, stock=True))
    except OathdeskError as refused:
        return _page(request, actor, error=refused.message, status_code=status_for(refused))
    return _page(request, actor, report=report, preview=not confirmed)


@router.post("/entra/push-stock", dependencies=[Depends(verify_csrf)])
async def push_stock_post(request: Request, vault: VaultDep, actor: AdminDep) -> HTMLResponse:
    fields = await form_text(request)
    step = fields.get("step", "preview")
    if step not in ("preview", "upload"):
        refused = InvalidInput("choose to preview the upload or to upload after the preview")
        return _page(request, actor, error=refused.message, status_code=status_for(refused))
    if step == "upload" and fields.get("confirm") != "yes":
        refused = InvalidInput(
            "confirm that each seed uploaded leaves the vault for Microsoft (tick the box), "
            "or go back to the preview"
        )
        return _page(request, actor, error=refused.message, status_code=status_for(refused))
    return await run_in_threadpool(_push_stock, request, vault, actor, step == "upload")


def _sync(request: Request, vault: Vault, actor: Actor) -> HTMLResponse:
    try:
        with open_session(vault, actor) as session:
            result = sync_entra(session)
    except OathdeskError as refused:
        return _page(request, actor, error=refused.message, status_code=status_for(refused))
    synced = LastSync(result, utc_now(), actor.name)
    request.app.state.entra_last_sync = synced
    return _page(request, actor, synced=synced)


@router.post("/entra/sync", dependencies=[Depends(verify_csrf)])
async def sync_post(request: Request, vault: VaultDep, actor: AdminDep) -> HTMLResponse:
    return await run_in_threadpool(_sync, request, vault, actor)
