"""Microsoft Graph: the connection (credentials encrypted) and the push journal

``graph_connection`` holds one row: tenant, app, endpoints, and the client secret or certificate
and msal's token cache, each encrypted with the vault's data key. ``graph_push_journal`` records,
per serial, how far ``oathdesk entra push`` got, so an interrupted run resumes safely.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graph_connection",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tenant_id", sa.String(length=256), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("authority_host", sa.String(length=512), nullable=False),
        sa.Column("graph_url", sa.String(length=512), nullable=False),
        sa.Column("ca_bundle", sa.String(length=1024), nullable=True),
        sa.Column("signed_in_as", sa.String(length=320), server_default="", nullable=False),
        sa.Column("credential_nonce", sa.LargeBinary(), nullable=True),
        sa.Column("credential_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("cache_nonce", sa.LargeBinary(), nullable=True),
        sa.Column("cache_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "graph_push_journal",
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("upn", sa.String(length=320), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("serial"),
    )


def downgrade() -> None:
    op.drop_table("graph_push_journal")
    op.drop_table("graph_connection")
