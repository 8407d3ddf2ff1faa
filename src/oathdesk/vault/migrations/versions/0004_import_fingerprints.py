"""keyed secret fingerprints

``token_secrets.fingerprint``: HMAC-SHA256 of the seed under a key derived from the vault's data
key (first 16 bytes), indexed, not unique; imports use it to find a seed already on another token.
A migration has no key, so rows already stored keep NULL: the vault fills them in, in the first
unit of work that adds or re-seeds tokens (see oathdesk.vault.fingerprints).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("token_secrets") as batch:
        batch.add_column(sa.Column("fingerprint", sa.LargeBinary(), nullable=True))
        batch.create_index("ix_token_secrets_fingerprint", ["fingerprint"])


def downgrade() -> None:
    with op.batch_alter_table("token_secrets") as batch:
        batch.drop_index("ix_token_secrets_fingerprint")
        batch.drop_column("fingerprint")
