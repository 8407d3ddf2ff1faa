"""indexes for pages under two filters at once (issue 15)

A page of tokens filtered by state and kind read the tokens of the kind in serial order from
the (kind, serial) index and checked the state on each (SQLite, without statistics, picks that
index): a rare pair, such as the few lost tokens among 100,000 classic ones, read every token of
the kind up to the page. An audit page filtered by action and operator likewise read the
action's records newest first until the operator's filled it: every reveal since an operator's
last. An audit page of an operator's records in a time range read their records newest first
down to the range (a year of reveals for a page of last year's). With the filters leading an
index in the page's order, a page stops at its last row.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tokens_state_kind_serial", "tokens", ["state", "kind", "serial"])
    op.create_index("ix_audit_log_action_actor_seq", "audit_log", ["action", "actor", "seq"])
    op.create_index("ix_audit_log_actor_at_seq", "audit_log", ["actor", "at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_at_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_action_actor_seq", table_name="audit_log")
    op.drop_index("ix_tokens_state_kind_serial", table_name="tokens")
