"""index for pages of tokens under a state and a kind (issue 15)

A page filtered by state and kind read the tokens of the kind in serial order from the (kind,
serial) index and checked the state on each (SQLite, without statistics, picks that index;
PostgreSQL picked the other one): a rare pair, such as the few lost tokens among 100,000 classic
ones, read every token of the kind up to the page. With both filters leading the index, the page
is read in its order and stops at its last row.

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


def downgrade() -> None:
    op.drop_index("ix_tokens_state_kind_serial", table_name="tokens")
