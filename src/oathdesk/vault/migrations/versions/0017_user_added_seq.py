"""users point to the audit record that created them (issue 16)

``users.added_seq``: the sequence number of the record that added the user. An import's new
users share one ``users.added`` record that names no single UPN (one record per user cost a fifth
of a big import), so a user's timeline finds its creation through this pointer, as a token's
finds its import through ``tokens.added_seq``. NULL for users created before this revision (their
own ``user.added`` record names them).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("added_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("added_seq")
