"""web console: sessions, API keys, sign-in throttling

Placeholder reserved for the web console and REST API;
it changes nothing until that work fills it in.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
