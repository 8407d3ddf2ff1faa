"""``/export/{kind}``: seeds out for Entra (CSV, Graph JSON) or a QR sheet for burning.

Admin only and audited (one record naming every token), through the CLI's export service. The
answer is a download (``Content-Disposition: attachment``, ``Cache-Control: no-store``): it holds
secrets, so store it nowhere and destroy it after the upload.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from oathdesk.services.exporter import open_export
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses

router = APIRouter(tags=["import and export"], route_class=ApiRoute)

ExportKind = Literal["entra-csv", "graph-json", "qr-sheet"]
MEDIA = {"entra-csv": "text/csv", "graph-json": "application/json", "qr-sheet": "text/html"}
SUFFIX = {"entra-csv": "csv", "graph-json": "json", "qr-sheet": "html"}


class ExportIn(BaseModel):
    header: Literal["time interval", "timeinterval"] = "time interval"


@router.post(
    "/export/{kind}",
    response_class=Response,
    responses={
        200: {
            "description": "the export (holds secrets)",
            "content": {media: {"schema": {"type": "string"}} for media in MEDIA.values()},
        },
        **responses(403, 404),
    },
)
async def export(
    kind: ExportKind, actor: ApiActor, vault: VaultDep, body: ExportIn | None = None
) -> Response:
    """Export the tokens ready for ``kind`` (admin); the token count is in X-Oathdesk-Count.

    The export is audited before the answer starts; an Entra CSV then streams as its secrets
    are read and decrypted (a refusal comes before, as an ordinary error)."""
    require(actor, Permission.EXPORT_SECRETS)
    header = body.header if body else "time interval"
    stream = await run_in_threadpool(open_export, vault, actor, kind, header_spelling=header)
    # A sync iterator: Starlette runs each step in its thread pool, off the event loop.
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in stream.chunks),
        media_type=MEDIA[kind],
        headers={
            "Content-Disposition": f'attachment; filename="oathdesk-{kind}.{SUFFIX[kind]}"',
            "Cache-Control": "no-store",
            "X-Oathdesk-Count": str(stream.count),
        },
    )
