"""/export (admin): seeds out for Entra (CSV or Graph JSON) or a QR sheet for burning.

The download is made by ``services.exporter`` (admin only, one audit record naming every
token), sent as an attachment that no cache may keep; nothing is written on the server.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.services.exporter import EXPORTS, open_export
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import render, verify_csrf
from oathdesk.web.pages.helpdesk_common import NO_STORE, AdminDep, VaultDep, form_text, status_for

router = APIRouter()

# kind -> (file extension, media type, what it is for)
DOWNLOADS = {
    "entra-csv": (
        "csv",
        "text/csv; charset=utf-8",
        "Classic tokens assigned to users, for Entra admin center > Authentication methods > "
        "Hardware OATH tokens > Import",
    ),
    "graph-json": (
        "json",
        "application/json",
        "Tokens in stock, assigned or burned, as the body of Microsoft Graph's bulk upload",
    ),
    "qr-sheet": (
        "html",
        "text/html; charset=utf-8",
        "A printable sheet of QR codes for burning programmable tokens (opens offline)",
    ),
}
HEADERS = ("time interval", "timeinterval")


def _page(request: Request, *, error: str = "", status_code: int = 200) -> HTMLResponse:
    return render(
        request,
        "export.html",
        {"downloads": DOWNLOADS, "kinds": EXPORTS, "headers": HEADERS, "error": error},
        status_code=status_code,
    )


@router.get("/export", response_class=HTMLResponse)
def export_page(request: Request, actor: AdminDep) -> HTMLResponse:
    return _page(request)


def _download(request: Request, vault: Vault, actor: Actor, fields: dict[str, str]) -> Response:
    kind = fields.get("kind", "")
    header = fields.get("header", HEADERS[0])
    try:
        if kind not in EXPORTS:
            raise InvalidInput(f"choose what to export: {', '.join(EXPORTS)}")
        if header not in HEADERS:
            raise InvalidInput("choose the header spelling: 'time interval' or 'timeinterval'")
        # Audited here, before the first byte; an Entra CSV then streams as it is decrypted.
        stream = open_export(vault, actor, kind, header_spelling=header)
    except OathdeskError as refused:
        return _page(request, error=refused.message, status_code=status_for(refused))
    extension, media_type, _ = DOWNLOADS[kind]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"oathdesk-{kind}-{stamp}.{extension}"
    headers = {
        **NO_STORE,
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Oathdesk-Tokens": str(stream.count),
    }
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in stream.chunks), media_type=media_type, headers=headers
    )


@router.post("/export", dependencies=[Depends(verify_csrf)])
async def export_post(
    request: Request,
    vault: VaultDep,
    actor: AdminDep,
) -> Response:
    fields = await form_text(request)
    return await run_in_threadpool(_download, request, vault, actor, fields)
