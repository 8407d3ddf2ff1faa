"""A queue of burns (``oathdesk burn --batch FILE``, ``--count N``) that can be run again.

A queue file lists UPNs and serials, never seeds (``--generate`` makes each seed at the burn and
the vault keeps it), so what is left over after a run is written back as the same kind of list.

Run again, a queue does only what is left:
- an entry whose token the vault already holds as burned (or further on: registered, shipped,
  ...) is skipped and named as such. A serial says which token; a UPN line counts the burns this
  queue recorded for that user (the burn's audit record names the queue by ``batch``, an id kept
  in the left-over file's first line, so the original file and its left-over agree);
- a finished token put on the reader again is checked by the code it shows, because the token
  cannot tell over NFC which seed it holds: the code of the vault's seed means "already burned",
  any other code means it lost its seed, and it is burned again.

The tokens of a queue come in any order: each one on the reader is matched by its serial to an
entry still waiting (a serial line first, then a user's waiting token, then a line with a new
seed), so the operator takes them as they come out of the box. A run stops when no token comes
within the timeout, one stays on the reader, the reader goes, or on Ctrl-C; the report then lists
what was not attempted, and each burn done before it is already recorded.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from oathdesk.errors import Conflict, InvalidInput, NotFound, OathdeskError
from oathdesk.nfc.errors import NoReader, NoToken
from oathdesk.nfc.token import DeviceInfo, TokenSession
from oathdesk.services.burn import (
    BurnResult,
    BurnTarget,
    Clock,
    Plan,
    ReadCode,
    TokenReader,
    burn,
    code_confirmed,
    plan_burn,
    program,
    record_burn,
    require_burn,
)
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.vault import Actor, Token, Vault

# A token in one of these states has had its burn: running the queue again must not redo it.
FINISHED = (
    TokenState.BURNED,
    TokenState.REGISTERED,
    TokenState.SHIPPED,
    TokenState.DELIVERED,
    TokenState.SECRET_PURGED,
)
HEADER = "# oathdesk batch "


@dataclass(frozen=True)
class BatchFile:
    """A queue file read: its entries (UPN or serial, in file order) and the queue's id."""

    batch_id: str
    entries: list[str]


def parse_batch(text: str, name: str) -> BatchFile:
    """One UPN or serial per line, ``#`` comments; a left-over file's first line keeps the id."""
    entries: list[str] = []
    batch_id = None
    for raw in text.splitlines():
        if raw.startswith(HEADER) and batch_id is None:
            words = raw[len(HEADER) :].split()
            batch_id = words[0].rstrip(":") if words else None
        line = raw.split("#", 1)[0].strip()
        if line:
            entries.append(line)
    if not entries:
        raise InvalidInput(f"{name} lists no tokens (one UPN or serial per line)")
    if not batch_id:
        # The same list is the same queue, wherever the file is: a rerun finds its own burns.
        digest = hashlib.sha256("\n".join(e.lower() for e in entries).encode()).hexdigest()
        batch_id = digest[:16]
    return BatchFile(batch_id, entries)


def left_over_text(batch_id: str, entries: Sequence[str], source: str, at: datetime) -> str:
    """The left-over file: the same list format, headed by the queue's id."""
    head = (
        f"{HEADER}{batch_id}: left over from {source!r} at {at:%Y-%m-%d %H:%M} UTC; "
        "run it with the same options\n"
    )
    return head + "".join(f"{entry}\n" for entry in entries)


def is_left_over_file(text: str) -> bool:
    return text.startswith(HEADER)


@dataclass
class BatchReport:
    burned: list[BurnResult] = field(default_factory=list)
    failed: list[tuple[int, BurnTarget, str]] = field(default_factory=list)  # 1-based position
    not_attempted: list[tuple[int, BurnTarget]] = field(default_factory=list)
    skipped: list[tuple[int, BurnTarget, str]] = field(default_factory=list)  # already burned
    stopped: str | None = None  # why the run ended before every entry was decided
    interrupted: bool = False  # by Ctrl-C

    def left_over(self) -> list[tuple[int, BurnTarget]]:
        """The entries a next run has to do, in queue order."""
        left = [(p, t) for p, t, _ in self.failed] + list(self.not_attempted)
        return sorted(left, key=lambda item: item[0])


