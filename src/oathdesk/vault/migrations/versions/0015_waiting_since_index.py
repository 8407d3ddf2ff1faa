"""index for the dashboard's late tokens

The start page lists the tokens waiting for delivery longest past the warning period, and how
many there are: a range of this index per waiting state (state equal, the time the wait began
before the cut-off), so the page reads the late tokens only. Before, it read every waiting token
(nearly every token of a vault in use) on each view of the start page. The state leads so that
SQLite picks the index with or without statistics.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tokens_state_waiting_since",
        "tokens",
        ["state", sa.text("coalesce(assigned_at, created_at)")],
    )


def downgrade() -> None:
    op.drop_index("ix_tokens_state_waiting_since", table_name="tokens")
