"""The application factory: one open vault, the security middleware, every page and the API.

Errors become pages (or JSON under /api/): an ``OathdeskError`` shows its one-line message, an
unknown path the 404 page, anything unexpected a generic 500 page. Never a traceback.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from oathdesk.errors import (
    OathdeskError,
)
from oathdesk.services.alerts import AlertSink
from oathdesk.services.audit_checks import AuditChecks
from oathdesk.services.reveal_queue import RevealQueue, Reveals
from oathdesk.services.reveal_throttle import KeyThrottle
from oathdesk.vault.console import SessionStore
from oathdesk.vault.vault import Vault
from oathdesk.web import deps
from oathdesk.web.config import WebConfig
from oathdesk.web.import_jobs import ImportJobs
from oathdesk.web.pages.helpdesk_common import status_for
from oathdesk.web.render import render_page
from oathdesk.web.security import SecurityMiddleware

PAGES = (
    "auth",
    "operators",
    "home",
    "overview",
    "housekeeping",
    "search",
    "users",
    "approvals",
    "reveal",
    "tokens",
    "imports",
    "exports",
    "entra",
    "audit",
    "drift",
    "settings",
    "toolset",
)
STATIC = Path(__file__).resolve().parent / "static"


def page_modules() -> list[ModuleType]:
    """The page modules (each exposes ``router``), in the order their routes are matched."""
    return [importlib.import_module(f"oathdesk.web.pages.{name}") for name in PAGES]


def create_app(config: WebConfig, *, reveals: Reveals | None = None) -> FastAPI:
    """The application on its own open vault. ``reveals``: where its reveals run (a server of
    several workers passes its vault writer process's); by default a writer thread here."""
    vault = Vault.open(config.location, config.master_key)
    if reveals is None:
        reveals = RevealQueue(vault, KeyThrottle(config.api_reveals_per_minute))
    jobs_dir = config.import_jobs_dir or Path(tempfile.mkdtemp(prefix="oathdesk-imports-"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if config.request_threads is not None:
            import anyio.to_thread

            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = config.request_threads
        yield
        reveals.close()  # the reveals already handed over still run and commit
        vault.close()
        if config.import_jobs_dir is None:
            shutil.rmtree(jobs_dir, ignore_errors=True)

    app = FastAPI(
        title="oathdesk",
        docs_url=None,  # the stock docs pages load scripts from a CDN; the CSP forbids that
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.vault = vault
    app.state.alerts = AlertSink(config.alerts, vault)  # a failed alert is audited
    app.state.reveal_queue = reveals
    app.state.import_jobs = ImportJobs(jobs_dir)
    app.state.audit_checks = AuditChecks(vault)
    app.state.sessions = SessionStore(
        vault, idle=config.session_idle, lifetime=config.session_lifetime
    )
    app.add_middleware(SecurityMiddleware, config=config, internal_error=internal_error)
    from oathdesk.web import api

    # The API first: routes are matched in order, and a reveal through the API should not be
    # tried against every page's route before its own (no page lives under /api/).
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in page_modules():
        app.include_router(module.router, include_in_schema=False)
    _install_error_pages(app, api)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _json_error(api: ModuleType, error: OathdeskError, status: int) -> Response:
    custom = getattr(api, "error_response", None)  # the API may define its own error bodies
    if callable(custom):
        response: Response = custom(error)
        return response
    return JSONResponse({"error": {"code": error.code, "message": error.message}}, status)


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return deps.render(
        request, "error.html", {"title": title, "message": message}, status_code=status
    )


def _install_error_pages(app: FastAPI, api: ModuleType) -> None:
    @app.exception_handler(deps.SignInRequired)
    async def to_signin(request: Request, _error: Exception) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"error": {"code": "unauthenticated", "message": "sign in first"}}, 401
            )
        target = "/signin"
        if request.method == "GET" and request.url.path not in ("/", "/signin"):
            target += "?next=" + quote(request.url.path, safe="/")
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(OathdeskError)
    async def oathdesk_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, OathdeskError)
        status = status_for(error, otherwise=400)
        if _is_api(request):
            return _json_error(api, error, status)
        titles = {403: "Not allowed", 404: "Not found", 429: "Too many attempts"}
        return _error_page(request, status, titles.get(status, "That did not work"), error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if _is_api(request):
            return JSONResponse(
                {
                    "error": {
                        "code": "not_found" if error.status_code == 404 else "http_error",
                        "message": str(error.detail),
                    }
                },
                error.status_code,
                headers=error.headers,
            )
        if error.status_code == 404:
            return _error_page(request, 404, "Not found", "There is no such page here.")
        if error.status_code == 405:
            return _error_page(request, 405, "Not allowed", "This page does not take that.")
        return _error_page(request, error.status_code, "That did not work", str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        fields = sorted({str(e.get("loc", ("", "?"))[-1]) for e in error.errors()})
        message = f"the request is missing or has invalid fields: {', '.join(fields)}"
        if _is_api(request):
            return JSONResponse({"error": {"code": "invalid_input", "message": message}}, 422)
        return _error_page(request, 400, "That did not work", message)


INTERNAL_ERROR = "an unexpected internal error happened; nothing was shown or changed. Try again"


def internal_error(request: Request) -> Response:
    """The answer to an unexpected exception (the middleware logs only its type)."""
    if _is_api(request):
        return JSONResponse({"error": {"code": "internal", "message": INTERNAL_ERROR}}, 500)
    page = render_page(
        "error.html",
        {"title": "Internal error", "message": INTERNAL_ERROR, "actor": None, "nav": []},
    )
    return HTMLResponse(page, status_code=500)
