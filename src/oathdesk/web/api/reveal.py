"""``/reveal``, ``/verify`` and ``/drift``: the helpdesk on the phone, through the same services
as ``oathdesk reveal|verify|drift`` (identity check, limits, four-eyes rule, one audit record).

A reveal answers with codes only (never the seed), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool

from oathdesk.otp import TimedCode
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealRequest,
    VerificationMethod,
)
from oathdesk.services.token_checks import DriftRow, drift_page, verify_token
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault
from oathdesk.web.api.auth import (
    AlertsDep,
    ApiActor,
    ApiKeyPresented,
    Presented,
    RevealsDep,
    VaultDep,
)
from oathdesk.web.api.errors import ApiRoute, responses
from oathdesk.web.api.paging import LIMIT_DEFAULT, Cursor, Limit, PageOut, page_out
from oathdesk.web.api.schemas import ONE_LINE, UPN_FIELD

router = APIRouter(tags=["helpdesk"], route_class=ApiRoute)


class ApproverIn(BaseModel):
    """The four-eyes rule: a second operator's name, password and current oathdesk code."""

    name: str = Field(min_length=1, max_length=128, pattern=ONE_LINE)
    password: SecretStr = Field(min_length=1, max_length=1024)
    code: SecretStr = Field(min_length=6, max_length=10)


class RevealIn(BaseModel):
    upn: str = UPN_FIELD
    method: VerificationMethod = Field(description="how the caller's identity was verified")
    ticket: str = Field(
        min_length=1, max_length=128, pattern=ONE_LINE, description="the call's ticket reference"
    )
    note: str = Field(
        default="", max_length=500, pattern=ONE_LINE, description="who confirmed, what was checked"
    )
    channel: Channel = Field(description="email gets the longest-valid code recommended")
    serial: str | None = Field(default=None, min_length=1, max_length=64, pattern=ONE_LINE)
    override_reason: str | None = Field(
        default=None,
        max_length=500,
        pattern=ONE_LINE,
        description="needed for a token already delivered",
    )
    approver: ApproverIn | None = None


class CodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    step_offset: int
    shown_from: datetime
    shown_until: datetime
    accepted_until: datetime = Field(description="the acceptance profile's last moment")

    @classmethod
    def of(cls, item: TimedCode) -> CodeOut:
        return cls.model_validate(item)


class RevealOut(BaseModel):
    serial: str
    model: str
    upn: str | None
    profile: str
    at: float = Field(description="the moment the codes were computed, Unix seconds")
    channel: Channel
    current: CodeOut
    longest: CodeOut = Field(description="the code accepted longest (for email)")
    recommended: str = Field(description="current or longest: the one to pass on")


def _approved_job(
    vault: Vault,
    presented: Presented,
    body: ApproverIn,
    request: RevealRequest,
) -> RevealJob:
    """The four-eyes rule: the caller's key first (no approver's password is tried for a caller
    without a valid key: that would let anyone lock an approver out), then the approver's
    password and code (argon2: a tenth of a second, so in a worker thread, not the event loop)."""
    from oathdesk.vault.operators import OperatorDirectory

    actor, key_id = presented.checked(vault)
    require(actor, Permission.REVEAL)
    approver = OperatorDirectory(vault).approve(
        body.name, body.password.get_secret_value(), body.code.get_secret_value()
    )
    return RevealJob(replace(request, approver=approver), actor=actor, key_id=key_id)


