"""``/audit``: the tamper-evident log, filtered and paged (newest first, in SQL), and the chain's
verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from oathdesk.errors import InvalidInput
from oathdesk.vault import lookup
from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses
from oathdesk.web.api.paging import LIMIT_DEFAULT, Cursor, Limit, PageOut, page_out

router = APIRouter(tags=["audit"], route_class=ApiRoute)


class AuditRecordOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    upn: str
    serial: str
    details: dict[str, Any]
    mac: str = Field(description="the record's chain MAC, hex")


class AuditVerifyOut(BaseModel):
    intact: bool
    records: int
    problems: list[str] = Field(description="each break in the chain, in plain words")


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """A filter time in UTC (a time without a zone is taken as UTC)."""
    if moment is None:
        return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"{name} is out of range; give an ISO 8601 time such as 2026-11-22T09:00Z"
        ) from None


@router.get("/audit", response_model=PageOut[AuditRecordOut], responses=responses(400, 403))
def list_audit(
    request: Request,
    response: Response,
    actor: ApiActor,
    vault: VaultDep,
    operator: Annotated[str | None, Query(max_length=128)] = None,
    upn: Annotated[str | None, Query(max_length=320)] = None,
    serial: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> PageOut[AuditRecordOut]:
    """Audit records, newest first, a page at a time (admin, auditor)."""
    require(actor, Permission.READ_AUDIT)
    wanted = AuditFilter(
        action=action or "",
        upn=upn or "",
        serial=serial or "",
        actor=operator or "",
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )
    found = lookup.audit_page(vault, wanted, cursor=cursor, limit=limit)
    return page_out(request, response, found, lambda record: AuditRecordOut(**record))


@router.get("/audit/verify", response_model=AuditVerifyOut, responses=responses(403))
def verify_audit(actor: ApiActor, vault: VaultDep) -> AuditVerifyOut:
    """Check every record of the chain and its head (admin, auditor)."""
    require(actor, Permission.READ_AUDIT)
    problems = vault.verify_audit()
    return AuditVerifyOut(intact=not problems, records=vault.audit_count(), problems=problems)
