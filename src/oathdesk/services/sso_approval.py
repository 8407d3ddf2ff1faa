"""A four-eyes approval by a fresh Microsoft sign-in: the second operator of a reveal, who signs
in with Microsoft only, approves by signing in again at Entra at the requester's console.

1. ``start_approval``: the pending reveal (its form, never a secret) is kept server-side with a
   new auth code flow (``prompt=login``, ``max_age``, a state marked as an approval), in the
   encrypted flows table (single use, 10 minutes), found by the hash of a random cookie.
2. ``finish_approval`` (the shared redirect URL): the flow is taken (a replayed answer finds
   nothing), the ID token checked as at sign-in, plus ``auth_time`` within ``APPROVAL_MAX_AGE``
   (Entra signed it; the browser could have dropped ``prompt``), an enabled operator with the
   role the reveal needs who is not the requester. Audited (``reveal.approved_by_microsoft``:
   the approver, their oid and tid, the method). The approved reveal is kept under a new cookie.
3. ``take_approved``: the requester's own session takes it (once) and runs the reveal.

An admin's approval of one reveal beyond the per-user limit (services/reveal_override.py) goes
the same way (``start_override_approval``), except that the fresh sign-in must be the admin's
own (as their own password and code would be) and the approval is recorded at step 2.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from oathdesk.errors import NotFound, PermissionDenied
from oathdesk.identity.errors import SsoRefused
from oathdesk.identity.tokens import check_recent_sign_in
from oathdesk.services import reveal_override, sso
from oathdesk.vault import sso as stored
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault

APPROVAL_STATE_PREFIX = "approval."  # the state of an approval's flow starts with it
APPROVAL_MAX_AGE = 300  # seconds since the approver entered their credentials at Entra
APPROVED_ACTION = "reveal.approved_by_microsoft"
REVEAL, OVERRIDE = "reveal", "override"  # what a pending approval is for
METHOD = "microsoft"
_PENDING = "oathdesk_approval"  # the flow's key holding the pending approval (never sent)
_APPROVED = "oathdesk_approved"  # the key of an approved reveal waiting for its requester
# The reveal form's fields kept with a pending approval: what the reveal needs, never a secret.
PENDING_FIELDS = ("method", "ticket", "note", "channel", "serial", "override_reason")
NO_APPROVAL = (
    "no Microsoft approval is waiting in this browser (it expired after 10 minutes, or was "
    "already used); ask the approver to approve again"
)


@dataclass(frozen=True)
class Approved:
    """A reveal approved by a Microsoft sign-in, ready for its requester."""

    upn: str
    requester: str
    fields: dict[str, str]
    approver: Actor


def is_approval(params: Mapping[str, str]) -> bool:
    return str(params.get("state", "")).startswith(APPROVAL_STATE_PREFIX)


def approved_path(upn: str) -> str:
    return f"/users/{quote(upn, safe='@')}/reveal/approved"


def start_approval(
    vault: Vault, requester: Actor, upn: str, fields: Mapping[str, str]
) -> sso.Started:
    """Keep the pending reveal and start the approver's fresh sign-in."""
    require(requester, Permission.REVEAL)
    if not vault.settings().four_eyes:
        raise PermissionDenied("the four-eyes rule is off: reveal without an approver")
    pending = {
        "kind": REVEAL,
        "upn": upn,
        "requester": requester.name,
        "fields": {name: str(fields.get(name, ""))[:512] for name in PENDING_FIELDS},
    }
    return _start(vault, pending, approved_path(upn))


def start_override_approval(vault: Vault, admin: Actor, upn: str, *, ticket: str) -> sso.Started:
    """An SSO admin's approval of one reveal beyond the per-user limit: confirmed by their own
    fresh Microsoft sign-in instead of a local password and code."""
    user_upn = reveal_override.check_request(vault, admin, upn, ticket=ticket)
    pending = {
        "kind": OVERRIDE,
        "upn": user_upn,
        "requester": admin.name,
        "fields": {"ticket": ticket.strip()[:128]},
    }
    return _start(vault, pending, f"/users/{quote(user_upn, safe='@')}")


def _start(vault: Vault, pending: dict[str, Any], next_path: str) -> sso.Started:
    row = sso.enabled_settings(vault)
    if row is None:
        raise NotFound(stored.NOT_CONFIGURED)
    flow = sso.provider_for(row).start(
        state=APPROVAL_STATE_PREFIX + secrets.token_urlsafe(24),
        prompt="login",
        max_age=APPROVAL_MAX_AGE,
    )
    flow[_PENDING] = pending
    cookie = secrets.token_urlsafe(32)
    stored.put_flow(vault, sso.flow_hash(cookie), flow, next_path)
    return sso.Started(cookie, str(flow["auth_uri"]))


