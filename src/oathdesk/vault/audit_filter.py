"""Which audit records a filter selects, as one query: the API's and the console's pages
(lookup.audit_page) and the export (Vault.audit_records) read a filter the same way."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import rows
from oathdesk.vault.schema import audit_log, tokens


@dataclass(frozen=True)
class AuditFilter:
    """Exact matches on the audit record's columns, and a time range (either end optional)."""

    action: str = ""
    upn: str = ""
    serial: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None


def normalised(wanted: AuditFilter) -> AuditFilter:
    """The filter as it is applied: blanks around a value dropped (a value of blanks filters
    nothing, like an empty one), the UPN in lower case as UPNs are stored."""
    return replace(
        wanted,
        action=wanted.action.strip(),
        upn=wanted.upn.strip().lower(),
        serial=wanted.serial.strip(),
        actor=wanted.actor.strip(),
    )


def _audit_conditions(wanted: AuditFilter) -> list[sa.ColumnElement[bool]]:
    """The (normalised) filter's conditions but the serial's (``audit_source``).

    A token's or a user's records are few beside an action's or an operator's: with a serial
    or a UPN, the other exact filters are checked on those records, written so that no index
    serves them. SQLite (no statistics) otherwise read an operator's or an action's records
    newest first until a page of the user's turned up: their whole history for a user with few.
    """
    by_serial = bool(wanted.serial)
    by_owner = by_serial or bool(wanted.upn)
    conditions: list[sa.ColumnElement[bool]] = []
    if wanted.action:
        conditions.append(_exact(audit_log.c.action, wanted.action, indexed=not by_owner))
    if wanted.upn:
        conditions.append(_exact(audit_log.c.upn, wanted.upn, indexed=not by_serial))
    if wanted.actor:
        conditions.append(_exact(audit_log.c.actor, wanted.actor, indexed=not by_owner))
    if wanted.since:
        conditions.append(audit_log.c.at >= rows.audit_time(wanted.since))
    if wanted.until:
        conditions.append(audit_log.c.at <= rows.audit_time(wanted.until))
    return conditions


def _exact(column: sa.Column[str], value: str, *, indexed: bool) -> sa.ColumnElement[bool]:
    """``column = value``, or, unless ``indexed``, checked on rows read by another index."""
    return (column if indexed else rows.unindexed(column)) == value


def audit_source(conn: sa.Connection, wanted: AuditFilter) -> sa.Select[Any]:
    """The records matching ``wanted``, as a query to page or to stream (ordered by ``seq``
    of its selected columns).

    A token's records include the bulk import that added it (one record for many). As one
    query, ``serial = X OR seq IN (SELECT added_seq ...)``, PostgreSQL answered it by walking
    the whole log backwards (0.9 s on 1,000,000 records), and SQLite did the same with the
    import's number written in. So the import's number is read first and the two sets are
    merged: each is read from its own index, the token's records and one more."""
    wanted = normalised(wanted)
    conditions = _audit_conditions(wanted)
    if not wanted.serial:
        return sa.select(audit_log).where(*conditions)
    own = sa.select(audit_log).where(audit_log.c.serial == wanted.serial, *conditions)
    added = conn.execute(
        sa.select(tokens.c.added_seq).where(tokens.c.serial == wanted.serial)
    ).scalar_one_or_none()
    if added is None:
        return own
    imported = sa.select(audit_log).where(audit_log.c.seq == added, *conditions)
    return sa.select(sa.union(own, imported).subquery())
