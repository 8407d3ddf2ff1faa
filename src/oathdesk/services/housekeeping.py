"""Housekeeping: the jobs nobody should have to remember, run as one cycle of named steps.

Each step is a plain function that does its job and returns what it did (counts, never a
secret); it raises an ``OathdeskError`` (one line) when it fails. A cycle runs every step: a
failed one raises an alert (``AlertSink``; an alert that cannot be sent is ``alert.failed`` in
the audit log) and the others still run. The cycle ends with ONE audit record,
``housekeeping.cycle``, naming what each step did or why it failed.

Every step is idempotent by construction, so a cycle cut short (a server killed) is completed by
the next one and nothing is done twice: the purge erases only seeds still due; Entra sync
applies only differences still there; the undelivered warning records each token it warned
about (``token.undelivered_warned``, per token and user) and warns about a token once, not every
hour; the findings alert does the same for each difference a sync left for a person
(``entra.finding_alerted``, per kind, serial and user); the chain check only reads.

Several servers on one vault (PostgreSQL) run each cycle once: time is cut into slots of the
interval (slot = floor(seconds since the epoch / interval)); the server that takes the vault's
lease (``Vault.lease``) checks, under it, whether the slot's cycle record exists, runs the cycle
if not, and writes the record with the slot. A server that finds the lease taken skips; one whose
holder died on this machine takes it over at once (another machine's: when the lease expires).
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from oathdesk.errors import Conflict, InvalidInput, OathdeskError
from oathdesk.services.alerts import AlertSink
from oathdesk.vault import housekeeping as records
from oathdesk.vault import token_counts
from oathdesk.vault.entra_records import read_connection
from oathdesk.vault.leases import LeaseHolder
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault

log = logging.getLogger("oathdesk.housekeeping")
log.addHandler(logging.NullHandler())  # a library's rule: the application decides where it goes

HOUSEKEEPING_ACTOR = Actor("oathdesk:housekeeping", "admin")
LEASE_JOB = "oathdesk housekeeping"
# Renewed between steps; one step (a large Entra sync) may take minutes.
LEASE_TTL = timedelta(minutes=15)
DEFAULT_INTERVAL = timedelta(hours=1)
INTERVAL_ENV = "OATHDESK_HOUSEKEEPING_EVERY"
# Late tokens warned about per cycle (one alert lists them); the rest come in the next cycles.
WARN_AT_MOST = 500
# Serials named in the warning alert itself; the audit names every one.
SERIALS_IN_ALERT = 50
# The alert about what a sync left for a person (differences it does not apply by itself).
FINDINGS_EVENT = "entra.for_a_person"
# Of the differences left for a person that a cycle's record names, those named in the step's
# one line (the CLI, the console's /housekeeping page).
REPORTED_IN_LINE = 5
# A cycle a server could not run (another held the lease, the vault was away) is tried again
# this often within its slot.
RETRY_EVERY = timedelta(seconds=30)

DONE_ALREADY = "this slot's cycle is done already"

StepFunction = Callable[["Context"], dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """What a step works with."""

    vault: Vault
    alerts: AlertSink
    # Read at each step's time, not the cycle's start: a token the sync step delivers with
    # retention 0 is due for the purge step of the same cycle.
    clock: Callable[[], datetime] = utc_now
    actor: Actor = HOUSEKEEPING_ACTOR

    def now(self) -> datetime:
        return self.clock()


class StepSkipped(Exception):
    """The step does not apply (e.g. no Entra connection); ``args[0]`` says why."""


@dataclass
class StepResult:
    name: str
    did: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    skipped: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)

    def as_dict(self) -> dict[str, Any]:
        if self.error:
            return {"error": self.error}
        if self.skipped:
            return {"skipped": self.skipped}
        return dict(self.did)

    def line(self) -> str:
        """One line for people: the step's name and what it did."""
        if self.error:
            return f"{self.name}: failed: {self.error}"
        if self.skipped:
            return f"{self.name}: skipped: {self.skipped}"
        return f"{self.name}: " + ", ".join(f"{k} {_shown(v)}" for k, v in self.did.items())


