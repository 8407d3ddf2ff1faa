"""/toolset: the in-browser TOTP toolset (codes, QR code, hex <-> base32, new random seeds).

Open to anyone who can reach the console, signed in or not: the page is static, everything on it
is computed by the browser (static/toolset*.js with WebCrypto), and what is typed there is never
sent back, so there is nothing here to protect and a helpdesk can use it from any desk. The
server only serves the template; it never sees a seed from this page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oathdesk.web.deps import render

router = APIRouter()


@router.get("/toolset", response_class=HTMLResponse)
def toolset(request: Request) -> HTMLResponse:
    response = render(request, "toolset.html", {})
    # The page holds what the operator typed only in memory; keep it out of shared caches too.
    response.headers["Cache-Control"] = "no-store"
    return response
