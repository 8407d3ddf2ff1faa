"""web console: sessions, one-time set-up links, sign-in throttling

Sessions, set-up tokens and failed sign-ins live in the vault database so that several console
instances in front of one PostgreSQL vault share them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=128), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flash", sa.Text(), server_default="[]", nullable=False),
        sa.Column("pending_operator", sa.String(length=128), nullable=True),
        sa.Column("pending_nonce", sa.LargeBinary(), nullable=True),
        sa.Column("pending_ciphertext", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_web_sessions_last_seen_at", "web_sessions", ["last_seen_at"])
    op.create_index("ix_web_sessions_operator", "web_sessions", ["operator"])
    op.create_table(
        "setup_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signin_failures_subject_at", "signin_failures", ["subject", "at"])


def downgrade() -> None:
    op.drop_index("ix_signin_failures_subject_at", table_name="signin_failures")
    op.drop_table("signin_failures")
    op.drop_table("setup_tokens")
    op.drop_index("ix_web_sessions_operator", table_name="web_sessions")
    op.drop_index("ix_web_sessions_last_seen_at", table_name="web_sessions")
    op.drop_table("web_sessions")
