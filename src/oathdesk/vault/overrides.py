"""Reveal-limit overrides, read from the audit log: an admin's approval of one more reveal for a
user (``reveal.override_approved``) and the reveals that used one (``code.revealed`` records
whose details name it). No table of their own: the approval is an audit record anyway, and the
chain makes it tamper-evident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from oathdesk.vault.rows import audit_time
from oathdesk.vault.schema import audit_log

APPROVED_ACTION = "reveal.override_approved"
USED_KEY = "override_seq"  # in a code.revealed record's details: the approval it used


@dataclass(frozen=True)
class Approval:
    seq: int  # the approval's audit record
    approver: str


def unused_approvals(
    conn: sa.Connection, upn: str, since: datetime, reveal_action: str
) -> list[Approval]:
    """Approvals for ``upn`` recorded since ``since`` that no reveal has used yet, oldest first.
    A reveal that used one is recorded after it, so looking at the reveals since ``since``
    finds every use of an approval in the window."""
    moment = audit_time(since)
    approved = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.actor)
        .where(audit_log.c.action == APPROVED_ACTION)
        .where(audit_log.c.upn == upn)
        .where(audit_log.c.at >= moment)
        .order_by(audit_log.c.seq)
    ).all()
    if not approved:
        return []
    used = {
        json.loads(details).get(USED_KEY)
        for (details,) in conn.execute(
            sa.select(audit_log.c.details)
            .where(audit_log.c.action == reveal_action)
            .where(audit_log.c.upn == upn)
            .where(audit_log.c.at >= moment)
            .where(audit_log.c.details.contains(USED_KEY))
        )
    }
    return [Approval(int(seq), str(actor)) for seq, actor in approved if seq not in used]
