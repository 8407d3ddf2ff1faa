"""`entra sync`: learn what users and other admins did in Entra, and apply it to the vault.

One paged listing of Entra's inventory, the vault's tokens for just those serials (and those the
vault says are in Entra), the users named by id resolved 300 a call (JSON batches), then
``entra_reconcile.differences`` (the same comparison `entra pull` shows) says what differs.
Sync applies three kinds, as audited transitions with ``source: entra``:

- ``self_assigned``: a stock token (``entra push --stock``) a user self-assigned gets that user
  (added to the vault if missing); it stays ``registered``;
- ``self_activated``: a stock token its user activated becomes ``delivered`` (typing a code off
  the token proves they hold it), which starts its retention clock (``purge --due``);
- ``used_after_shipping``: a token oathdesk activated itself (push, before shipping: proves
  nothing about delivery) becomes ``delivered`` once Entra shows it used to sign in after it
  was shipped (``lastUsedDateTime`` later than the vault's shipped time).

A stock token that would take its user over the vault's tokens per user
(``max_tokens_per_user``) is reported (``over_token_limit``), not given: a person retires one
or raises the limit, and the next sync gives it.

Everything else (a token unassigned or deleted in Entra, another user than the vault's, a serial
twice, ...) is reported, never changed. Graph is read completely before the vault is written,
so a Graph failure changes nothing; changes are written in batches, each batch one transaction
(a change is never half applied), and a run killed between batches is finished by the next
run, which finds the applied changes no longer differ. Running it twice changes nothing the
second time.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from oathdesk.errors import Conflict
from oathdesk.services.entra_reconcile import (
    IN_ENTRA,
    KINDS,
    SYNC_APPLIES,
    Difference,
    differences,
    sorted_differences,
)
from oathdesk.services.entra_session import EntraSession
from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.entra_records import (
    SyncChange,
    apply_sync_changes,
    held_token_counts,
    read_journal,
    tokens_for_entra,
)
from oathdesk.vault.housekeeping import SYNCED_ACTION
from oathdesk.vault.leases import Lease, LeaseHolder
from oathdesk.vault.models import Token

LEASE_JOB = "oathdesk entra sync"
LEASE_TTL = timedelta(minutes=15)
# Changes per vault transaction: few commits for a large self-service wave, short write locks.
BATCH_SIZE = 200
SOURCE = "entra"
NEW_USER_NOTES = "added by `oathdesk entra sync`: self-assigned a token in Entra"
# Differences left for a person named in the sync's record (all are counted).
NAMED_IN_RECORD = 100


@dataclass
class SyncResult:
    """What one sync did: the changes applied, and the differences left for a person."""

    inventory_size: int = 0
    applied: list[Difference] = field(default_factory=list)
    reported: list[Difference] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)
    took_over: str = ""

    def counts(self) -> dict[str, int]:
        """Per kind of difference, how many (applied and reported alike)."""
        counted = Counter(d.kind for d in self.applied + self.reported)
        return {kind: counted[kind] for kind in KINDS if counted[kind]}

    @property
    def assigned(self) -> int:
        return sum(1 for d in self.applied if d.kind in ("self_assigned", "self_activated"))

    @property
    def delivered(self) -> int:
        return sum(1 for d in self.applied if d.kind in ("self_activated", "used_after_shipping"))

    def as_dict(self) -> dict[str, object]:
        return {
            "inventory_size": self.inventory_size,
            "counts": self.counts(),
            "applied": [d.as_dict() for d in self.applied],
            "reported": [d.as_dict() for d in self.reported],
            "users_added": self.users_added,
            "took_over": self.took_over,
        }

    def summary(self) -> dict[str, object]:
        """The sync's audit record (``entra.synced``): what the console's overview shows as
        Entra's view, whoever ran the sync (the CLI, the console, a housekeeping cycle)."""
        return {
            "inventory": self.inventory_size,
            "assigned": self.assigned,
            "delivered": self.delivered,
            "users_added": len(self.users_added),
            "reported": len(self.reported),
            "differences": self.counts(),
            "for_a_person": [
                {"kind": d.kind, "serial": d.serial, "upn": d.upn}
                for d in self.reported[:NAMED_IN_RECORD]
            ],
            "took_over": self.took_over,
        }


def sync_entra(
    session: EntraSession,
    *,
    take_over: Callable[[LeaseHolder], bool] | None = None,
    batch_size: int = BATCH_SIZE,
) -> SyncResult:
    """Read Entra's inventory, apply what users and admins did there to the vault, report the
    rest (see the module's docstring). Holds the vault's lease for the job, so two syncs (two
    servers' housekeeping, say) never run at once; a lease whose holder died on this machine is
    taken over at once, one from another machine only when ``take_over`` confirms.

    Raises a GraphError (one line) when Graph cannot be read; the vault is then unchanged.
    Conflict when another sync holds the lease."""
    with session.vault.lease(
        LEASE_JOB, session.actor, host=socket.gethostname(), ttl=LEASE_TTL, take_over=take_over
    ) as lease:
        result = _sync(session, lease, max(1, batch_size))
        if lease.taken_over is not None:
            result.took_over = (
                f"took over the lease of the sync by {lease.taken_over.describe()} "
                f"({lease.take_over_reason})"
            )
        # The sync's own record, with the Graph calls' records not yet written: one append.
        entries = session.call_records()
        entries.append(AuditEntry(session.actor.name, SYNCED_ACTION, details=result.summary()))
        with session.vault.transaction() as conn:
            session.vault.audit_entries(conn, entries)
        session.forget_call_records()
        return result