def finished_entries(
    vault: Vault, targets: Sequence[BurnTarget], batch: str | None
) -> dict[int, Token]:
    """Which entries (1-based) already had their burn, and the token that got it."""
    done: dict[int, Token] = {}
    burns_of: dict[str, list[str]] = {}
    seen: Counter[str] = Counter()
    for position, target in enumerate(targets, start=1):
        if target.serial:
            try:
                token = vault.get_token(target.serial)
            except NotFound:
                continue  # the burn says so, with what to do
        elif target.upn and batch:
            upn = target.upn.strip().lower()
            if upn not in burns_of:
                burns_of[upn] = [
                    record["serial"]
                    for record in vault.export_audit(upn=upn, action="token.burned")
                    if (record.get("details") or {}).get("batch") == batch
                ]
            seen[upn] += 1
            # The user's n-th line in the queue is done when the queue burned n tokens for them.
            if seen[upn] > len(burns_of[upn]):
                continue
            token = vault.get_token(burns_of[upn][seen[upn] - 1])
        else:
            continue
        if token.state in FINISHED:
            done[position] = token
    return done


def _skip_message(token: Token) -> str:
    owner = f" for {token.upn}" if token.upn else ""
    return (
        f"already burned with the seed the vault holds (token {token.serial}{owner}, "
        f"{token.state.value})"
    )


@dataclass
class _Queue:
    vault: Vault
    actor: Actor
    reader: TokenReader
    read_code: ReadCode
    announce: Callable[[str], None]
    timeout: float
    clock: Clock
    total: int
    report: BatchReport
    pending: dict[int, BurnTarget]
    finished: dict[str, tuple[int, BurnTarget, Token]]  # serial -> its skipped entry
    burned_now: set[str] = field(default_factory=set)

    def label(self) -> str:
        return f"[{self.total - len(self.pending) + 1}/{self.total}]"

    def round(self) -> bool:
        """Take one token off the operator; False when the queue has to stop."""
        label = self.label()
        wanted = (
            next(iter(self.pending.values())).describe()
            if len(self.pending) == 1
            else f"any of the {len(self.pending)} left, in any order"
        )
        self.announce(f"{label} present the next token ({wanted})")
        position: int | None = None
        try:
            with self.reader.token(self.timeout) as link:
                session = TokenSession(link)
                device = session.identify()
                if device.serial in self.finished:
                    check = device
                else:
                    check = None
                    position, plan, token = self._choose(device)
                    programmed = program(
                        self.vault,
                        self.actor,
                        session,
                        device,
                        token,
                        plan.upn,
                        self.pending[position],
                        self.clock,
                    )
            if check is not None:
                self._check_finished(check)
            else:
                assert position is not None
                result = record_burn(
                    self.vault,
                    self.actor,
                    self.reader.name,
                    programmed,
                    self.pending[position],
                    self.read_code,
                    self.clock,
                )
                del self.pending[position]
                self._burned(label, result)
        except (NoReader, NoToken) as error:
            if position is not None:
                self._failed(label, position, error.message)
            self.report.stopped = error.message
            self.announce(f"{label} stopping the queue: {error.message}")
            return False
        except OathdeskError as error:
            if position is not None:
                self._failed(label, position, error.message)
            else:
                self.announce(f"{label} not burned: {error.message}")
        self._drop_unmatchable()
        if not self.pending:
            return True
        self.announce("take the token off the reader")
        if not self.reader.wait_for_removal(self.timeout):
            self.report.stopped = "the token stayed on the reader"
            self.announce("the token stayed on the reader; stopping the queue")
            return False
        return True

    def _burned(self, label: str, result: BurnResult) -> None:
        self.report.burned.append(result)
        self.burned_now.add(result.token.serial)
        self.announce(
            f"{label} burned {result.token.serial} ({result.model.name}) "
            f"for {result.token.upn or 'stock'}"
        )

    def _failed(self, label: str, position: int, message: str) -> None:
        self.report.failed.append((position, self.pending.pop(position), message))
        self.announce(f"{label} failed: {message}")

    def _choose(self, device: DeviceInfo) -> tuple[int, Plan, Token | None]:
        """The waiting entry this token is for: its serial's line, a line of its user, or a
        line that brings a seed (a token the vault does not know yet)."""
        serial = device.serial
        if serial in self.burned_now:
            raise Conflict(f"token {serial} was burned a moment ago in this run; take it off")
        known = bool(self.vault.existing_serials([serial]))
        for position, target in self.pending.items():
            if target.serial == serial:
                plan = plan_burn(self.vault, target)
                return position, plan, plan.existing[0]
        plans: dict[BurnTarget, Plan | None] = {}  # a --count queue repeats one target
        for position, target in self.pending.items():
            brings_seed = target.new_seed is not None
            # A token the vault knows takes its seed from the vault; a new one needs a seed.
            if target.serial or brings_seed == known:
                continue
            if target not in plans:
                try:
                    plans[target] = plan_burn(self.vault, target)
                except NotFound:
                    plans[target] = None
            found = plans[target]
            if found is None:
                continue
            if brings_seed:
                return position, found, None
            for token in found.existing:
                if token.serial == serial:
                    return position, found, token
        if known:
            stored = self.vault.get_token(serial)
            raise Conflict(
                f"token {serial} ({stored.upn or 'stock'}, {stored.state.value}) is not waiting "
                "in this queue; take it off and present one that is"
            )
        raise Conflict(
            f"token {serial} is not in the vault and no line of this queue brings a seed for it; "
            "take it off (add it to the vault first, or burn it with --generate)"
        )

    def _check_finished(self, device: DeviceInfo) -> None:
        """A token the queue finished before, on the reader again: does it hold the seed?"""
        position, target, token = self.finished[device.serial]
        with self.vault.transaction() as conn:
            secret = self.vault.read_secret(conn, self.actor, token, purpose="burn", audit=False)
        shows = code_confirmed(
            self.read_code, device, secret, self.clock, token.algorithm.value, token.period
        )
        if shows:
            self.announce(
                f"token {device.serial} is already burned with the seed the vault holds "
                "(its code matches); skipped"
            )
            return
        self.announce(
            f"token {device.serial} does not show the code of the seed the vault holds: "
            "burning it again"
        )
        del self.finished[device.serial]
        self.report.skipped = [s for s in self.report.skipped if s[0] != position]
        self.pending[position] = replace(target, serial=device.serial, upn=None, new_seed=None)
        try:
            result = burn(
                self.vault,
                self.actor,
                self.reader,
                self.pending[position],
                self.read_code,
                timeout=self.timeout,
                clock=self.clock,
            )
        except OathdeskError as error:
            # e.g. a token already registered is not burned again here: left for the next run.
            self._failed(self.label(), position, error.message)
            return
        del self.pending[position]
        self._burned(self.label(), result)

    def _drop_unmatchable(self) -> None:
        """A user's line left without a waiting token (their other line took it) can never
        match: report it now rather than wait for a token that is not coming."""
        for position, target in list(self.pending.items()):
            if target.upn and not target.serial and target.new_seed is None:
                try:
                    plan_burn(self.vault, target)
                except OathdeskError as error:
                    self.report.failed.append((position, self.pending.pop(position), error.message))


