"""Emergency codes for a caller whose token is in the post: the deliberate, guarded back door.

A code is shown only after the operator records how the caller's identity was verified, within
per-user and per-operator limits, optionally approved by a second operator, and only while the
vault still holds the seed. Each reveal is one audit record (which code offsets, never the code),
written in the same transaction as the secret is read: if the record cannot be written, no code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from oathdesk.errors import Conflict, InvalidInput, NotFound, PolicyRefused
from oathdesk.otp import TimedCode, acceptance_profile, longest_valid_code, timed_codes
from oathdesk.services.alerts import AlertSink
from oathdesk.vault.lifecycle import SECRET_STATES, TokenState
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Token, Vault

LIMIT_WINDOW = timedelta(hours=24)
REVEAL_ACTION = "code.revealed"
TAP_HINT = (
    "issue a Temporary Access Pass in Entra instead (the user then signs in and registers "
    "a method at aka.ms/mysecurityinfo)"
)


class VerificationMethod(StrEnum):
    CALLBACK = "callback"  # called back on the phone number on file
    MANAGER = "manager"  # the user's manager confirmed
    VIDEO = "video"  # video call checked against a photo ID
    IN_PERSON = "in-person"
    OTHER = "other"


class Channel(StrEnum):
    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"


@dataclass(frozen=True)
class IdentityCheck:
    method: VerificationMethod
    ticket: str
    note: str = ""

    def __post_init__(self) -> None:
        if not self.ticket.strip():
            raise InvalidInput("record the ticket reference of the call (--ticket)")
        if self.method is VerificationMethod.OTHER and not self.note.strip():
            raise InvalidInput("with --method other, say in --note how the identity was verified")


@dataclass(frozen=True)
class RevealRequest:
    upn: str
    check: IdentityCheck
    channel: Channel
    serial: str | None = None
    override_reason: str | None = None
    approver: Actor | None = None


@dataclass(frozen=True)
class RevealResult:
    token: Token
    profile: str
    at: float
    current: TimedCode
    longest: TimedCode
    channel: Channel

    @property
    def recommended(self) -> TimedCode:
        """By email a code is read minutes later: give the one accepted longest."""
        return self.longest if self.channel is Channel.EMAIL else self.current


def _choose_token(owned: list[Token], upn: str, serial: str | None) -> Token:
    if serial:
        owned = [t for t in owned if t.serial == serial]
        if not owned:
            raise NotFound(f"{upn} has no token {serial}")
    if not owned:
        raise NotFound(f"{upn} has no token in the vault; {TAP_HINT}")
    usable = [t for t in owned if t.state in SECRET_STATES and t.has_secret]
    if usable:
        # The token most likely in the post: the furthest along its way.
        order = [
            TokenState.SHIPPED,
            TokenState.REGISTERED,
            TokenState.BURNED,
            TokenState.DELIVERED,
            TokenState.ASSIGNED,
        ]
        return min(usable, key=lambda t: order.index(t.state) if t.state in order else 99)
    states = {t.state for t in owned}
    if TokenState.SECRET_PURGED in states:
        raise Conflict(f"the seed of {upn}'s token was purged after delivery; {TAP_HINT}")
    if states & {TokenState.LOST, TokenState.REVOKED}:
        raise Conflict(f"{upn}'s token is lost or revoked, so no code can be given; {TAP_HINT}")
    raise Conflict(f"the vault holds no seed for {upn}'s token; {TAP_HINT}")


def reveal_code(
    vault: Vault,
    actor: Actor,
    request: RevealRequest,
    alerts: AlertSink,
    *,
    at: float | None = None,
) -> RevealResult:
    require(actor.name, actor.role, Permission.REVEAL)
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    refusal: PolicyRefused | None = None
    # One transaction from the first read to the audit record: the settings, the token's state
    # and the limits' counts are those the record is written against (and one transaction
    # costs less than four).
    with vault.transaction() as conn:
        settings = vault.settings(conn)
        owned = vault.tokens_of(request.upn, conn)
        # The user's own row only when they hold no token: "no such user" or "no token".
        upn = owned[0].upn if owned and owned[0].upn else vault.get_user(request.upn, conn).upn
        if settings.four_eyes:
            approver = request.approver
            if approver is None:
                raise PolicyRefused(
                    "the four-eyes rule is on: a second operator must approve (--approver)"
                )
            if approver.name == actor.name:
                raise PolicyRefused("the approver must be a different operator")
            require(approver.name, approver.role, Permission.REVEAL)
        token = _choose_token(owned, upn, request.serial)
        if token.state is TokenState.DELIVERED and not (request.override_reason or "").strip():
            raise PolicyRefused(
                f"token {token.serial} was delivered, so {upn} should have it in hand; give "
                "--override-reason to reveal anyway"
            )
        # Limits are counted behind the chain's lock, so two servers cannot both count one
        # below the limit and both reveal.
        vault.lock_audit(conn)
        since = moment - LIMIT_WINDOW
        by_user = vault.count_audit(conn, action=REVEAL_ACTION, since=since, upn=upn)
        by_operator = vault.count_audit(conn, action=REVEAL_ACTION, since=since, actor=actor.name)
        if by_user >= settings.reveal_limit_per_user:
            refusal = PolicyRefused(
                f"{upn} has had {by_user} codes in 24 hours (the limit); escalate, or {TAP_HINT}"
            )
        elif by_operator >= settings.reveal_limit_per_operator:
            refusal = PolicyRefused(
                f"you have revealed {by_operator} codes in 24 hours (the limit); ask another "
                "operator or an admin"
            )
        if refusal is not None:
            vault.audit(
                conn,
                actor,
                "reveal.limit_reached",
                upn=upn,
                serial=token.serial,
                details={"ticket": request.check.ticket, "reason": refusal.message},
            )
        else:
            secret = vault.read_secret(conn, actor, token, purpose="reveal", audit=False)
            profile = acceptance_profile(settings.acceptance_profile, period=token.period)
            now = moment.timestamp()
            algorithm, digits, period = token.algorithm, token.digits, token.period
            current = timed_codes(
                secret,
                now,
                past=0,
                future=0,
                profile=profile,
                algorithm=algorithm,
                digits=digits,
                period=period,
            )[0]
            longest = longest_valid_code(
                secret, now, profile=profile, algorithm=algorithm, digits=digits, period=period
            )
            del secret
            vault.audit(
                conn,
                actor,
                REVEAL_ACTION,
                upn=upn,
                serial=token.serial,
                details={
                    "verification": request.check.method.value,
                    "ticket": request.check.ticket,
                    "note": request.check.note,
                    "channel": request.channel.value,
                    "step_offsets": [current.step_offset, longest.step_offset],
                    "recommended_offset": (
                        longest if request.channel is Channel.EMAIL else current
                    ).step_offset,
                    "profile": profile.name,
                    "approver": request.approver.name if request.approver else "",
                    "override_reason": request.override_reason or "",
                },
            )
    if refusal is not None:
        # The refusal and its audit record have committed; now tell the security team.
        alerts.emit(
            "reveal.limit_reached",
            operator=actor.name,
            upn=upn,
            serial=token.serial,
            ticket=request.check.ticket,
            reason=refusal.message,
        )
        raise refusal
    return RevealResult(token, profile.name, now, current, longest, request.channel)
