"""indexes for keyset paging

Every list is read a page at a time in a stable order (vault/paging.py): the audit log newest
first by sequence number under an exact filter, tokens by serial under a state or kind filter,
the measured tokens (the drift report) by serial. Each index below answers one such page by
reading only its rows (plus one), from where the previous page ended, instead of every row that
matches and a sort. (upn, seq) and (serial, seq) replace (upn) and (serial): they answer every
query those did, and an audit record should not pay for more indexes than it needs.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_upn_seq", "audit_log", ["upn", "seq"])
    op.create_index("ix_audit_log_serial_seq", "audit_log", ["serial", "seq"])
    op.create_index("ix_audit_log_actor_seq", "audit_log", ["actor", "seq"])
    op.create_index("ix_audit_log_action_seq", "audit_log", ["action", "seq"])
    op.drop_index("ix_audit_log_upn", table_name="audit_log")
    op.drop_index("ix_audit_log_serial", table_name="audit_log")
    op.create_index("ix_tokens_state_serial", "tokens", ["state", "serial"])
    op.create_index("ix_tokens_kind_serial", "tokens", ["kind", "serial"])
    op.create_index(
        "ix_tokens_measured_serial",
        "tokens",
        ["serial"],
        sqlite_where=sa.text("drift_seconds IS NOT NULL"),
        postgresql_where=sa.text("drift_seconds IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tokens_measured_serial", table_name="tokens")
    op.drop_index("ix_tokens_kind_serial", table_name="tokens")
    op.drop_index("ix_tokens_state_serial", table_name="tokens")
    op.create_index("ix_audit_log_serial", "audit_log", ["serial"])
    op.create_index("ix_audit_log_upn", "audit_log", ["upn"])
    op.drop_index("ix_audit_log_action_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_serial_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_upn_seq", table_name="audit_log")
