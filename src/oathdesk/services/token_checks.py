"""Checks on the phone: a user reads codes off their token; we match them, measure its clock,
record it, and use a fresh successful check as the condition for confirming delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oathdesk.errors import NotFound, PolicyRefused
from oathdesk.otp import DriftMeasurement, acceptance_profile, measure_drift

# The report's rows are computed in services/drift.py (pure); re-exported for callers here.
from oathdesk.services.drift import DriftRow as DriftRow
from oathdesk.services.drift import drift_rows as drift_rows
from oathdesk.vault import lookup
from oathdesk.vault.lifecycle import SECRET_STATES, TokenState
from oathdesk.vault.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, walk
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Token, Vault

CHECK_VALID_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class CheckResult:
    token: Token
    measurement: DriftMeasurement | None
    inside_window: bool
    profile: str


def verify_token(
    vault: Vault,
    actor: Actor,
    upn: str,
    code: str,
    next_code: str | None = None,
    *,
    serial: str | None = None,
    at: float | None = None,
) -> CheckResult:
    require(actor.name, actor.role, Permission.LOOK_UP)
    moment = datetime.now(UTC).timestamp() if at is None else at
    user = vault.get_user(upn)
    candidates = [
        t
        for t in vault.list_tokens(upn=user.upn)
        if t.has_secret and t.state in SECRET_STATES and (serial is None or t.serial == serial)
    ]
    if not candidates:
        raise NotFound(
            f"the vault holds no seed for a token of {user.upn}; nothing to check against"
        )
    settings = vault.settings()
    with vault.transaction() as conn:
        for token in candidates:
            secret = vault.read_secret(conn, actor, token, purpose="verify", audit=False)
            found = measure_drift(
                secret,
                code,
                moment,
                next_code=next_code,
                algorithm=token.algorithm,
                digits=token.digits,
                period=token.period,
            )
            if found is not None:
                break
        profile = acceptance_profile(settings.acceptance_profile, period=token.period)
        inside = found is not None and -profile.behind <= found.step_offset <= profile.ahead
        if found is not None:
            vault.record_drift(
                conn, token, found.drift_seconds, measured_at=datetime.fromtimestamp(moment, UTC)
            )
        vault.audit(
            conn,
            actor,
            "token.verified",
            upn=user.upn,
            serial=token.serial,
            details={
                "matched": found is not None,
                "drift_seconds": found.drift_seconds if found else None,
                "confirmed_by_next_code": found.confirmed_by_next_code if found else False,
                "inside_window": inside,
                "profile": profile.name,
            },
        )
    return CheckResult(vault.get_token(token.serial), found, inside, profile.name)


def confirm_delivery(
    vault: Vault, actor: Actor, serial: str, *, override_reason: str | None = None
) -> Token:
    """Delivered means the user has a working token: a successful check today, or a reason."""
    require(actor.name, actor.role, Permission.SHIP)
    token = vault.get_token(serial)
    checked = token.drift_measured_at
    profile = acceptance_profile(vault.settings().acceptance_profile, period=token.period)
    window = min(profile.behind, profile.ahead) * token.period
    fresh = checked is not None and datetime.now(UTC) - checked <= CHECK_VALID_FOR
    works = fresh and token.drift_seconds is not None and abs(token.drift_seconds) <= window
    reason = (override_reason or "").strip()
    if not works and not reason:
        problem = (
            f"its last check found the clock {token.drift_seconds:+d} s off, outside the "
            f"{profile.name} window; resync or replace it"
            if fresh and token.drift_seconds is not None
            else "check a code the user reads off it first (`oathdesk verify UPN CODE`)"
        )
        raise PolicyRefused(
            f"token {serial} is not confirmed working: {problem}, or give --override-reason"
        )
    details = {"checked_at": checked.isoformat() if checked else None, "override_reason": reason}
    return vault.move(actor, serial, TokenState.DELIVERED, details=details)


def drift_report(vault: Vault, *, near_fraction: float = 0.5) -> list[DriftRow]:
    """Tokens whose clock is near or beyond the sign-in window, with trend and prediction
    (every one: the CLI's report, read a page of measured tokens at a time)."""

    def fetch(cursor: str | None) -> Page[DriftRow]:
        return drift_page(vault, cursor=cursor, limit=MAX_LIMIT, near_fraction=near_fraction)

    return list(walk(fetch))


def drift_page(
    vault: Vault,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    near_fraction: float = 0.5,
) -> Page[DriftRow]:
    """A page of the drift report: the next ``limit`` measured tokens by serial, and of those
    the ones near or outside the window (so a page may show fewer than ``limit``; its cursor
    still continues after the last token read)."""
    profile_name = vault.settings().acceptance_profile
    measured = lookup.token_page(vault, drift_measured=True, cursor=cursor, limit=limit)
    history = lookup.drift_history(vault, measured.items)
    return Page(
        drift_rows(measured.items, history, profile_name, near_fraction), measured.next_cursor
    )
