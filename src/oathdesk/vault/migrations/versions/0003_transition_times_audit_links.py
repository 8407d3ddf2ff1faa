"""transition times, audit links and indexes

Tokens record when each state was reached and which audit record added them; audit records keep
the MAC they were chained to; indexes for rate limits and exports; the user index skips tokens in
stock.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TIMES = ("assigned_at", "burned_at", "registered_at", "shipped_at", "closed_at")


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        for name in _TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("added_seq", sa.BigInteger(), nullable=True))
        # Partial: a bulk import of tokens in stock (no user yet) skips this index.
        batch.drop_index("ix_tokens_user_id")
        batch.create_index(
            "ix_tokens_user_id",
            ["user_id"],
            sqlite_where=sa.text("user_id IS NOT NULL"),
            postgresql_where=sa.text("user_id IS NOT NULL"),
        )
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_mac", sa.LargeBinary(), nullable=True))
        batch.drop_index("ix_audit_log_action")
        batch.create_index("ix_audit_log_action_at", ["action", "at"])
        batch.create_index("ix_audit_log_upn", ["upn"])
        batch.create_index("ix_audit_log_serial", ["serial"])


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_serial")
        batch.drop_index("ix_audit_log_upn")
        batch.drop_index("ix_audit_log_action_at")
        batch.create_index("ix_audit_log_action", ["action"])
        batch.drop_column("prev_mac")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_user_id")
        batch.create_index("ix_tokens_user_id", ["user_id"])
        batch.drop_column("added_seq")
        for name in reversed(_TIMES):
            batch.drop_column(name)
