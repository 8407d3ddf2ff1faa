"""Request dependencies every page uses: the vault, who is signed in, CSRF, rendering, flashes.

Pages declare what they need (``actor: Actor = Depends(current_actor)``,
``dependencies=[Depends(verify_csrf)]``) and call services or the vault; they never touch SQL.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from oathdesk.errors import PermissionDenied
from oathdesk.services.alerts import AlertSink
from oathdesk.vault.console import Session, SessionStore
from oathdesk.vault.models import Actor
from oathdesk.vault.roles import Permission, allowed
from oathdesk.vault.vault import Vault
from oathdesk.web import render as rendering
from oathdesk.web.config import WebConfig
from oathdesk.web.security import check_csrf, cookie_name

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInRequired(Exception):
    """Raised by ``current_actor``; the app answers with a redirect to /signin."""


class AdminOnly(PermissionDenied):
    code = "forbidden"


def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def get_alerts(request: Request) -> AlertSink:
    alerts: AlertSink = request.app.state.alerts
    return alerts


def get_config(request: Request) -> WebConfig:
    config: WebConfig = request.app.state.config
    return config


def get_sessions(request: Request) -> SessionStore:
    sessions: SessionStore = request.app.state.sessions
    return sessions


# -- sessions ------------------------------------------------------------------------------------


def load_session(request: Request) -> Session | None:
    """The request's session (from its cookie), looked up once per request."""
    if not hasattr(request.state, "session"):
        token = request.cookies.get(cookie_name(request, get_config(request)), "")
        request.state.session = get_sessions(request).load(token) if token else None
    session: Session | None = request.state.session
    return session


def ensure_session(request: Request) -> Session:
    """The request's session, starting an anonymous one (for a form's CSRF token) if needed."""
    session = load_session(request)
    if session is None:
        token, session = get_sessions(request).create(None)
        start_session(request, token, session)
    return session


def start_session(request: Request, token: str, session: Session) -> None:
    """Use ``session`` from now on; the response sets its cookie."""
    request.state.session = session
    request.state.session_cookie = token


def end_session(request: Request) -> None:
    """Delete the request's session and clear its cookie."""
    session = load_session(request)
    if session is not None:
        get_sessions(request).delete(session.id_hash)
    request.state.session = None
    request.state.session_cookie = ""


def signed_in_actor(request: Request) -> Actor | None:
    session = load_session(request)
    if session is None or session.operator is None or session.role is None:
        return None
    return Actor(session.operator, session.role)


def current_actor(request: Request) -> Actor:
    """The signed-in operator; anyone else is sent to /signin."""
    actor = signed_in_actor(request)
    if actor is None:
        raise SignInRequired()
    return actor


def require_admin(actor: Actor = Depends(current_actor)) -> Actor:  # noqa: B008
    if actor.role != "admin":
        raise AdminOnly(f"{actor.name} ({actor.role}) may not open this page; ask an admin")
    return actor


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing request whose form lacks this session's CSRF token."""
    if request.method not in STATE_CHANGING:
        return
    form = await request.form()
    session = load_session(request)
    check_csrf(form.get("csrf_token"), session.csrf_token if session else None)


# -- rendering -----------------------------------------------------------------------------------


class _LazyCsrfToken:
    """Starts a session only when a template actually prints a form's CSRF token."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def __str__(self) -> str:
        return ensure_session(self._request).csrf_token

    def __html__(self) -> str:
        return str(self)


# (label, path, permission needed or None for every signed-in operator)
NAV: tuple[tuple[str, str, Permission | None], ...] = (
    ("Home", "/", None),
    ("Overview", "/overview", Permission.LOOK_UP),
    ("Search", "/search", Permission.LOOK_UP),
    ("Drift", "/drift", Permission.LOOK_UP),
    ("Import", "/import", Permission.MANAGE_TOKENS),
    ("Export", "/export", Permission.EXPORT_SECRETS),
    ("Entra", "/entra", Permission.MANAGE_TOKENS),
    ("Audit", "/audit", Permission.READ_AUDIT),
    ("Housekeeping", "/housekeeping", Permission.READ_AUDIT),
    ("Settings", "/settings", Permission.SETTINGS),
    ("Operators", "/operators", Permission.MANAGE_OPERATORS),
    ("Toolset", "/toolset", None),
)


def nav_for(actor: Actor | None) -> list[tuple[str, str]]:
    if actor is None:
        return [("Toolset", "/toolset")]
    return [
        (label, path)
        for label, path, permission in NAV
        if permission is None or allowed(actor.role, permission)
    ]


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page that extends base.html, with the actor, CSRF token, flashes and nav."""
    actor = signed_in_actor(request)
    session = load_session(request)
    flashes = (
        get_sessions(request).pop_flash(session.id_hash)
        if session and _flash_waiting(request, session)
        else []
    )
    full = {
        "actor": actor,
        "csrf_token": _LazyCsrfToken(request),
        "flashes": flashes,
        "nav": nav_for(actor),
        "current_path": request.url.path,
        **context,
    }
    return HTMLResponse(rendering.render_page(template, full), status_code=status_code)


def flash(request: Request, message: str, kind: str = "info") -> None:
    """A message shown on the next page this browser renders (after a redirect)."""
    session = ensure_session(request)
    get_sessions(request).push_flash(session.id_hash, message, kind)
    request.state.flash_pushed = True


def _flash_waiting(request: Request, session: Session) -> bool:
    """Whether the session may hold messages to show: some were stored when this request read
    it, or this request stored one since. Otherwise render skips reading them again (a
    statement on every page); one another tab stores meanwhile shows on the next page, as it
    would had it come a moment later."""
    return session.flash_waiting or bool(getattr(request.state, "flash_pushed", False))
