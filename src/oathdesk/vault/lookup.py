"""Read-only look-ups for the consoles: partial-match search and pages of the audit log.

The facade in ``vault.py`` answers exact questions (this user, this token, the audit records
for an export); these answer an operator typing part of a name or paging through the log.
Nothing here writes, and nothing here returns a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import db, rows
from oathdesk.vault.audit import rows_as_dicts
from oathdesk.vault.models import Token, User
from oathdesk.vault.schema import audit_log, tokens, users
from oathdesk.vault.vault import Vault


def _contains(column: sa.ColumnElement[Any], text: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring match with % and _ in the operator's text taken literally."""
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


def search_users(vault: Vault, text: str, *, limit: int = 50) -> list[User]:
    """Users whose UPN or display name contains ``text``."""
    query = (
        sa.select(users)
        .where(sa.or_(_contains(users.c.upn, text), _contains(users.c.display_name, text)))
        .order_by(users.c.upn)
        .limit(limit)
    )
    with db.reading(vault.engine) as conn:
        return [rows.user_from_row(row) for row in conn.execute(query)]


def search_tokens(vault: Vault, text: str, *, limit: int = 50) -> list[Token]:
    """Tokens whose serial number or tracking reference contains ``text``."""
    query = (
        rows.token_query()
        .where(sa.or_(_contains(tokens.c.serial, text), _contains(tokens.c.tracking, text)))
        .order_by(tokens.c.serial)
        .limit(limit)
    )
    with db.reading(vault.engine) as conn:
        return [rows.token_from_row(row) for row in conn.execute(query)]


@dataclass(frozen=True)
class AuditFilter:
    """Exact matches on the audit record's columns, and a time range (either end optional)."""

    action: str = ""
    upn: str = ""
    serial: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    records: list[dict[str, Any]]  # newest first, as ``Vault.export_audit`` shapes them
    total: int  # how many records match the filter in all


def _audit_conditions(wanted: AuditFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if wanted.action:
        conditions.append(audit_log.c.action == wanted.action)
    if wanted.upn:
        conditions.append(audit_log.c.upn == wanted.upn.strip().lower())
    if wanted.actor:
        conditions.append(audit_log.c.actor == wanted.actor.strip())
    if wanted.serial:
        # A token's records include the bulk import that added it (one record for many).
        added_by = sa.select(tokens.c.added_seq).where(tokens.c.serial == wanted.serial.strip())
        conditions.append(
            sa.or_(audit_log.c.serial == wanted.serial.strip(), audit_log.c.seq.in_(added_by))
        )
    if wanted.since:
        conditions.append(audit_log.c.at >= rows.audit_time(wanted.since))
    if wanted.until:
        conditions.append(audit_log.c.at <= rows.audit_time(wanted.until))
    return conditions


def audit_page(vault: Vault, wanted: AuditFilter, *, offset: int = 0, limit: int = 50) -> AuditPage:
    """One page of the audit records matching ``wanted``, newest first, and how many match."""
    conditions = _audit_conditions(wanted)
    query = (
        sa.select(audit_log)
        .where(*conditions)
        .order_by(audit_log.c.seq.desc())
        .offset(offset)
        .limit(limit)
    )
    count = sa.select(sa.func.count()).select_from(audit_log).where(*conditions)
    with db.reading(vault.engine) as conn:
        records = rows_as_dicts(conn.execute(query))
        total = int(conn.execute(count).scalar_one())
    return AuditPage(records, total)


def recent_audit_about(
    vault: Vault, upn: str, serials: Sequence[str], *, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest records about a user or any of their tokens, newest first."""
    about = [audit_log.c.upn == upn.strip().lower()]
    if serials:
        about.append(audit_log.c.serial.in_(list(serials)))
    query = sa.select(audit_log).where(sa.or_(*about)).order_by(audit_log.c.seq.desc()).limit(limit)
    with db.reading(vault.engine) as conn:
        return rows_as_dicts(conn.execute(query))


def audit_actions(vault: Vault) -> list[str]:
    """The distinct actions in the log (the audit viewer's filter choices)."""
    query = sa.select(audit_log.c.action).distinct().order_by(audit_log.c.action)
    with db.reading(vault.engine) as conn:
        return list(conn.execute(query).scalars())
