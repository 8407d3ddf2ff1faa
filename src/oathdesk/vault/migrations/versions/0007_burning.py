"""NFC burning

Placeholder reserved for NFC burning, if it needs tables;
it changes nothing until that work fills it in.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
