"""What the helpdesk pages share: form fields as text, HTTP statuses for refusals, no-store.

Not a page module (it has no router); the pages of search, users, reveal, tokens, imports,
exports, audit, drift and settings import it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from markupsafe import Markup
from starlette.datastructures import FormData

from oathdesk.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OathdeskError,
    PermissionDenied,
    PolicyRefused,
)
from oathdesk.services.alerts import AlertSink
from oathdesk.vault.db import StorageError
from oathdesk.vault.vault import Actor, Vault
from oathdesk.web.deps import current_actor, get_alerts, get_vault, require_admin
from oathdesk.web.render import time_element
from oathdesk.web.security import SignInThrottled

# What the pages declare they need (FastAPI dependencies).
VaultDep = Annotated[Vault, Depends(get_vault)]
ActorDep = Annotated[Actor, Depends(current_actor)]
AdminDep = Annotated[Actor, Depends(require_admin)]
AlertsDep = Annotated[AlertSink, Depends(get_alerts)]

# Pages that carry a code, a problem report or a download must not be kept by any cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# Fields whose values are never sent back to the browser when a form is shown again.
SECRET_FIELDS = frozenset(
    {"approver_password", "approver_code", "password", "psk", "code", "next_code", "csrf_token"}
)


def status_for(error: OathdeskError, *, otherwise: int = 422) -> int:
    """The HTTP status a refusal is shown with (the page still says why, in one line);
    ``otherwise`` for errors of no kind below (a form shown again: 422)."""
    for kind, status in (
        (SignInThrottled, 429),
        (NotFound, 404),
        (InvalidInput, 400),
        (Conflict, 409),
        (PermissionDenied, 403),
        (PolicyRefused, 403),
        (StorageError, 503),
    ):
        if isinstance(error, kind):
            return status
    return otherwise


def text_fields(form: FormData) -> dict[str, str]:
    """The form's text fields (uploads left out), each value as typed."""
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


async def form_text(request: Request) -> dict[str, str]:
    return text_fields(await request.form())


def kept(fields: dict[str, str]) -> dict[str, Any]:
    """What to put back into a form shown again: everything typed except secrets and codes."""
    return {key: value for key, value in fields.items() if key not in SECRET_FIELDS}


def short_time(moment: Any) -> Markup:
    """An audit/record time as the pages show it, to the second: a ``<time>`` element in UTC
    that the browser shows in the operator's zone (static/localtime.js)."""
    return time_element(moment, seconds=True)
