"""`entra push`: create the vault's tokens in Entra's inventory, assign each to its user and
activate it with a code oathdesk computes at that moment, then mark the token registered.

With ``stock`` (`entra push --stock`) it uploads the vault's stock tokens (no user) instead,
unassigned, for users to self-assign at My Security Info; each becomes ``registered`` without a
user, its journal entry ``stock`` (so `entra sync` knows that whoever activates it typed a code
off it), and `entra sync` later gives it the user who took it.

Resumable: a journal in the vault records per serial how far it got, and before any step is
(re)done Graph is asked where the token stands (the inventory listing, and ``$filter`` by serial
after a dropped connection), so an interrupted run can be started again without creating or
activating anything twice. Each token's move to ``registered`` is one vault transaction with its
journal entry and audit record.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from oathdesk.errors import OathdeskError
from oathdesk.formats.graph_json import DEFAULT_MANUFACTURER, HASH_FUNCTIONS
from oathdesk.graph.api import Device
from oathdesk.graph.errors import GraphConnectionLost, GraphError, GraphPermissionError
from oathdesk.graph.throttle import RateLimiter
from oathdesk.otp import totp
from oathdesk.seed import encode_base32
from oathdesk.services.entra_session import EntraSession
from oathdesk.services.entra_store import journal
from oathdesk.vault.entra_records import write_journal
from oathdesk.vault.leases import Lease, LeaseHolder
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.vault import Token

# Entra's documented limit (older docs): 200 activations per 5 minutes.
ACTIVATIONS_PER_WINDOW = 200
ACTIVATION_WINDOW_SECONDS = 300.0
BATCH_SIZE = 50
DONE = "activated"
STOCK = "stock"  # the journal's step for a token uploaded unassigned (entra_reconcile.STOCK_STEP)
ALREADY_DONE = "already done"
# Vault states a push leaves behind (registered) or that follow it: a serial asked for by name
# in one of them was finished before, by an earlier run (or by a CSV upload), not a failure.
FINISHED = frozenset(
    (TokenState.REGISTERED, TokenState.SHIPPED, TokenState.DELIVERED, TokenState.SECRET_PURGED)
)
LEASE_JOB = "oathdesk entra push"
# Renewed before every batch and activation: longer than the limiter's longest wait (a 5-minute
# window) and a throttled call's retries, short enough that a killed push does not hold up the
# next one for long.
LEASE_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class PushOptions:
    dry_run: bool = False
    serials: tuple[str, ...] = ()
    batch_size: int = BATCH_SIZE
    activations: int = ACTIVATIONS_PER_WINDOW
    window_seconds: float = ACTIVATION_WINDOW_SECONDS
    by_serial: bool = False  # assignAndActivateBySerialNumber instead of by device id
    stock: bool = False  # upload stock tokens unassigned, for self-service (no activation)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


@dataclass(frozen=True)
class PushOutcome:
    serial: str
    upn: str
    result: str  # activated | already activated | already done | failed | would ...
    detail: str = ""


@dataclass
class PushReport:
    outcomes: list[PushOutcome] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early (run again to resume)
    took_over: str = ""  # whose lease this run took over, and why
    limiter_waited: float = 0.0
    throttled_waited: float = 0.0

    def add(self, outcome: PushOutcome, progress: Callable[[PushOutcome], None] | None) -> None:
        self.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)

    @property
    def failed(self) -> list[PushOutcome]:
        return [o for o in self.outcomes if o.result == "failed"]

    @property
    def already_done(self) -> list[PushOutcome]:
        return [o for o in self.outcomes if o.result == ALREADY_DONE]


def pushable(token: Token) -> bool:
    """Tokens waiting for Entra: a classic token assigned to a user, or a programmable one
    burned with its seed; the seed still in the vault."""
    waiting = (token.kind is TokenKind.CLASSIC and token.state is TokenState.ASSIGNED) or (
        token.kind is TokenKind.PROGRAMMABLE and token.state is TokenState.BURNED
    )
    return waiting and token.has_secret and bool(token.upn)


def stockable(token: Token) -> bool:
    """Stock for self-service: in stock, no user, the seed still in the vault."""
    return token.state is TokenState.IN_STOCK and token.has_secret and not token.upn


def graph_misfit(token: Token) -> str:
    """Why Entra cannot take this token as a hardware OATH device ("" if it can)."""
    if token.digits != 6:
        return f"it shows {token.digits} digits; Entra takes 6"
    if token.period not in (30, 60):
        return f"its interval is {token.period} s; Entra takes 30 or 60"
    if token.algorithm.value not in HASH_FUNCTIONS:
        return f"it uses {token.algorithm.value.upper()}; Entra takes SHA-1 or SHA-256"
    return ""


def _candidates(
    session: EntraSession, serials: Sequence[str], report: PushReport, *, stock: bool
) -> list[Token]:
    wanted = stockable if stock else pushable
    if not serials:
        # Only the states push takes are read (token_from_row costs ~35 us a token).
        waiting = (TokenState.IN_STOCK,) if stock else (TokenState.ASSIGNED, TokenState.BURNED)
        tokens = session.vault.list_tokens(states=waiting)
        return [t for t in tokens if wanted(t) and not graph_misfit(t)]
    by_serial = {t.serial: t for t in session.vault.list_tokens()}
    earlier = journal(session.vault, list(serials))
    chosen = []
    for serial in dict.fromkeys(serials):
        token = by_serial.get(serial)
        if token is None:
            report.add(PushOutcome(serial, "", "failed", "not in the vault"), None)
        elif token.state in FINISHED:
            # A rerun of the same command after an interruption names the serials the first
            # run finished: they are done, and a scripted retry must be able to succeed.
            entry = earlier.get(serial)
            how = (
                f"activated in Entra by an earlier push (device {entry.device_id})"
                if entry is not None and entry.step == DONE
                else f"uploaded to Entra as stock by an earlier push (device {entry.device_id})"
                if entry is not None and entry.step == STOCK
                else "registered in Entra before"
            )
            detail = f"{how}; the vault has it {token.state.value}"
            report.add(PushOutcome(serial, token.upn or "", ALREADY_DONE, detail), None)
        elif stock and not stockable(token):
            why = (
                "its seed is no longer in the vault"
                if not token.has_secret
                else f"it is {token.state.value} on {token.upn}; --stock takes tokens in stock "
                "without a user (push it without --stock)"
                if token.upn
                else f"it is {token.state.value}; --stock takes tokens in stock"
            )
            report.add(PushOutcome(serial, token.upn or "", "failed", why), None)
        elif not stock and not pushable(token):
            why = (
                "its seed is no longer in the vault"
                if not token.has_secret
                else "it has no user (stock goes to Entra with `oathdesk entra push --stock`)"
                if not token.upn
                else f"it is {token.state.value} ({token.kind.value}); push takes assigned "
                "classic tokens and burned programmable ones"
            )
            report.add(PushOutcome(serial, token.upn or "", "failed", why), None)
        elif graph_misfit(token):
            report.add(PushOutcome(serial, token.upn or "", "failed", graph_misfit(token)), None)
        else:
            chosen.append(token)
    return chosen


def push(
    session: EntraSession,
    options: PushOptions,
    progress: Callable[[PushOutcome], None] | None = None,
    take_over: Callable[[LeaseHolder], bool] | None = None,
) -> PushReport:
    """Push the waiting tokens (see the module's docstring). One push at a time per vault: two
    desks pushing at once would both create and activate the same tokens, so a real run holds
    the vault's lease for the job (a dry run changes nothing and needs none). A lease whose
    holder was killed on this machine is taken over at once; one held from another machine
    only when ``take_over`` (a person, shown the holder) confirms that run is gone."""
    if options.dry_run:
        return _push(session, options, progress, None)
    with session.vault.lease(
        LEASE_JOB, session.actor, host=socket.gethostname(), ttl=LEASE_TTL, take_over=take_over
    ) as lease:
        took_over = ""
        if lease.taken_over is not None:
            took_over = (
                f"took over the lease of the push by {lease.taken_over.describe()} "
                f"({lease.take_over_reason})"
            )
        report = _push(session, options, progress, lease)
        report.took_over = took_over
        return report


def _push(
    session: EntraSession,
    options: PushOptions,
    progress: Callable[[PushOutcome], None] | None,
    lease: Lease | None,
) -> PushReport:
    report = PushReport()
    candidates = _candidates(session, options.serials, report, stock=options.stock)
    if not candidates:
        return report
    if not options.dry_run and _method_disabled(session):
        report.stopped = (
            "the hardware OATH method is disabled in Entra's authentication methods policy; "
            "run `oathdesk entra enable` (Entra may take up to an hour to apply it)"
        )
        return report
    inventory: dict[str, list[Device]] = {}
    with session.collecting_calls():  # the pages' records in one append, not one each
        listed = session.api.devices()
    session.write_call_records()
    for device in listed:
        inventory.setdefault(device.serial, []).append(device)
    runner = _Runner(session, options, report, progress, inventory, lease)
    try:
        runner.run(candidates)
    except (GraphConnectionLost, GraphPermissionError) as error:
        report.stopped = error.message
    report.throttled_waited = session.client.waited
    report.limiter_waited = runner.limiter.waited
    return report


def _method_disabled(session: EntraSession) -> bool:
    """Whether the policy says the method is off (activations would all fail); a policy we
    may not read is not a reason to stop."""
    try:
        return session.api.policy_state() == "disabled"
    except GraphPermissionError:
        return False


class _CountingLimiter(RateLimiter):
    waited = 0.0

    def acquire(self) -> float:
        pause = super().acquire()
        self.waited += pause
        return pause


class _Runner:
    def __init__(
        self,
        session: EntraSession,
        options: PushOptions,
        report: PushReport,
        progress: Callable[[PushOutcome], None] | None,
        inventory: dict[str, list[Device]],
        lease: Lease | None,
    ) -> None:
        self.session = session
        self.lease = lease
        self.api = session.api
        self.vault = session.vault
        self.actor = session.actor
        self.options = options
        self.report = report
        self.progress = progress
        self.inventory = inventory
        self.limiter = _CountingLimiter(
            options.activations, options.window_seconds, sleep=options.sleep
        )

    def done(self, token: Token, result: str, detail: str = "") -> None:
        self.report.add(PushOutcome(token.serial, token.upn or "", result, detail), self.progress)

    def run(self, candidates: list[Token]) -> None:
        entries = journal(self.vault, [t.serial for t in candidates])
        ready: list[tuple[Token, Device]] = []
        to_create: list[Token] = []
        for token in candidates:
            found = self.inventory.get(token.serial, [])
            if len(found) > 1:
                # A spare uploaded beside ours (by CSV, say): ours is the one the journal
                # created or the one on the token's user; otherwise nobody can tell which.
                entry = entries.get(token.serial)
                device = self.ours(token, found, entry.device_id if entry else None)
                if device is not None:
                    ready.append((token, device))
                    continue
                listed = "; ".join(f"{d.id} ({d.status})" for d in found)
                whose = "" if self.options.stock else f"on {token.upn} or "
                self.done(
                    token,
                    "failed",
                    f"serial is {len(found)} times in Entra's inventory ({listed}), none of them "
                    f"{whose}created by oathdesk; delete the spare ones in the Entra admin center",
                )
            elif found:
                ready.append((token, found[0]))
            else:
                to_create.append(token)
                entry = entries.get(token.serial)
                if entry is not None and entry.step == DONE:
                    # The journal says done but Entra has no such device: someone deleted it.
                    self.log(token, "created", error="device gone from Entra; creating again")
        if self.options.dry_run:
            self.dry_run(ready, to_create)
            return
        size = max(1, self.options.batch_size)
        for start in range(0, len(to_create), size):
            self.still_alone()
            ready.extend(self.create(to_create[start : start + size]))
        for token, device in ready:
            if self.options.stock:
                self.register_stock(token, device)
            else:
                self.activate(token, device)

    def ours(self, token: Token, found: list[Device], device_id: str | None) -> Device | None:
        """Among devices sharing a serial, the one this token is: created by an earlier push
        (the journal's id), else the only one assigned to the token's user."""
        for device in found:
            if device_id is not None and device.id == device_id:
                return device
        if self.options.stock or not any(d.assigned_to for d in found):
            return None
        mine = {m.device_id or m.id for m in self.api.hardware_methods(token.upn or "")}
        on_user = [d for d in found if d.id in mine]
        return on_user[0] if len(on_user) == 1 else None

    def still_alone(self) -> None:
        """Renew the lease before a step that changes Entra (stops if another run took over)."""
        if self.lease is not None:
            self.lease.renew()

    def dry_run(self, ready: list[tuple[Token, Device]], to_create: list[Token]) -> None:
        if self.options.stock:
            for token in to_create:
                self.done(
                    token,
                    "would create unassigned",
                    "its seed leaves the vault for Microsoft's inventory, for any user who "
                    "holds the token to self-assign",
                )
            for token, device in ready:
                self.done(token, "would mark registered", f"in Entra already ({device.status})")
            return
        for token in to_create:
            self.done(token, "would create", f"then assign to {token.upn} and activate")
        for token, device in ready:
            if device.status == DONE:
                self.done(token, "would mark registered", "already activated in Entra")
            else:
                self.done(token, "would activate", f"in Entra as {device.status}")

    def log(
        self,
        token: Token,
        step: str,
        *,
        device_id: str | None = None,
        error: str = "",
        attempted: bool = False,
    ) -> None:
        with self.vault.transaction() as conn:
            write_journal(
                conn,
                token.serial,
                upn=token.upn or "",
                step=step,
                device_id=device_id,
                error=error,
                attempted=attempted,
            )

    # -- create ----------------------------------------------------------------------------------

    def create(self, batch: list[Token]) -> list[tuple[Token, Device]]:
        """Create one ``$delta`` batch; returns the tokens with their new devices."""
        bodies: list[dict[str, Any]] = []
        with self.vault.unit_of_work(self.actor) as work:
            for token in batch:
                secret = work.read_secret(token, purpose="entra push: create device")
                bodies.append(_device_body(token, encode_base32(secret)))
            for token in batch:
                write_journal(work.conn, token.serial, upn=token.upn or "", step="creating")
        secrets = [str(body["secretKey"]) for body in bodies]
        try:
            answer = self.api.create_devices(bodies, secrets=secrets)
        except GraphConnectionLost:
            # Did the batch land? Ask Graph serial by serial before the run stops.
            self.recheck(batch)
            raise
        except GraphPermissionError:
            raise
        except GraphError as error:
            for token in batch:
                self.log(token, "creating", error=error.message, attempted=True)
                self.done(token, "failed", error.message)
            return []
        ready = []
        for token, result in zip(batch, answer, strict=True):
            if result is not None and result.error:
                self.log(token, "creating", error=result.error, attempted=True)
                self.done(token, "failed", result.error)
                continue
            device = (
                Device(result.device_id, token.serial, "available", "", "")
                if result is not None
                else self.lookup(token)
            )
            if device is None:
                self.log(token, "creating", error="not in Entra after the create call")
                self.done(token, "failed", "Graph did not create it; run push again")
                continue
            self.log(token, "created", device_id=device.id)
            ready.append((token, device))
        return ready

    def lookup(self, token: Token, device_id: str | None = None) -> Device | None:
        """The token's device after a lost answer: ``device_id`` when known, else the only
        device with the serial (several: a spare beside it, so none can be told for sure)."""
        found = self.api.device_by_serial(token.serial)
        for device in found:
            if device.id == device_id:
                return device
        return found[0] if len(found) == 1 else None

    def recheck(self, batch: list[Token]) -> None:
        for token in batch:
            try:
                device = self.lookup(token)
            except GraphError:
                return  # still unreachable: the next run's inventory listing will tell
            if device is not None:
                self.log(token, "created", device_id=device.id)

    # -- activate --------------------------------------------------------------------------------

    def activate(self, token: Token, device: Device) -> None:
        upn = token.upn or ""
        if device.status == DONE or (device.assigned_to and device.status == "assigned"):
            mine = {m.device_id or m.id for m in self.api.hardware_methods(upn)}
            if device.id not in mine:
                owner = device.assigned_name or device.assigned_to
                self.log(token, "created", device_id=device.id, error=f"assigned to {owner}")
                self.done(token, "failed", f"Entra has it assigned to {owner}, not {upn}")
                return
            if device.status == DONE:
                self.register(token, device, "already activated in Entra")
                return
        self.limiter.acquire()
        self.still_alone()
        try:
            code = self.code_now(token)
            if self.options.by_serial:
                self.api.assign_and_activate_by_serial(
                    upn, token.serial, code, display_name=_display_name(token)
                )
            else:
                self.api.assign_and_activate(
                    upn, device.id, code, serial=token.serial, display_name=_display_name(token)
                )
        except GraphConnectionLost:
            found = self.lookup(token, device.id)
            if found is not None and found.status == DONE:
                self.register(token, found, "activated (confirmed after a dropped connection)")
                return
            self.log(token, "created", device_id=device.id, error="connection lost", attempted=True)
            raise
        except GraphPermissionError:
            raise
        except OathdeskError as error:
            reason = error.message + _code_hint(error)
            self.log(token, "created", device_id=device.id, error=reason, attempted=True)
            self.done(token, "failed", reason)
            return
        self.register(token, device, "")

    def register_stock(self, token: Token, device: Device) -> None:
        """One transaction: journal 'stock', token 'registered' without a user, audit record.
        Whatever a user did with the device meanwhile is `entra sync`'s to learn."""
        self.still_alone()
        with self.vault.unit_of_work(self.actor) as work:
            write_journal(work.conn, token.serial, upn="", step=STOCK, device_id=device.id)
            work.move(
                token.serial,
                TokenState.REGISTERED,
                details={"via": "graph", "device_id": device.id, "stock": True},
            )
        detail = "" if device.status == "available" else f"in Entra already ({device.status})"
        self.done(token, "uploaded as stock", detail)

    def code_now(self, token: Token) -> str:
        """The code the token shows now, computed from the vault's seed (read audited)."""
        with self.vault.unit_of_work(self.actor) as work:
            secret = work.read_secret(token, purpose="entra push: activation code")
        return totp(
            secret,
            self.options.clock(),
            algorithm=token.algorithm,
            digits=token.digits,
            period=token.period,
        )

    def register(self, token: Token, device: Device, detail: str) -> None:
        """One transaction: journal 'activated', token 'registered', audit record."""
        with self.vault.unit_of_work(self.actor) as work:
            write_journal(
                work.conn, token.serial, upn=token.upn or "", step=DONE, device_id=device.id
            )
            work.move(
                token.serial,
                TokenState.REGISTERED,
                details={"via": "graph", "device_id": device.id},
            )
        self.done(token, "already activated" if detail else "activated", detail)


def _code_hint(error: OathdeskError) -> str:
    """Plain words for a refused activation code: the seeds differ, or a clock is far off."""
    said = f"{getattr(error, 'graph_code', '')} {error.message}".lower()
    if getattr(error, "status", None) == 400 and "verification" in said:
        return (
            " (Entra holds another seed for this serial, or this machine's clock is more than "
            "a day off; check `date -u`)"
        )
    return ""


def _device_body(token: Token, secret_b32: str) -> dict[str, Any]:
    manufacturer = token.manufacturer or DEFAULT_MANUFACTURER
    return {
        "serialNumber": token.serial,
        "manufacturer": manufacturer,
        "model": token.model or "TOTP",
        "secretKey": secret_b32,
        "timeIntervalInSeconds": token.period,
        "hashFunction": HASH_FUNCTIONS[token.algorithm.value],
        "displayName": _display_name(token),
    }


def _display_name(token: Token) -> str:
    return f"{token.manufacturer or DEFAULT_MANUFACTURER} {token.serial}"