@router.post("/reveal", response_model=RevealOut, responses=responses(400, 403, 404, 409, 429))
async def reveal(
    body: RevealIn,
    presented: ApiKeyPresented,
    vault: VaultDep,
    alerts: AlertsDep,
    reveals: RevealsDep,
) -> Response:
    """A code for a verified caller. 429 ``rate_limited``: this key's per-minute throttle;
    403 ``policy_refused``: the vault's 24-hour limits, the four-eyes rule or a delivered token."""
    request = RevealRequest(
        upn=body.upn,
        check=IdentityCheck(body.method, body.ticket, body.note),
        channel=body.channel,
        serial=body.serial,
        override_reason=body.override_reason,
    )
    if body.approver is None:
        # The key is checked in the reveal's own transaction, with the others of its batch
        # (services/reveal_queue.py): no thread of the pool, no transaction of its own.
        job = RevealJob(
            request, actor=presented.actor, api_key=presented.api_key, key_id=presented.key_id
        )
    else:
        job = await run_in_threadpool(_approved_job, vault, presented, body.approver, request)
    outcome = await asyncio.wrap_future(reveals.submit(job))
    if outcome.alert is None:
        result = outcome.result_or_raise(alerts)
    else:  # a limit refusal: its alert may go by e-mail, so off the event loop
        result = await run_in_threadpool(outcome.result_or_raise, alerts)
    out = RevealOut(
        serial=result.token.serial,
        model=result.token.model,
        upn=result.token.upn,
        profile=result.profile,
        at=result.at,
        channel=result.channel,
        current=CodeOut.of(result.current),
        longest=CodeOut.of(result.longest),
        recommended="longest" if result.recommended is result.longest else "current",
    )
    # Rendered here, from the model just built: FastAPI would validate it once more before
    # rendering. response_model still documents it.
    return Response(
        out.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


class VerifyIn(BaseModel):
    upn: str = UPN_FIELD
    code: str = Field(min_length=6, max_length=10, pattern=r"^[0-9]+$")
    next_code: str | None = Field(default=None, min_length=6, max_length=10, pattern=r"^[0-9]+$")
    serial: str | None = Field(default=None, min_length=1, max_length=64, pattern=ONE_LINE)
    at: float | None = Field(
        default=None, ge=0, le=32_503_680_000, description="when it was read, Unix seconds"
    )


class VerifyOut(BaseModel):
    serial: str
    match: bool
    step_offset: int | None
    drift_seconds: int | None
    inside_window: bool
    profile: str


@router.post("/verify", response_model=VerifyOut, responses=responses(400, 403, 404))
def verify(body: VerifyIn, actor: ApiActor, vault: VaultDep) -> VerifyOut:
    """Check a code the user reads off their token; measure and record its clock drift."""
    result = verify_token(
        vault, actor, body.upn, body.code, body.next_code, serial=body.serial, at=body.at
    )
    found = result.measurement
    return VerifyOut(
        serial=result.token.serial,
        match=found is not None,
        step_offset=found.step_offset if found else None,
        drift_seconds=found.drift_seconds if found else None,
        inside_window=result.inside_window,
        profile=result.profile,
    )


class DriftOut(BaseModel):
    serial: str
    upn: str | None
    drift_seconds: int
    window_seconds: int
    status: str = Field(description="near or outside")
    rate_seconds_per_day: float | None
    predicted_outside: datetime | None

    @classmethod
    def of(cls, row: DriftRow) -> DriftOut:
        return cls(
            serial=row.token.serial,
            upn=row.token.upn,
            drift_seconds=row.drift_seconds,
            window_seconds=row.window_seconds,
            status=row.status,
            rate_seconds_per_day=row.rate_seconds_per_day,
            predicted_outside=row.predicted_outside,
        )


@router.get("/drift", response_model=PageOut[DriftOut], responses=responses(400, 403))
def drift(
    request: Request,
    response: Response,
    actor: ApiActor,
    vault: VaultDep,
    limit: Limit = LIMIT_DEFAULT,
    cursor: Cursor = None,
) -> PageOut[DriftOut]:
    """Tokens whose clock is near or beyond the sign-in window, with trend and forecast, by
    serial. A page looks at ``limit`` measured tokens and shows those near or outside, so it
    may hold fewer (even none) while ``next_cursor`` says more follow."""
    require(actor, Permission.LOOK_UP)
    found = drift_page(vault, cursor=cursor, limit=limit)
    return page_out(request, response, found, DriftOut.of)