def _sync(session: EntraSession, lease: Lease, batch_size: int) -> SyncResult:
    vault, api = session.vault, session.api
    # The Graph calls' audit records are collected and appended with the first batch of
    # changes (or alone when there is none): one append, not a transaction per page.
    with session.collecting_calls():
        inventory = api.devices()
        serials = sorted({d.serial for d in inventory})
        with vault.reading() as conn:
            tokens = {t.serial: t for t in tokens_for_entra(conn, serials, IN_ENTRA)}
            journal = read_journal(conn, sorted(tokens))
            limit = vault.settings(conn).max_tokens_per_user
        # Only the users of devices the vault knows need a name (an unknown serial is
        # reported as such, whoever has it).
        owner_ids = sorted(
            {d.assigned_to for d in inventory if d.assigned_to and d.serial in tokens}
        )
        owners = api.user_names(owner_ids) if owner_ids else {}
    found = sorted_differences(differences(inventory, tokens, journal, owners))
    result = SyncResult(inventory_size=len(inventory))
    to_apply = [d for d in found if d.kind in SYNC_APPLIES]
    result.reported = [d for d in found if d.kind not in SYNC_APPLIES]
    given = [d for d in to_apply if _gives_a_user(d, tokens[d.serial])]
    if given:
        with vault.reading() as conn:
            held = held_token_counts(conn, sorted({d.upn for d in given}))
        over = _over_limit(given, held, limit)
        to_apply = [d for d in to_apply if d.serial not in over]
        result.reported = sorted_differences(result.reported + list(over.values()))
    for start in range(0, len(to_apply), batch_size):
        lease.renew()  # stops here if another sync took the job over meanwhile
        _apply_batch(session, to_apply[start : start + batch_size], tokens, result)
    return result  # the calls' records not yet written go with the sync's own (sync_entra)


def _gives_a_user(difference: Difference, token: Token) -> bool:
    return difference.kind in ("self_assigned", "self_activated") and not token.upn


def _over_limit(given: list[Difference], held: dict[str, int], limit: int) -> dict[str, Difference]:
    """The stock tokens (by serial) that would take their user over ``limit`` tokens, counting
    the ones this run gives before them (in serial order, so every run picks the same)."""
    counts = dict(held)
    over: dict[str, Difference] = {}
    for difference in sorted(given, key=lambda d: d.serial):
        upn = difference.upn
        if counts.get(upn, 0) >= limit:
            says = (
                f"{upn} self-assigned it in Entra but holds {counts.get(upn, 0)} tokens in the "
                f"vault, the limit; retire one or raise max_tokens_per_user, then sync again"
            )
            over[difference.serial] = Difference("over_token_limit", difference.serial, upn, says)
            continue
        counts[upn] = counts.get(upn, 0) + 1
    return over


def _apply_batch(
    session: EntraSession, batch: list[Difference], tokens: dict[str, Token], result: SyncResult
) -> None:
    """One transaction for the batch, set-based (``apply_sync_changes``), with the Graph
    calls' records not yet written; when one change in it is refused (the token changed since
    it was read), the batch is undone and its changes applied one by one instead, so only that
    one is left (reported; the next sync sees it afresh)."""
    try:
        with session.vault.unit_of_work(session.actor) as work:
            added = apply_sync_changes(
                work,
                [_change(d, tokens[d.serial]) for d in batch],
                new_user_notes=NEW_USER_NOTES,
                also_record=session.call_records(),
            )
    except Conflict:
        session.write_call_records()
        for difference in batch:
            try:
                with session.vault.unit_of_work(session.actor) as work:
                    (upn,) = apply_sync_changes(
                        work,
                        [_change(difference, tokens[difference.serial])],
                        new_user_notes=NEW_USER_NOTES,
                    ) or [""]
            except Conflict as error:
                result.reported.append(
                    Difference(
                        "changed_meanwhile", difference.serial, difference.upn, error.message
                    )
                )
                continue
            result.applied.append(difference)
            result.users_added += [upn] if upn else []
        return
    session.forget_call_records()
    result.applied += batch
    result.users_added += added


def _change(difference: Difference, token: Token) -> SyncChange:
    """What applying ``difference`` to ``token`` (as read) changes in the vault."""
    return SyncChange(
        token,
        difference.upn,
        give=_gives_a_user(difference, token),
        deliver=difference.kind in ("self_activated", "used_after_shipping"),
        details={"source": SOURCE, "entra": difference.detail},
    )
