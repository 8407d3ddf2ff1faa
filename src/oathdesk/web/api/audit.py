"""``/audit``: the tamper-evident log, filtered and paged, and the chain's verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from oathdesk.errors import InvalidInput
from oathdesk.vault.roles import Permission, require
from oathdesk.web.api.auth import ApiActor, VaultDep
from oathdesk.web.api.errors import ApiRoute, responses

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


class AuditPage(BaseModel):
    records: list[AuditRecordOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null: done")


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


@router.get("/audit", response_model=AuditPage, responses=responses(403))
def list_audit(
    actor: ApiActor,
    vault: VaultDep,
    operator: Annotated[str | None, Query(max_length=128)] = None,
    upn: Annotated[str | None, Query(max_length=320)] = None,
    serial: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Annotated[int, Query(ge=0, description="only records after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit records, oldest first (admin, auditor)."""
    require(actor, Permission.READ_AUDIT)
    found = vault.export_audit(
        actor=operator,
        upn=upn,
        serial=serial,
        action=action,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )
    page = [record for record in found if record["seq"] > after][: limit + 1]
    more = len(page) > limit
    page = page[:limit]
    return AuditPage(
        records=[AuditRecordOut(**record) for record in page],
        next_after=page[-1]["seq"] if more else None,
    )


@router.get("/audit/verify", response_model=AuditVerifyOut, responses=responses(403))
def verify_audit(actor: ApiActor, vault: VaultDep) -> AuditVerifyOut:
    """Check every record of the chain and its head (admin, auditor)."""
    require(actor, Permission.READ_AUDIT)
    problems = vault.verify_audit()
    return AuditVerifyOut(intact=not problems, records=vault.audit_count(), problems=problems)
