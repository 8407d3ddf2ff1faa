"""Table definitions (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them.

Secrets live in their own table so that purging one is a row delete, and a bulk import is two
``executemany`` inserts.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

wrapped_keys = sa.Table(
    "wrapped_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),  # "data" or "audit"
    sa.Column("master_key_id", sa.String(32), nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

vault_meta = sa.Table(
    "vault_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("upn", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(256), nullable=False, server_default=""),
    sa.Column("phone", sa.String(64), nullable=False, server_default=""),
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("serial", sa.String(64), nullable=False, unique=True),
    sa.Column("manufacturer", sa.String(128), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # programmable | classic
    sa.Column("algorithm", sa.String(8), nullable=False),
    sa.Column("digits", sa.Integer, nullable=False),
    sa.Column("period", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=True),
    sa.Column("carrier", sa.String(64), nullable=False, server_default=""),
    sa.Column("tracking", sa.String(128), nullable=False, server_default=""),
    sa.Column("drift_seconds", sa.Integer, nullable=True),
    sa.Column("drift_measured_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    # Optimistic locking: every update names the version it read and bumps it.
    sa.Column("version", sa.Integer, nullable=False),
    # When each state was reached (delivered_at and purged_at above predate these).
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("burned_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    # The audit record that added the token: a bulk import is one record for all its tokens.
    sa.Column("added_seq", sa.BigInteger, nullable=True),
    # Partial: tokens in stock have no user, and a bulk import of stock skips this index.
    sa.Index(
        "ix_tokens_user_id",
        "user_id",
        sqlite_where=sa.text("user_id IS NOT NULL"),
        postgresql_where=sa.text("user_id IS NOT NULL"),
    ),
)

token_secrets = sa.Table(
    "token_secrets",
    metadata,
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column("key_id", sa.String(36), sa.ForeignKey("wrapped_keys.id"), nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
)

drift_measurements = sa.Table(
    "drift_measurements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_id", sa.String(36), sa.ForeignKey("tokens.id"), nullable=False, index=True),
    sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("drift_seconds", sa.Integer, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("upn", sa.String(320), nullable=False, server_default=""),
    sa.Column("serial", sa.String(64), nullable=False, server_default=""),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("mac", sa.LargeBinary, nullable=False),
    # The MAC this record was chained to (its predecessor's, or the genesis value). Redundant
    # for the chain itself, it lets `audit verify` tell an edited record from a moved one.
    # NULL in records written before it existed (migration 0003).
    sa.Column("prev_mac", sa.LargeBinary, nullable=True),
    # Rate limits count recent events of one action; exports filter by user and token.
    sa.Index("ix_audit_log_action_at", "action", "at"),
    sa.Index("ix_audit_log_upn", "upn"),
    sa.Index("ix_audit_log_serial", "serial"),
)

# One row: the last sequence number and MAC, itself MACed, so that deleting the newest records
# (which leaves a shorter but internally valid chain) is detected.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("last_mac", sa.LargeBinary, nullable=False),
    sa.Column("head_mac", sa.LargeBinary, nullable=False),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("acceptance_profile", sa.String(32), nullable=False),
    sa.Column("retention_days", sa.Integer, nullable=False),
    sa.Column("undelivered_warning_days", sa.Integer, nullable=False),
    sa.Column("max_tokens_per_user", sa.Integer, nullable=False),
    sa.Column("reveal_limit_per_user", sa.Integer, nullable=False),
    sa.Column("reveal_limit_per_operator", sa.Integer, nullable=False),
    sa.Column("four_eyes", sa.Boolean, nullable=False),
)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),  # admin | helpdesk | auditor
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("totp_nonce", sa.LargeBinary, nullable=False),
    sa.Column("totp_ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("totp_last_step", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
