"""Sign-in (name, password, the operator's own TOTP), sign-out, and the first admin's set-up.

Sign-in replaces the browser's session with a new one (a fixed session id cannot be planted),
is rate-limited per client address and per name in the vault database, and says the same thing
for every kind of failure. The set-up link creates the first admin once, then shows the admin's
TOTP QR code and asks for a first code, which is also their first sign-in.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from oathdesk.errors import InvalidInput
from oathdesk.identity.errors import SsoRefused
from oathdesk.services import sso
from oathdesk.services.sso_approval import is_approval
from oathdesk.vault.console import (
    SETUP_LINK_REFUSED,
    SetupLinkInvalid,
    audit_signin_throttled,
    consume_setup_token,
    has_operators,
    setup_token_usable,
)
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import ANONYMOUS, AccountLocked, OperatorDirectory, SignInRefused
from oathdesk.vault.operators import password_problem as vault_password_problem
from oathdesk.vault.sso import FLOW_LIFETIME
from oathdesk.web.deps import (
    end_session,
    ensure_session,
    flash,
    get_alerts,
    get_config,
    get_sessions,
    get_vault,
    load_session,
    render,
    signed_in_actor,
    start_session,
    verify_csrf,
)
from oathdesk.web.pages.approvals import approval_callback
from oathdesk.web.pages.signin_common import note_sso_failure, signin_page, sso_throttled
from oathdesk.web.render import enrolment_view
from oathdesk.web.security import (
    check_signin_rate,
    client_ip,
    is_secure,
    note_signin_failure,
)

router = APIRouter()

SETUP_ACTOR = Actor("setup-link", "admin")
FormText = Annotated[str, Form()]


def safe_next(path: str) -> str:
    """Only a local path: an open redirect would let a phishing link bounce through us."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/"


def password_problem(name: str, password: str, repeated: str | None = None) -> str | None:
    """The vault's password policy, plus the form's "type it twice" check."""
    problem = vault_password_problem(name, password)
    if problem is None and repeated is not None and repeated != password:
        return "the two passwords differ; type the same one twice"
    return problem


def _sign_in(request: Request, name: str, password: str, code: str) -> Actor:
    """Throttle, then check all three; a failure is counted against the address and the name.
    The break-glass policy (while sign-in with Entra is on) is checked by the vault."""
    vault, config = get_vault(request), get_config(request)
    ip = client_ip(request, config)
    check_signin_rate(vault, config, ip, name)
    try:
        actor = OperatorDirectory(vault).authenticate(
            name,
            password,
            code.replace(" ", ""),
            local_policy=sso.local_policy(vault).value,
            client=ip,
        )
    except SignInRefused:
        if note_signin_failure(vault, config, ip, name):
            # Names only what and where: never the password or code that were tried.
            audit_signin_throttled(vault, ANONYMOUS, ip=ip, name=name)
            get_alerts(request).emit(
                "console.signin_throttled", client=ip, operator=name.strip()[:128]
            )
        raise
    # A new session id at sign-in: whatever id the browser had before is worthless now.
    end_session(request)
    token, session = get_sessions(request).create(actor.name)
    start_session(request, token, session)
    return actor


