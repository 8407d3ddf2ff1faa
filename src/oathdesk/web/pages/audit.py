"""/audit: the audit log, newest first, filtered by action, user, token, operator and dates,
a page at a time (keyset paging: the "older" link carries a cursor bound to the filter), with
the chain's verification status (``Vault.verify_audit``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from oathdesk.errors import InvalidInput
from oathdesk.services.directory import AuditView, audit_view
from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.web.deps import render
from oathdesk.web.pages.helpdesk_common import ActorDep, VaultDep, short_time, status_for

router = APIRouter()

FILTERS = ("action", "upn", "serial", "operator", "since", "until")


def _day(text: str, *, end: bool) -> datetime | None:
    """A YYYY-MM-DD date (UTC) as the start of that day, or its end for the 'to' field."""
    text = text.strip()
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(f"the date {text[:20]!r} is not YYYY-MM-DD, e.g. 2026-11-22") from None
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start + timedelta(days=1, microseconds=-1) if end else start


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    vault: VaultDep,
    actor: ActorDep,
    action: str = "",
    upn: str = "",
    serial: str = "",
    operator: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
    whole: bool = False,
) -> HTMLResponse:
    checks = request.app.state.audit_checks
    values = {
        "action": action,
        "upn": upn,
        "serial": serial,
        "operator": operator,
        "since": since,
        "until": until,
    }
    try:
        wanted = AuditFilter(
            action=action.strip(),
            upn=upn.strip(),
            serial=serial.strip(),
            actor=operator.strip(),
            since=_day(since, end=False),
            until=_day(until, end=True),
        )
        view = audit_view(
            vault, actor, wanted, cursor=cursor or None, checks=checks, whole_chain=whole
        )
    except InvalidInput as refused:
        view = audit_view(vault, actor, AuditFilter(), checks=checks, whole_chain=whole)
        return _page(request, view, values, refused.message, status_for(refused))
    return _page(request, view, values, "", 200)


def _page(
    request: Request, view: AuditView, values: dict[str, str], error: str, status: int
) -> HTMLResponse:
    query = {key: value for key, value in values.items() if value}
    return render(
        request,
        "audit.html",
        {
            "view": view,
            "values": values,
            "error": error,
            "short_time": short_time,
            "query_base": urlencode(query),
        },
        status_code=status,
    )
