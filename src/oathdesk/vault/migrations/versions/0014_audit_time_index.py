"""index for audit pages filtered by time

A page of the log filtered only by time (``since``/``until``, or with an action) is read in time
order from this index: from the page's end of the range, limit + 1 rows. In sequence order it
read every newer record to reach the range (an ``until`` a year back: nearly the whole log).
``seq`` ends the key: the keyset's tie-break when two records share a time.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_at_seq", "audit_log", ["at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at_seq", table_name="audit_log")