@router.get("/signin")
def signin_form(request: Request, next: str = "/") -> Response:
    if signed_in_actor(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    if not has_operators(get_vault(request)):
        flash(
            request,
            "This console has no operator yet: open the set-up link that "
            "`oathdesk serve` printed on the server.",
            "warning",
        )
    return signin_page(request, next_path=safe_next(next))


@router.post("/signin", dependencies=[Depends(verify_csrf)])
def signin(
    request: Request,
    name: FormText,
    password: FormText,
    code: FormText,
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        actor = _sign_in(request, name, password, code)
    except SignInRefused as refused:
        return signin_page(
            request,
            error=refused.message,
            name=name,
            next_path=safe_next(next),
            status=401,
            # A locked account's owner is told when to try again, in their own zone.
            retry_at=refused.until if isinstance(refused, AccountLocked) else None,
        )
    flash(request, f"Signed in as {actor.name} ({actor.role}).", "success")
    return RedirectResponse(safe_next(next), status_code=303)


# -- sign-in with Microsoft (Entra ID) ---------------------------------------------------------

# The flow cookie ties Entra's answer to the browser that asked. SameSite=Lax, not Strict like
# the session's: the answer arrives as a cross-site top-level GET, which Lax cookies accompany.
SSO_COOKIE = "oathdesk_sso_flow"
SSO_CALLBACK = "/auth/callback"


@router.get("/auth/microsoft")
def sso_start(request: Request, next: str = "/") -> Response:
    throttled = sso_throttled(request)
    if throttled is not None:
        return throttled
    started = sso.start_sign_in(get_vault(request), safe_next(next))
    response = RedirectResponse(started.auth_uri, status_code=303)
    response.set_cookie(
        SSO_COOKIE,
        started.cookie,
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path=SSO_CALLBACK,
        secure=is_secure(request, get_config(request)),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(SSO_CALLBACK)
def sso_callback(request: Request) -> Response:
    vault = get_vault(request)
    params = dict(request.query_params.items())
    if is_approval(params):  # one redirect URL for both: a four-eyes approval's fresh sign-in
        return approval_callback(request)
    cookie = request.cookies.get(SSO_COOKIE, "")
    throttled = sso_throttled(request)
    if throttled is not None:
        response = throttled
    else:
        try:
            actor, next_path = sso.finish_sign_in(
                vault, cookie, params, client=client_ip(request, get_config(request))
            )
        except (SsoRefused, SignInRefused) as refused:
            note_sso_failure(request)
            response = signin_page(request, error=refused.message, status=403)
        else:
            response = _sso_signed_in(request, actor, next_path)
    response.delete_cookie(SSO_COOKIE, path=SSO_CALLBACK, httponly=True, samesite="lax")
    return response


def _sso_signed_in(request: Request, actor: Actor, next_path: str) -> Response:
    # Exactly as a local sign-in: a new session id, the same timeouts and CSRF.
    end_session(request)
    token, session = get_sessions(request).create(actor.name)
    start_session(request, token, session)
    # A page, not a redirect: after a redirect chain that began at Entra (another site),
    # the browser would withhold the SameSite=Strict session cookie; a step the page
    # takes itself is same-site. The flash comes after it, for the page it leads to.
    response = render(request, "sso_continue.html", {"next_path": next_path})
    flash(request, f"Signed in as {actor.name} ({actor.role}) with Microsoft.", "success")
    return response


@router.post("/signout", dependencies=[Depends(verify_csrf)])
def signout(request: Request) -> Response:
    end_session(request)
    flash(request, "Signed out.", "info")
    return RedirectResponse("/signin", status_code=303)


# -- first admin -------------------------------------------------------------------------------


@router.get("/setup/{token}")
def setup_form(request: Request, token: str) -> Response:
    if not setup_token_usable(get_vault(request), token):
        raise SetupLinkInvalid(SETUP_LINK_REFUSED)
    return render(request, "setup.html", {"token": token, "error": "", "name": ""})


@router.post("/setup/{token}", dependencies=[Depends(verify_csrf)])
def setup(
    request: Request, token: str, name: FormText, password: FormText, repeat: FormText
) -> Response:
    vault = get_vault(request)
    problem = password_problem(name, password, repeat)
    if not name.strip() or any(c.isspace() for c in name.strip()):
        problem = "an operator name is one word, e.g. alice or alice@contoso.com"
    if problem:
        if not setup_token_usable(vault, token):
            raise SetupLinkInvalid(SETUP_LINK_REFUSED)
        context = {"token": token, "error": problem, "name": name}
        return render(request, "setup.html", context, status_code=400)
    consume_setup_token(vault, token, SETUP_ACTOR)
    enrolment = OperatorDirectory(vault).add(SETUP_ACTOR, name.strip(), "admin", password)
    session = ensure_session(request)
    get_sessions(request).set_pending(session.id_hash, enrolment.operator, enrolment.otpauth_uri)
    return RedirectResponse("/enrol", status_code=303)


@router.get("/enrol")
def enrol_form(request: Request) -> Response:
    return _enrol_page(request)


def _enrol_page(request: Request, error: str = "", status: int = 200) -> Response:
    session = load_session(request)
    pending = get_sessions(request).pending(session.id_hash) if session else None
    if pending is None:
        raise InvalidInput("there is no enrolment waiting in this browser; sign in instead")
    operator, uri = pending
    context = {"operator": operator, "error": error, **enrolment_view(uri)}
    response = render(request, "enrol.html", context, status_code=status)
    response.headers.update({"Cache-Control": "no-store"})  # it carries the new secret
    return response


@router.post("/enrol", dependencies=[Depends(verify_csrf)])
def enrol(request: Request, password: FormText, code: FormText) -> Response:
    session = load_session(request)
    pending = get_sessions(request).pending(session.id_hash) if session else None
    if pending is None:
        raise InvalidInput("there is no enrolment waiting in this browser; sign in instead")
    try:
        actor = _sign_in(request, pending[0], password, code)
    except SignInRefused as refused:
        return _enrol_page(request, refused.message, status=401)
    flash(
        request,
        f"Welcome, {actor.name}: your authenticator works and you are signed in. "
        "Add your helpdesk operators next.",
        "success",
    )
    return RedirectResponse("/operators", status_code=303)
