"""indexes for the 24-hour reveal limits

A reveal counts the user's and the operator's ``code.revealed`` records of the last 24 hours.
With only (action, at), both counts walked every reveal of the day, by anyone, to the table
rows: a reveal grew slower as the day went on. (action, upn, at) and (action, actor, at) answer
each count from the index alone, over that user's or that operator's records only.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_action_upn_at", "audit_log", ["action", "upn", "at"])
    op.create_index("ix_audit_log_action_actor_at", "audit_log", ["action", "actor", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_action_actor_at", table_name="audit_log")
    op.drop_index("ix_audit_log_action_upn_at", table_name="audit_log")