def burn_queue(
    vault: Vault,
    actor: Actor,
    reader: TokenReader,
    targets: Sequence[BurnTarget],
    read_code: ReadCode,
    *,
    announce: Callable[[str], None],
    batch: str | None = None,
    timeout: float = 60.0,
    clock: Clock = time.time,
) -> BatchReport:
    """Burn ``targets`` in whatever order their tokens come; each success is recorded at once,
    a failure is reported and left for the next run, what was finished before is skipped."""
    for target in targets:
        require_burn(actor, target)
    report = BatchReport()
    if batch:
        targets = [replace(target, batch=batch) for target in targets]
    done = finished_entries(vault, targets, batch)
    pending: dict[int, BurnTarget] = {}
    finished: dict[str, tuple[int, BurnTarget, Token]] = {}
    checked: dict[BurnTarget, str | None] = {}  # a --count queue repeats one target
    for position, target in enumerate(targets, start=1):
        if position in done:
            token = done[position]
            message = _skip_message(token)
            report.skipped.append((position, target, message))
            finished[token.serial] = (position, target, token)
            announce(f"{target.describe()}: {message}; skipped")
            continue
        if target not in checked:
            try:
                plan_burn(vault, target)  # a mistake in the vault costs no token write
                checked[target] = None
            except OathdeskError as error:
                checked[target] = error.message
        problem = checked[target]
        if problem is not None:
            report.failed.append((position, target, problem))
            announce(f"{target.describe()}: {problem}")
            continue
        pending[position] = target
    queue = _Queue(
        vault,
        actor,
        reader,
        read_code,
        announce,
        timeout,
        clock,
        len(targets),
        report,
        pending,
        finished,
    )
    try:
        while queue.pending and queue.round():
            pass
    except KeyboardInterrupt:
        # Ctrl-C: what was recorded stays recorded; the rest is left for the next run.
        report.interrupted = True
    report.not_attempted.extend(sorted(queue.pending.items()))
    return report
