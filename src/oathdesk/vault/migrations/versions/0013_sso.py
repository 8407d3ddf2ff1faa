"""operators signed in with Entra ID: keyed by tenant and object id; the SSO settings; flows

An operator who signs in with Microsoft is found by (sso_tid, sso_oid), never by name: a UPN
can change, the object id of a tenant's user cannot. ``sso_settings`` holds the app
registration (one row; its client secret or certificate encrypted, bound to the row) and the
break-glass policy for local sign-in. ``sso_flows`` keeps each sign-in in progress (msal's
flow with the PKCE verifier and the nonce, encrypted) until the browser comes back, keyed by a
hash of the browser's flow cookie, so that any instance sharing the vault can finish it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("sso_tid", sa.String(36), nullable=True))
        batch.add_column(sa.Column("sso_oid", sa.String(36), nullable=True))
        batch.add_column(sa.Column("display_name", sa.String(256), nullable=True))
        batch.create_index("ix_operators_sso", ["sso_tid", "sso_oid"], unique=True)
    op.create_table(
        "sso_settings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(36), nullable=False),
        sa.Column("credential_kind", sa.String(16), nullable=False),
        sa.Column("redirect_url", sa.String(2048), nullable=False),
        sa.Column("authority_host", sa.String(512), nullable=False),
        sa.Column("ca_bundle", sa.String(1024), nullable=True),
        sa.Column("group_roles", sa.Text, nullable=False, server_default="{}"),
        sa.Column("local_sign_in", sa.String(16), nullable=False, server_default="on"),
        sa.Column("credential_nonce", sa.LargeBinary, nullable=False),
        sa.Column("credential_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sso_flows",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("flow_nonce", sa.LargeBinary, nullable=False),
        sa.Column("flow_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("next_path", sa.String(2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_sso_flows_created_at", "created_at"),
    )


def downgrade() -> None:
    op.drop_table("sso_flows")
    op.drop_table("sso_settings")
    with op.batch_alter_table("operators") as batch:
        batch.drop_index("ix_operators_sso")
        batch.drop_column("display_name")
        batch.drop_column("sso_oid")
        batch.drop_column("sso_tid")
