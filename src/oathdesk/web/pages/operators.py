"""Operator management (admins): list with last sign-in, add, disable, reset TOTP.

A new or reset operator's TOTP QR code is shown once, in the answer to the POST that made it;
it is never stored in clear or reachable through a URL. Disabling an operator ends their
sessions at once (and every request re-checks that the operator is still enabled).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from oathdesk.errors import InvalidInput
from oathdesk.vault.console import last_sign_ins
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import Enrolment, OperatorDirectory
from oathdesk.vault.roles import Role
from oathdesk.web.deps import flash, get_sessions, get_vault, render, require_admin, verify_csrf
from oathdesk.web.pages.auth import password_problem
from oathdesk.web.pages.helpdesk_common import NO_STORE
from oathdesk.web.render import enrolment_view

router = APIRouter(dependencies=[Depends(require_admin)])

FormText = Annotated[str, Form()]
Admin = Annotated[Actor, Depends(require_admin)]


def _list_page(
    request: Request, *, error: str = "", form: dict[str, str] | None = None
) -> Response:
    vault = get_vault(request)
    signed_in = last_sign_ins(vault)
    rows = [
        (operator, signed_in.get(operator.name)) for operator in OperatorDirectory(vault).list()
    ]
    context = {
        "operators": rows,
        "roles": [role.value for role in Role],
        "error": error,
        "form": form or {"name": "", "role": "helpdesk"},
    }
    return render(request, "operators.html", context, status_code=400 if error else 200)


def _enrolment_page(request: Request, enrolment: Enrolment, what: str) -> Response:
    context = {
        "operator": enrolment.operator,
        "what": what,
        **enrolment_view(enrolment.otpauth_uri),
    }
    response = render(request, "operator_enrolment.html", context)
    response.headers.update(NO_STORE)  # it carries the operator's new secret
    return response


@router.get("/operators")
def operators_page(request: Request) -> Response:
    return _list_page(request)


@router.post("/operators", dependencies=[Depends(verify_csrf)])
def add_operator(
    request: Request,
    actor: Admin,
    name: FormText,
    role: FormText,
    password: FormText,
    repeat: FormText,
) -> Response:
    problem = password_problem(name, password, repeat)
    if problem:
        return _list_page(request, error=problem, form={"name": name, "role": role})
    enrolment = OperatorDirectory(get_vault(request)).add(actor, name, role, password)
    return _enrolment_page(request, enrolment, "added")


@router.post("/operators/{name}/disable", dependencies=[Depends(verify_csrf)])
def disable_operator(request: Request, actor: Admin, name: str) -> Response:
    if name == actor.name:
        raise InvalidInput("you cannot disable yourself; ask another admin")
    OperatorDirectory(get_vault(request)).disable(actor, name)
    ended = get_sessions(request).delete_for_operator(name)
    flash(request, f"Operator {name} is disabled; {ended} open session(s) ended.", "success")
    return RedirectResponse("/operators", status_code=303)


@router.post("/operators/{name}/enable", dependencies=[Depends(verify_csrf)])
def enable_operator(request: Request, actor: Admin, name: str) -> Response:
    OperatorDirectory(get_vault(request)).enable(actor, name)
    flash(request, f"Operator {name} is enabled and can sign in again.", "success")
    return RedirectResponse("/operators", status_code=303)


@router.post("/operators/{name}/reset-totp", dependencies=[Depends(verify_csrf)])
def reset_totp(request: Request, actor: Admin, name: str) -> Response:
    if name == actor.name:
        # A QR code missed on this page would leave them with no second factor and no session
        # to get another: the CLI on the server host, or another admin, does it instead.
        raise InvalidInput(
            "you cannot reset your own TOTP here; ask another admin, or run "
            f"`oathdesk operator reset-totp {name}` on the server"
        )
    enrolment = OperatorDirectory(get_vault(request)).reset_totp(actor, name)
    if name != actor.name:
        get_sessions(request).delete_for_operator(name)  # the old second factor is void
    return _enrolment_page(request, enrolment, "given a new TOTP secret")
