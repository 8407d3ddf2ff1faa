"""Emergency codes for a caller whose token is in the post: the deliberate, guarded back door.

A code is shown only after the operator records how the caller's identity was verified, within
per-user and per-operator limits, optionally approved by a second operator, and only while the
vault still holds the seed. Each reveal is one audit record (which code offsets, never the code),
written in the same transaction as the secret is read: if the record cannot be written, no code.

Reveals run in batches (``reveal_batch``): several in one transaction, with one append to the
audit chain and one commit, so that a server answering many operators at once pays for one fsync
per batch rather than one per reveal (``reveal_queue`` forms the batches). Each reveal in a batch
is still all or nothing: it either ends in its code and its record or leaves no trace but a
refusal's record, and the limits count the reveals before it in the same batch. ``reveal_code``
is a batch of one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput, NotFound, OathdeskError, PolicyRefused
from oathdesk.otp import TimedCode, acceptance_profile, longest_valid_code, timed_codes
from oathdesk.services.alerts import AlertSink
from oathdesk.services.reveal_throttle import KeyThrottle
from oathdesk.vault.api_keys import (
    REFUSAL,
    REFUSED_ACTION,
    ApiKeyRefused,
    check_key,
    stamp_last_use,
)
from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.db import StorageError
from oathdesk.vault.lifecycle import SECRET_STATES, TokenState
from oathdesk.vault.overrides import USED_KEY, Approval, unused_approvals
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, Token, Vault

LIMIT_WINDOW = timedelta(hours=24)
# How long an admin's approval of one reveal beyond the per-user limit stays usable.
OVERRIDE_WINDOW = timedelta(minutes=10)
REVEAL_ACTION = "code.revealed"
CALLBACK_REFUSED_ACTION = "reveal.refused"  # a callback verification without a number on file
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


@dataclass(frozen=True)
class RevealJob:
    """One reveal for a batch: what is asked, and who asks. Either an operator already known
    (``actor``: the CLI, the console, an API request checked beforehand, then with its
    ``key_id``) or an API key (``api_key``), checked in the batch's own transaction so that a
    key revoked meanwhile reveals nothing. Jobs of API keys count against the batch's
    per-key throttle."""

    request: RevealRequest
    actor: Actor | None = None
    api_key: str | None = field(default=None, repr=False)
    key_id: str | None = None


@dataclass(frozen=True)
class RevealOutcome:
    """A job's code or its refusal. ``alert``: the job reached a limit, which the security team
    hears of once the batch (with the refusal's record) has committed."""

    result: RevealResult | None = None
    error: OathdeskError | None = None
    alert: dict[str, str] | None = None

    def result_or_raise(self, alerts: AlertSink) -> RevealResult:
        """The result; or send the alert, if any, and raise the refusal. An alert that could
        not be sent is said in the refusal's line: the operator is then the one to tell the
        security team."""
        failures = []
        if self.alert is not None:
            failures = alerts.emit("reveal.limit_reached", **self.alert)
        if self.error is not None:
            if failures:
                error = copy.copy(self.error)  # the same kind (code, exit status), more said
                error.args = ("; ".join([self.error.message, *(f.message for f in failures)]),)
                raise error
            raise self.error
        assert self.result is not None
        return self.result


def reveal_code(
    vault: Vault,
    actor: Actor,
    request: RevealRequest,
    alerts: AlertSink,
    *,
    at: float | None = None,
) -> RevealResult:
    """One reveal, in a transaction of its own (the CLI; a server uses ``reveal_queue``)."""
    require(actor.name, actor.role, Permission.REVEAL)
    (outcome,) = reveal_batch(vault, [RevealJob(request, actor=actor)], at=at)
    return outcome.result_or_raise(alerts)


def reveal_batch(
    vault: Vault,
    jobs: Sequence[RevealJob],
    *,
    at: float | None = None,
    throttle: KeyThrottle | None = None,
) -> list[RevealOutcome]:
    """Run ``jobs`` in one transaction, in order; an outcome for each.

    A refused job (unknown user, limit, four-eyes rule, wrong key, throttle ...) does not hold
    up the others. What fails the transaction itself (the database, the audit append, the
    commit) raises here, and then no job has revealed anything.
    """
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    # One transaction from the first read to the audit records: the settings, the tokens'
    # states and the limits' counts are those the records are written against.
    with vault.transaction() as conn:
        # The chain's lock first (SQLite's BEGIN IMMEDIATE holds it already; PostgreSQL: the
        # head row), so the limits counted below include every reveal committed before this
        # batch, on every server sharing the vault.
        vault.lock_audit(conn)
        batch = _Batch(vault, conn, moment, throttle)
        outcomes = [batch.run(job) for job in jobs]
        batch.finish()
    return outcomes


class _LimitReached(Exception):
    """A job met a 24-hour limit: its refusal is recorded and the security team alerted."""

    def __init__(self, refusal: PolicyRefused, alert: dict[str, str]) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal
        self.alert = alert


class _Batch:
    """The state of one batch's transaction: the settings, the reveals counted per user and
    operator (this batch's included), the audit records to append, the keys used."""

    def __init__(
        self, vault: Vault, conn: sa.Connection, moment: datetime, throttle: KeyThrottle | None
    ) -> None:
        self.vault = vault
        self.throttle = throttle
        self.conn = conn
        self.moment = moment
        self.settings = vault.settings(conn)
        self.entries: list[AuditEntry] = []
        self._reveals: dict[tuple[str, str], int] = {}  # ("upn"|"actor", name) -> count
        self._keys_used: set[str] = set()
        self._overrides_used: set[int] = set()  # approvals this batch's reveals used

    def run(self, job: RevealJob) -> RevealOutcome:
        try:
            actor = self._actor(job)
            return RevealOutcome(result=self._reveal(actor, job.request))
        except _LimitReached as reached:
            return RevealOutcome(error=reached.refusal, alert=reached.alert)
        except StorageError:
            raise  # the transaction itself failed: the whole batch fails
        except OathdeskError as refused:
            return RevealOutcome(error=refused)

    def finish(self) -> None:
        """Write what the batch's jobs left to write: the keys' last use, the audit records."""
        for key_id in sorted(self._keys_used):
            stamp_last_use(self.conn, key_id, self.moment)
        if self.entries:
            self.vault.audit_entries(self.conn, self.entries)

    def _actor(self, job: RevealJob) -> Actor:
        """Who asks: the job's operator, or the one its API key acts for (checked here)."""
        actor, key_id = job.actor, job.key_id
        if actor is None:
            check = check_key(self.conn, job.api_key or "", self.moment)
            if check.refusal:
                self.entries.append(
                    AuditEntry(check.actor.name, REFUSED_ACTION, details=check.refusal_details())
                )
                raise ApiKeyRefused(REFUSAL)
            if check.stamp_due:
                self._keys_used.add(check.key_id)
            actor, key_id = check.actor, check.key_id
        require(actor.name, actor.role, Permission.REVEAL)
        if key_id is not None and self.throttle is not None:
            self.throttle.take(key_id)
        return actor

    def _override(self, upn: str, actor: Actor) -> Approval | None:
        """An admin's approval of one more reveal for ``upn`` (OVERRIDE_WINDOW, not used yet,
        not in this batch either), from an admin other than the operator revealing."""
        for approval in unused_approvals(
            self.conn, upn, self.moment - OVERRIDE_WINDOW, REVEAL_ACTION
        ):
            if approval.seq not in self._overrides_used and approval.approver != actor.name:
                return approval
        return None

    def _counted(self, kind: str, name: str) -> int:
        """Reveals in the last 24 hours by user (``kind`` "upn") or operator ("actor"): those
        committed, counted once per batch, and this batch's so far."""
        key = (kind, name)
        if key not in self._reveals:
            self._reveals[key] = self.vault.count_audit(
                self.conn, action=REVEAL_ACTION, since=self.moment - LIMIT_WINDOW, **{kind: name}
            )
        return self._reveals[key]

    def _check_callback(self, actor: Actor, upn: str, token: Token, request: RevealRequest) -> None:
        """A "called back" verification needs a number on file: a callback on a number the
        caller gives proves nothing. Refused here, for the CLI, the API and the console alike,
        and audited as a refused reveal (written with the batch's records)."""
        if request.check.method is not VerificationMethod.CALLBACK:
            return
        if self.vault.get_user(upn, self.conn).phone:
            return
        refusal = PolicyRefused(
            f"{upn} has no phone number on file to call back on; add it with "
            f"`oathdesk user edit {upn} --phone +NUMBER` (or Edit on the user's page), "
            "or verify the identity another way"
        )
        self.entries.append(
            AuditEntry(
                actor.name,
                CALLBACK_REFUSED_ACTION,
                upn,
                token.serial,
                {
                    "verification": request.check.method.value,
                    "ticket": request.check.ticket,
                    "reason": "no phone number on file",
                },
            )
        )
        raise refusal

    def _reveal(self, actor: Actor, request: RevealRequest) -> RevealResult:
        conn, settings = self.conn, self.settings
        owned = self.vault.tokens_of(request.upn, conn)
        # The user's own row only when they hold no token: "no such user" or "no token".
        upn = owned[0].upn if owned and owned[0].upn else self.vault.get_user(request.upn, conn).upn
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
        self._check_callback(actor, upn, token, request)
        if token.state is TokenState.DELIVERED and not (request.override_reason or "").strip():
            raise PolicyRefused(
                f"token {token.serial} was delivered, so {upn} should have it in hand; give "
                "--override-reason to reveal anyway"
            )
        by_user = self._counted("upn", upn)
        by_operator = self._counted("actor", actor.name)
        refusal = None
        override = None
        if by_user >= settings.reveal_limit_per_user:
            override = self._override(upn, actor)
        if by_user >= settings.reveal_limit_per_user and override is None:
            refusal = PolicyRefused(
                f"{upn} has had {by_user} codes in 24 hours (the limit); escalate (an admin can "
                f"approve one more on the user's page), or {TAP_HINT}"
            )
        elif by_operator >= settings.reveal_limit_per_operator:
            refusal = PolicyRefused(
                f"you have revealed {by_operator} codes in 24 hours (the limit); ask another "
                "operator or an admin"
            )
        if refusal is not None:
            ticket = request.check.ticket
            self.entries.append(
                AuditEntry(
                    actor.name,
                    "reveal.limit_reached",
                    upn,
                    token.serial,
                    {"ticket": ticket, "reason": refusal.message},
                )
            )
            alert = {"operator": actor.name, "upn": upn, "serial": token.serial}
            raise _LimitReached(refusal, {**alert, "ticket": ticket, "reason": refusal.message})
        secret = self.vault.read_secret(conn, actor, token, purpose="reveal", audit=False)
        profile = acceptance_profile(settings.acceptance_profile, period=token.period)
        now = self.moment.timestamp()
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
        recommended = longest if request.channel is Channel.EMAIL else current
        self.entries.append(
            AuditEntry(
                actor.name,
                REVEAL_ACTION,
                upn,
                token.serial,
                {
                    "verification": request.check.method.value,
                    "ticket": request.check.ticket,
                    "note": request.check.note,
                    "channel": request.channel.value,
                    "step_offsets": [current.step_offset, longest.step_offset],
                    "recommended_offset": recommended.step_offset,
                    "profile": profile.name,
                    "approver": request.approver.name if request.approver else "",
                    "override_reason": request.override_reason or "",
                    # Beyond the per-user limit by an admin's approval: which one, and whose.
                    **(
                        {USED_KEY: override.seq, "limit_override_by": override.approver}
                        if override is not None
                        else {}
                    ),
                },
            )
        )
        if override is not None:
            self._overrides_used.add(override.seq)
        self._reveals[("upn", upn)] += 1
        self._reveals[("actor", actor.name)] += 1
        return RevealResult(token, profile.name, now, current, longest, request.channel)
