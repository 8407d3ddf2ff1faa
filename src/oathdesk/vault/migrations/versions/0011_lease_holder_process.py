"""leases: the holder's process (pid, start time) and machine boot time

So that a lease whose holder was killed outright can be taken over at once on the same machine
(its process is gone, or its pid now belongs to a later process), rather than blocking the job
until it expires (vault/leases.py). Rows from before this migration have none: their holder's
fate is unknown, and taking them over needs a confirmation as for another machine.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("process_started", sa.Float(), nullable=True))
        batch.add_column(sa.Column("boot_time", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("boot_time")
        batch.drop_column("process_started")
        batch.drop_column("pid")
