"""What every response and every form gets: security headers, the session cookie, CSRF checks,
where a request really comes from, an access log without secrets, and the sign-in rate limit.

Sessions, CSRF tokens and sign-in failures are stored in the vault database (see
``oathdesk.vault.console``), so several instances behind one load balancer agree on them.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oathdesk.errors import PermissionDenied, PolicyRefused
from oathdesk.vault.console import record_signin_failure, signin_failures_since
from oathdesk.vault.models import utc_now
from oathdesk.vault.vault import Vault
from oathdesk.web.config import WebConfig

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=()"
)
HSTS = "max-age=31536000"
BASE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
COOKIE_PLAIN = "oathdesk_session"
# The __Host- prefix makes the browser refuse the cookie unless it is Secure, has Path=/ and no
# Domain: a sibling sub-domain cannot plant or overwrite it.
COOKIE_SECURE = "__Host-oathdesk_session"

access_log = logging.getLogger("oathdesk.web.access")


class CsrfRefused(PermissionDenied):
    code = "csrf_refused"


class SignInThrottled(PolicyRefused):
    code = "sign_in_throttled"


def is_secure(request: Request, config: WebConfig) -> bool:
    """Served over TLS: our own flag, a direct https request, or a trusted proxy that says so."""
    # The scope's scheme, not request.url: building a URL object per request shows in the
    # API's benchmark, and the scheme is all this needs.
    if config.secure_cookies or request.scope.get("scheme") == "https":
        return True
    peer = request.client.host if request.client else ""
    if peer in config.trusted_proxies:
        return request.headers.get("x-forwarded-proto", "").strip().lower() == "https"
    return False


def client_ip(request: Request, config: WebConfig) -> str:
    """The caller's address; behind a trusted proxy, the address that proxy saw."""
    peer = request.client.host if request.client else "unknown"
    if peer in config.trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]  # the one our proxy appended; earlier hops are the client's word
    return peer


def cookie_name(request: Request, config: WebConfig) -> str:
    return COOKIE_SECURE if is_secure(request, config) else COOKIE_PLAIN


def set_session_cookie(
    response: Response, request: Request, config: WebConfig, value: str | None
) -> None:
    """Set (or, with ``value=None``, clear) the session cookie with the strictest flags."""
    secure = is_secure(request, config)
    name = COOKIE_SECURE if secure else COOKIE_PLAIN
    if value is None:
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")
        return
    response.set_cookie(name, value, path="/", secure=secure, httponly=True, samesite="strict")


def check_csrf(sent: object, expected: str | None) -> None:
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfRefused(
            "this form has expired or did not come from this console; reload the page and try again"
        )


# -- headers and the access log ------------------------------------------------------------------

# The one path that carries a bearer value: the first-admin set-up link.
_SECRET_PATH = re.compile(r"^(/setup/)[^/]+")


def loggable_path(path: str) -> str:
    """The path as written to the log: set-up tokens masked, never the query string."""
    return _SECRET_PATH.sub(r"\1<token>", path)


class SecurityMiddleware:
    """Pure ASGI (no per-request task as with ``BaseHTTPMiddleware``: the API is benchmarked):
    adds the headers, sets or clears the session cookie a page asked for, turns an unexpected
    exception into the 500 page, and writes the access log line."""

    def __init__(
        self, app: ASGIApp, config: WebConfig, internal_error: Callable[[Request], Response]
    ) -> None:
        self.app = app
        self.config = config
        self.internal_error = internal_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                self._add_headers(request, MutableHeaders(scope=message))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:
            # Only the type: an exception's message or traceback might quote what was typed.
            access_log.error("unexpected %s", type(error).__name__)
            if not response_started:
                await self.internal_error(request)(scope, receive, send_with_headers)
        access_log.info(
            "%s %s %s %d %.1fms",
            client_ip(request, self.config),
            request.method,
            loggable_path(scope["path"]),
            status,
            (time.perf_counter() - started) * 1000,
        )

    def _add_headers(self, request: Request, headers: MutableHeaders) -> None:
        for name, value in BASE_HEADERS.items():
            headers.setdefault(name, value)
        if request.scope["path"].startswith("/static/"):
            headers.setdefault("Cache-Control", "no-cache")
        else:
            headers["Cache-Control"] = "no-store"
        if is_secure(request, self.config):
            headers["Strict-Transport-Security"] = HSTS
        pending = request.scope.get("state", {}).get("session_cookie")
        if pending is not None:
            carrier = Response()
            set_session_cookie(carrier, request, self.config, pending or None)
            for raw_name, raw_value in carrier.raw_headers:
                if raw_name == b"set-cookie":
                    headers.append("set-cookie", raw_value.decode("latin-1"))


# -- sign-in rate limit --------------------------------------------------------------------------


def _subjects(ip: str, name: str) -> tuple[str, str]:
    return f"ip:{ip}", f"name:{name.strip().lower()}"


def check_signin_rate(vault: Vault, config: WebConfig, ip: str, name: str) -> None:
    """Refuse before any password is checked when an address or a name failed too often."""
    since = utc_now() - config.signin_window
    by_ip, by_name = _subjects(ip, name)
    minutes = max(1, int(config.signin_window / timedelta(minutes=1)))
    if signin_failures_since(vault, by_ip, since) >= config.signin_failures_per_ip:
        raise SignInThrottled(
            f"too many failed sign-ins from this address; wait {minutes} minutes and try again"
        )
    if name.strip() and signin_failures_since(vault, by_name, since) >= (
        config.signin_failures_per_name
    ):
        raise SignInThrottled(
            f"too many failed sign-ins for this name; wait {minutes} minutes and try again"
        )


def note_signin_failure(vault: Vault, config: WebConfig, ip: str, name: str) -> bool:
    """Count a failed sign-in; True when it made the address or the name reach its limit
    (the moment to raise an alert, once, rather than on every refused attempt after it).
    ``name`` empty (a refused Microsoft sign-in names nobody for sure): the address only."""
    by_ip, by_name = _subjects(ip, name)
    record_signin_failure(vault, [by_ip, by_name] if name.strip() else [by_ip])
    since = utc_now() - config.signin_window
    return signin_failures_since(vault, by_ip, since) == config.signin_failures_per_ip or (
        bool(name.strip())
        and signin_failures_since(vault, by_name, since) == config.signin_failures_per_name
    )