def _shown(value: Any) -> str:
    if isinstance(value, list):  # for_a_person: a few by serial, the rest counted
        named = [
            f"{item.get('kind')} {item.get('serial')}" if isinstance(item, dict) else str(item)
            for item in value[:REPORTED_IN_LINE]
        ]
        more = f" and {len(value) - len(named)} more" if len(value) > len(named) else ""
        return "(" + ", ".join(named) + more + ")" if named else "none"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {v}" for k, v in value.items()) + "}" if value else "none"
    return str(value)


@dataclass
class CycleResult:
    """A cycle run (``ran``), or why this caller did not run it (``skipped``)."""

    slot: int | None
    steps: list[StepResult] = field(default_factory=list)
    skipped: str = ""
    seq: int | None = None  # the cycle's audit record

    @property
    def ran(self) -> bool:
        return not self.skipped

    @property
    def failed(self) -> list[StepResult]:
        return [step for step in self.steps if step.failed]


# -- the steps -------------------------------------------------------------------------------------


def entra_sync_step(context: Context) -> dict[str, Any]:
    """`entra sync`, when the vault has an Entra connection (it holds a lease of its own)."""
    from oathdesk.services.entra_session import open_session
    from oathdesk.services.entra_sync import sync_entra

    with context.vault.reading() as conn:
        if read_connection(conn) is None:
            raise StepSkipped("no Entra connection (`oathdesk entra login`)")
    with open_session(context.vault, context.actor) as session:
        result = sync_entra(session)
    # The sync's own record's figures (entra.synced), which name what is left for a person: a
    # cycle is often the only sync anyone runs, so its record says which serials to look at.
    did = result.summary()
    did.pop("took_over")  # the cycle names its own lease's take-over
    return did


def entra_findings_step(context: Context) -> dict[str, Any]:
    """Alert about what the newest `entra sync` (whoever ran it) left for a person and no alert
    named before: ONE alert a cycle (``entra.for_a_person``: how many of each kind, and which),
    not one per finding or per hour. Each finding named is recorded (``entra.finding_alerted``)
    after the alert went out, so it is named once, and an alert that failed is tried again in
    the next cycle. A sync record names the first findings only (entra_sync.NAMED_IN_RECORD);
    the alert gives the sync's whole count beside them."""
    vault = context.vault
    with vault.reading() as conn:
        synced = records.last_sync(conn)
        if synced is None:
            raise StepSkipped("no Entra sync recorded yet")
        named = _findings(synced.details)
        alerted = records.alerted_findings(conn, {serial for _, serial, _ in named})
    new = [finding for finding in named if finding not in alerted]
    reported = synced.details.get("reported", len(named))
    if new:
        kinds = Counter(kind for kind, _, _ in new)
        failures = context.alerts.emit(
            FINDINGS_EVENT,
            count=len(new),
            kinds=dict(sorted(kinds.items())),
            findings=[
                {"kind": kind, "serial": serial, "upn": upn}
                for kind, serial, upn in new[:SERIALS_IN_ALERT]
            ],
            reported_by_sync=reported,
            see="`oathdesk entra pull` lists them all; docs/entra.md says what each kind needs",
        )
        if failures:
            raise AlertNotSent(
                f"the alert about {len(new)} sync finding(s) for a person was not sent "
                f"({failures[0].reason}); it is tried again in the next cycle"
            )
        with vault.unit_of_work(context.actor) as work:
            for kind, serial, upn in new:
                work.audit(
                    records.FINDING_ALERTED_ACTION,
                    upn=upn,
                    serial=serial,
                    details={"kind": kind, "sync_record": synced.seq},
                )
    return {"for_a_person": reported, "alerted": len(new)}


