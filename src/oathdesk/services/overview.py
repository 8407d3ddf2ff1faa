"""The console's overview: where every token stands, what waits too long, what is due, and how
Entra's view compares with the vault's, each figure an aggregate the database computes (one
snapshot; no more rows read than the page shows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from oathdesk.services.entra_reconcile import IN_ENTRA
from oathdesk.vault import housekeeping as records
from oathdesk.vault.models import Actor, Token, utc_now
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Vault

SHOWN_LATE = 10
_IN_ENTRA_NAMES = frozenset(state.value for state in IN_ENTRA)


@dataclass(frozen=True)
class EntraView:
    """Entra's inventory as the last sync saw it, beside the vault's count of tokens it says are
    in Entra now."""

    synced_at: datetime | None  # None: no cycle has synced yet
    inventory: int
    vault_in_entra: int
    differences: dict[str, int] = field(default_factory=dict)
    error: str = ""  # the last sync's failure, if the last cycle's sync failed


@dataclass(frozen=True)
class Overview:
    now: datetime
    states: list[records.StateFigure]
    total: int
    late: list[Token]
    late_total: int
    warning_days: int
    purge_due: int
    retention_days: int
    entra: EntraView
    counted_up_to: int = records.COUNTED_UP_TO  # late_total, purge_due: past it, "more than"


def overview(vault: Vault, actor: Actor, *, now: datetime | None = None) -> Overview:
    """The figures, for an operator who may look tokens up."""
    require(actor, Permission.LOOK_UP)
    moment = now or utc_now()
    with vault.reading() as conn:
        settings = vault.settings(conn)
        states = records.state_figures(conn)
        purge_cutoff = moment - timedelta(days=settings.retention_days)
        purge_due = records.purge_due_count(conn, purge_cutoff, up_to=records.COUNTED_UP_TO)
        synced = records.last_sync(conn)
        cycle = records.last_cycle_with(conn, "entra_sync")
        late_cutoff = moment - timedelta(days=settings.undelivered_warning_days)
        late = records.late_tokens(conn, late_cutoff, limit=SHOWN_LATE)
        late_total = records.late_count(conn, late_cutoff, up_to=records.COUNTED_UP_TO)
    # From the figures just counted: the tokens Entra holds now are those in its states.
    in_entra = sum(figure.count for figure in states if figure.state in _IN_ENTRA_NAMES)
    return Overview(
        moment,
        states,
        sum(figure.count for figure in states),
        late,
        late_total,
        settings.undelivered_warning_days,
        purge_due,
        settings.retention_days,
        _entra_view(synced, cycle, in_entra),
    )


def _entra_view(
    synced: records.CycleRecord | None, cycle: records.CycleRecord | None, in_entra: int
) -> EntraView:
    """The last sync's record, whoever ran it (`entra sync`, the console, a cycle); a cycle's
    sync that failed after it is shown as the error. Vaults whose syncs predate the sync's own
    record: the last cycle's sync step."""
    step: dict[str, Any] = cycle.details["steps"]["entra_sync"] if cycle is not None else {}
    error = str(step.get("error", ""))
    if synced is not None:
        if cycle is None or cycle.seq < synced.seq:
            error = ""
        at, found = synced.at, synced.details
    elif cycle is not None:
        at, found = cycle.at, step
    else:
        return EntraView(None, 0, in_entra)
    differences = found.get("differences", {})
    return EntraView(
        at,
        int(found.get("inventory", 0)),
        in_entra,
        {str(k): int(v) for k, v in differences.items()} if isinstance(differences, dict) else {},
        error,
    )


@dataclass(frozen=True)
class RecordedSync:
    """The newest `entra sync` as its record (``entra.synced``) tells it, whoever ran it."""

    at: datetime
    by: str
    inventory: int
    assigned: int
    delivered: int
    users_added: int
    reported: int
    took_over: str
    for_a_person: list[dict[str, str]]  # kind, serial, upn: the first ones (all are counted)


def last_recorded_sync(vault: Vault, actor: Actor) -> RecordedSync | None:
    """For the console's Entra page (admins), when its own server process ran no sync."""
    require(actor, Permission.READ_AUDIT)
    with vault.reading() as conn:
        found = records.last_sync(conn)
    if found is None:
        return None
    details = found.details
    named = details.get("for_a_person")
    return RecordedSync(
        found.at,
        found.actor,
        int(details.get("inventory", 0)),
        int(details.get("assigned", 0)),
        int(details.get("delivered", 0)),
        int(details.get("users_added", 0)),
        int(details.get("reported", 0)),
        str(details.get("took_over") or ""),
        [
            {k: str(item.get(k, "")) for k in ("kind", "serial", "upn")}
            for item in (named if isinstance(named, list) else [])
            if isinstance(item, dict)
        ],
    )