@dataclass(frozen=True)
class Finished:
    """A checked approval: a reveal's is kept under ``cookie`` for its requester; an override's
    is recorded at once (``cookie`` empty, ``until`` its end)."""

    cookie: str
    next_path: str
    until: datetime | None = None


def finish_approval(
    vault: Vault, cookie: str, params: Mapping[str, str], *, client: str, now: float | None = None
) -> Finished:
    """Check the approver's fresh sign-in: a reveal's approval is kept for its requester (the
    cookie), an override's recorded. ``SsoRefused`` (audited) otherwise."""
    directory = OperatorDirectory(vault)
    row = sso.enabled_settings(vault)
    taken = stored.take_flow(vault, sso.flow_hash(cookie)) if cookie else None
    with sso.refusals_audited(directory, client=client):
        if row is None:
            raise SsoRefused(
                "not_configured", f"Microsoft approval refused: {stored.NOT_CONFIGURED}"
            )
        if taken is None or _PENDING not in taken[0]:
            raise SsoRefused("no_flow", f"Microsoft approval refused: {NO_APPROVAL}")
        flow, next_path = taken
        pending: dict[str, Any] = flow.pop(_PENDING)
        claims = sso.provider_for(row).finish(flow, params, now=now)
        try:
            check_recent_sign_in(
                claims, max_age=APPROVAL_MAX_AGE, now=time.time() if now is None else now
            )
        except SsoRefused as refused:
            refused.tid, refused.oid = claims.tid, claims.oid
            raise
    # The approver's operator record, refreshed as at a sign-in: the approval is a sign-in.
    approver = sso.sign_in_from_claims(directory, claims, client=client)
    kind = pending.get("kind", REVEAL)
    refusal = (_override_refusal if kind == OVERRIDE else _approver_refusal)(
        approver, str(pending["requester"])
    )
    if refusal is not None:
        with sso.refusals_audited(directory, client=client):
            raise SsoRefused(
                refusal[0],
                f"Microsoft approval refused: {refusal[1]}",
                tid=claims.tid,
                oid=claims.oid,
            )
    confirmed_by = {"method": METHOD, "oid": claims.oid, "tid": claims.tid}
    if kind == OVERRIDE:
        until = reveal_override.record_approval(
            vault,
            approver,
            str(pending["upn"]),
            ticket=str(pending["fields"].get("ticket", "")),
            confirmed_by=confirmed_by,
        )
        return Finished("", next_path, until)
    with vault.unit_of_work(approver) as work:
        work.audit(
            APPROVED_ACTION,
            upn=str(pending["upn"]),
            details={
                "requester": str(pending["requester"]),
                **confirmed_by,
                "ticket": str(pending["fields"].get("ticket", ""))[:128],
                "ip": client,
            },
        )
    approved = secrets.token_urlsafe(32)
    stored.put_flow(
        vault,
        sso.flow_hash(approved),
        {_APPROVED: {**pending, "approver": approver.name, "approver_role": approver.role}},
        next_path,
    )
    return Finished(approved, next_path)


def _override_refusal(approver: Actor, requester: str) -> tuple[str, str] | None:
    # The admin who asked confirms it themselves, as with a password and code.
    if approver.name != requester:
        return "approver_not_requester", f"confirm with your own Microsoft account ({requester})"
    try:
        require(approver, Permission.SETTINGS)
    except PermissionDenied:
        return "approver_role", f"{approver.name} ({approver.role}) may not approve overrides"
    return None


def _approver_refusal(approver: Actor, requester: str) -> tuple[str, str] | None:
    if approver.name == requester:
        return "approver_is_requester", "the approver must be another operator than the requester"
    try:
        require(approver, Permission.REVEAL)
    except PermissionDenied:
        return "approver_role", f"{approver.name} ({approver.role}) may not approve reveals"
    return None


def take_approved(vault: Vault, cookie: str, requester: Actor, upn: str) -> Approved:
    """The approved reveal, once, for the operator who asked for it and the user it was for."""
    taken = stored.take_flow(vault, sso.flow_hash(cookie)) if cookie else None
    pending = taken[0].get(_APPROVED) if taken is not None else None
    if not isinstance(pending, dict) or "approver" not in pending:
        raise PermissionDenied(NO_APPROVAL)
    if pending["requester"] != requester.name or pending["upn"] != upn:
        raise PermissionDenied(
            "this Microsoft approval was for another reveal; ask the approver to approve again"
        )
    return Approved(
        upn=upn,
        requester=requester.name,
        fields={k: str(v) for k, v in dict(pending["fields"]).items()},
        approver=Actor(str(pending["approver"]), str(pending["approver_role"])),
    )
