"""tokens per state kept as the vault writes (issue 15)

``token_state_changes``: each write that adds tokens or moves one between states appends what it
changed; the start page sums these few rows instead of counting every token on each view
(vault/token_counts.py). Filled here from the tokens already in the vault.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oathdesk.vault import token_counts

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_state_changes",
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
    )
    token_counts.recount(op.get_bind())


def downgrade() -> None:
    op.drop_table("token_state_changes")