def _findings(details: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A sync record's findings for a person as (kind, serial, upn), each once, in its order."""
    listed = details.get("for_a_person")
    found = (
        (str(item.get("kind", "")), str(item.get("serial", "")), str(item.get("upn") or ""))
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    )
    return list(dict.fromkeys(found))


def purge_step(context: Context) -> dict[str, Any]:
    """`purge --due`: erase the seeds whose retention period is over."""
    purged = context.vault.purge_due(context.actor, now=context.now())
    return {"purged": len(purged)}


def undelivered_warning_step(context: Context) -> dict[str, Any]:
    """Warn (an alert) about tokens still not delivered after the warning period, each token
    once per user: the warned ones are recorded (``token.undelivered_warned``) after the alert
    went out, so an alert that failed is tried again in the next cycle."""
    vault = context.vault
    with vault.reading() as conn:
        days = vault.settings(conn).undelivered_warning_days
        cutoff = context.now() - timedelta(days=days)
        late = records.late_count(conn, cutoff)
        new = records.late_unwarned(conn, cutoff, limit=WARN_AT_MOST)
    if new:
        failures = context.alerts.emit(
            "tokens.undelivered",
            count=len(new),
            days=days,
            serials=[serial for serial, _ in new[:SERIALS_IN_ALERT]],
        )
        if failures:
            raise AlertNotSent(
                f"the warning about {len(new)} undelivered token(s) was not sent "
                f"({failures[0].reason}); it is tried again in the next cycle"
            )
        with vault.unit_of_work(context.actor) as work:
            for serial, upn in new:
                work.audit(records.WARNED_ACTION, upn=upn, serial=serial, details={"days": days})
    return {"late": late, "warned": len(new)}


class AlertNotSent(OathdeskError):
    code = "alert_not_sent"


class ChainBroken(OathdeskError):
    code = "audit_chain_broken"


def audit_chain_step(context: Context) -> dict[str, Any]:
    """Check the whole audit chain (it only reads)."""
    check = context.vault.check_audit(None)
    if check.problems:
        raise ChainBroken(
            f"the audit chain is broken ({len(check.problems)} problem(s), first: "
            f"{check.problems[0]}); run `oathdesk audit verify` and see docs/audit.md"
        )
    return {"intact_through_record": check.end.seq if check.end is not None else 0}


class CountsCorrected(OathdeskError):
    code = "token_counts_corrected"


def token_counts_step(context: Context) -> dict[str, Any]:
    """Count the tokens per state afresh (one read of the tokens index per cycle) and put the
    figures the start page shows back in one row per state. A figure that was off means a write
    left its change unrecorded: the figures are right again after this step, and the step fails
    (an alert) so that the bug is reported rather than hidden."""
    with context.vault.transaction() as conn:
        wrong = token_counts.recount(conn)
    if wrong:
        off = ", ".join(f"{state} {difference:+d}" for state, difference in wrong.items())
        raise CountsCorrected(
            f"the tokens per state the vault kept were off ({off}) and are corrected; a write "
            "left its change unrecorded: report it as an oathdesk bug"
        )
    return {"counted": True}


STEPS: tuple[tuple[str, StepFunction], ...] = (
    ("entra_sync", entra_sync_step),
    ("entra_findings", entra_findings_step),
    ("purge", purge_step),
    ("undelivered_warning", undelivered_warning_step),
    ("audit_chain", audit_chain_step),
    ("token_counts", token_counts_step),
)


# -- a cycle ---------------------------------------------------------------------------------------


def slot_of(moment: datetime, interval: timedelta) -> int:
    return math.floor(moment.timestamp() / interval.total_seconds())


def slot_start(slot: int, interval: timedelta) -> datetime:
    return datetime.fromtimestamp(slot * interval.total_seconds(), UTC)


def run_step(name: str, step: StepFunction, context: Context) -> StepResult:
    """One step; a failure becomes the result's error and an alert, never an exception."""
    try:
        return StepResult(name, did=step(context))
    except StepSkipped as skipped:
        return StepResult(name, skipped=str(skipped.args[0]))
    except OathdeskError as error:
        reason = error.message
    except Exception as error:
        # Only the exception's type: its text could quote anything (a row, a response).
        reason = f"unexpected {type(error).__name__}; see the server's log"
        log.error("housekeeping step %s failed: %s", name, type(error).__name__)
    context.alerts.emit("housekeeping.step_failed", step=name, reason=reason)
    return StepResult(name, error=reason)


def run_cycle(
    vault: Vault,
    alerts: AlertSink,
    *,
    interval: timedelta | None = None,
    now: Callable[[], datetime] = utc_now,
    steps: tuple[tuple[str, StepFunction], ...] = STEPS,
    host: str | None = None,
    take_over: Callable[[LeaseHolder], bool] | None = None,
) -> CycleResult:
    """Run one cycle under the vault's lease and record it (one audit record).

    ``interval`` (a server's schedule): the cycle of the current slot, unless it is done
    already, and a lease held by another run means skipping (``skipped`` says why). Without
    (`oathdesk housekeeping`): a cycle now, and Conflict (one line) when another runs; a
    holder on another machine is taken over when ``take_over`` (a person) confirms it is gone."""
    started = now()
    host = host or socket.gethostname()
    slot = slot_of(started, interval) if interval is not None else None
    # Read first: most servers find the slot done, and need not write (the lease) to see it.
    if slot is not None and interval is not None and _slot_done(vault, slot, interval):
        return CycleResult(slot, skipped=DONE_ALREADY)
    try:
        with vault.lease(
            LEASE_JOB, HOUSEKEEPING_ACTOR, host=host, ttl=LEASE_TTL, take_over=take_over
        ) as lease:
            if slot is not None and interval is not None and _slot_done(vault, slot, interval):
                return CycleResult(slot, skipped=DONE_ALREADY)
            context = Context(vault, alerts, now)
            results = []
            for name, step in steps:
                lease.renew()
                results.append(run_step(name, step, context))
            details: dict[str, Any] = {
                "slot": slot,
                "interval_seconds": int(interval.total_seconds()) if interval else None,
                "started_at": started.isoformat(),
                "server": f"{host} process {os.getpid()}",
                "took_over": lease.taken_over.describe() if lease.taken_over else None,
                "failed": [r.name for r in results if r.failed],
                "steps": {r.name: r.as_dict() for r in results},
            }
            with vault.unit_of_work(HOUSEKEEPING_ACTOR) as work:
                seq = work.audit(records.CYCLE_ACTION, details=details)
            return CycleResult(slot, results, seq=seq)
    except Conflict as busy:
        if slot is None:
            raise
        return CycleResult(slot, skipped=busy.message)


def _slot_done(vault: Vault, slot: int, interval: timedelta) -> bool:
    """Whether a cycle of this slot of this interval is recorded. Slots are numbered per
    interval (a 2 s slot's number is far above an hour's), so only cycles of the same interval
    count; a server restarted with another interval runs its own slots."""
    seconds = int(interval.total_seconds())
    with vault.reading() as conn:
        # A handful is enough: slots only grow, and `oathdesk housekeeping` runs have none.
        recent = records.recent_cycles(conn, limit=5)
    return any(
        cycle.slot is not None
        and cycle.details.get("interval_seconds") == seconds
        and cycle.slot >= slot
        for cycle in recent
    )


# -- what the console shows -------------------------------------------------------------------


@dataclass(frozen=True)
class CycleView:
    """A recorded cycle, for a page."""

    seq: int
    at: datetime
    server: str
    took_over: str
    steps: list[StepResult]

    @property
    def failed(self) -> list[StepResult]:
        return [step for step in self.steps if step.failed]


@dataclass(frozen=True)
class Status:
    cycles: list[CycleView]  # newest first
    more_before: int | None  # the seq to page on from, when older cycles exist
    interval: timedelta | None  # the schedule the newest server cycle ran on
    next_due: datetime | None


def status(vault: Vault, actor: Actor, *, limit: int, before: int | None = None) -> Status:
    """A page of the last cycles (newest first) and when the next one is due (from the newest
    cycle a server ran: the start of its next slot). Cycles are audit records: READ_AUDIT."""
    require(actor, Permission.READ_AUDIT)
    with vault.reading() as conn:
        found = records.recent_cycles(conn, limit=limit + 1, before=before)
        scheduled = next(
            (c for c in records.recent_cycles(conn, limit=5) if c.slot is not None), None
        )
    more = found[limit - 1].seq if len(found) > limit else None
    interval = next_due = None
    if scheduled is not None and scheduled.slot is not None:
        seconds = scheduled.details.get("interval_seconds")
        if isinstance(seconds, int) and seconds > 0:
            interval = timedelta(seconds=seconds)
            next_due = slot_start(scheduled.slot + 1, interval)
    return Status([_view(c) for c in found[:limit]], more, interval, next_due)


def _view(cycle: records.CycleRecord) -> CycleView:
    steps = []
    for name, did in (cycle.details.get("steps") or {}).items():
        did = dict(did) if isinstance(did, dict) else {}
        error, skipped = str(did.pop("error", "")), str(did.pop("skipped", ""))
        steps.append(StepResult(str(name), did=did, error=error, skipped=skipped))
    return CycleView(
        cycle.seq,
        cycle.at,
        str(cycle.details.get("server") or cycle.actor),
        str(cycle.details.get("took_over") or ""),
        steps,
    )


# -- the schedule (``oathdesk serve``) ----------------------------------------------------------


def parse_interval(text: str) -> timedelta | None:
    """``3600``, ``90s``, ``15m``, ``1h``, ``1d``; ``0`` or ``off``: None (no schedule)."""
    cleaned = text.strip().lower()
    if cleaned in ("0", "off", "none", "no"):
        return None
    match = re.fullmatch(r"(\d{1,7})\s*([smhd]?)", cleaned)
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(
            f"the housekeeping interval is a number of seconds or e.g. 90s, 15m, 1h, 1d (or off "
            f"to run none), not {text.strip()!r}"
        )
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return timedelta(seconds=int(match.group(1)) * unit)


def describe_interval(interval: timedelta | None) -> str:
    if interval is None:
        return "off (run `oathdesk housekeeping` from a timer; see docs/housekeeping.md)"
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


class Schedule:
    """Runs a cycle each interval in a thread of its own that outlives every failure: a cycle
    that raises is logged (its type and one-line message) and alerted, and the next is tried."""

    def __init__(
        self,
        vault: Vault,
        alerts: AlertSink,
        interval: timedelta,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.vault = vault
        self.alerts = alerts
        self.interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="oathdesk-housekeeping", daemon=True
        )

    def __repr__(self) -> str:
        return f"Schedule({describe_interval(self.interval)})"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def run_once(self) -> CycleResult | None:
        """Try this slot's cycle; None when it failed as a whole (logged and alerted)."""
        try:
            result = run_cycle(self.vault, self.alerts, interval=self.interval, now=self._clock)
        except Exception as error:
            reason = error.message if isinstance(error, OathdeskError) else type(error).__name__
            log.error("housekeeping cycle failed: %s", reason)
            self.alerts.emit("housekeeping.cycle_failed", reason=reason)
            return None
        if result.ran:
            summary = "; ".join(step.line() for step in result.steps)
            level = logging.WARNING if result.failed else logging.INFO
            # Named by when its slot began (the slot number alone means nothing to a reader);
            # a schedule has an interval, so each of its cycles has a slot.
            assert result.slot is not None
            began = slot_start(result.slot, self.interval)
            log.log(
                level, "housekeeping cycle of %s UTC: %s", f"{began:%Y-%m-%d %H:%M:%S}", summary
            )
        return result

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.run_once()
            except Exception as error:  # an alert sink's own bug: the schedule still goes on
                log.error("housekeeping cycle failed: %s", type(error).__name__)
                result = None
            now = self._clock()
            next_slot = slot_start(slot_of(now, self.interval) + 1, self.interval)
            wait = (next_slot - now).total_seconds()
            if result is None or (not result.ran and result.skipped != DONE_ALREADY):
                # Not done by us: done by another server, or to be tried again soon.
                wait = min(wait, RETRY_EVERY.total_seconds())
            # A little past the slot's start, so every server's clock agrees it has begun.
            self._stop.wait(max(0.05, wait + 0.05))
