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
    # The audit record that created the user (an import's one users.added record names no UPN).
    sa.Column("added_seq", sa.BigInteger, nullable=True),
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
    # Pages of the log under one filter, newest first (migration 0012).
    sa.Index("ix_audit_log_upn_seq", "upn", "seq"),
    sa.Index("ix_audit_log_serial_seq", "serial", "seq"),
    sa.Index("ix_audit_log_actor_seq", "actor", "seq"),
    sa.Index("ix_audit_log_action_seq", "action", "seq"),
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
    # Signed in with Entra ID (migration 0013): found by tenant + object id, never by name.
    sa.Column("sso_tid", sa.String(36), nullable=True),
    sa.Column("sso_oid", sa.String(36), nullable=True),
    sa.Column("display_name", sa.String(256), nullable=True),
    sa.Index("ix_operators_sso", "sso_tid", "sso_oid", unique=True),
)

# Sign-in with Entra ID (migration 0013): the app registration, one row, its credential
# encrypted; and the sign-ins in progress (msal's flow, encrypted) by a hash of their cookie.
sso_settings = sa.Table(
    "sso_settings",
    metadata,
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
    # The aud of Entra access tokens the REST API accepts; NULL: API keys only (0016).
    sa.Column("api_audience", sa.String(36), nullable=True),
)

sso_flows = sa.Table(
    "sso_flows",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("flow_nonce", sa.LargeBinary, nullable=False),
    sa.Column("flow_ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("next_path", sa.String(2048), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_sso_flows_created_at", "created_at"),
)

# REST API keys (migration 0008): several per operator, each acting with its operator's role.
# Only an HMAC-SHA256 of the key's secret part is stored; the id (public) finds the row.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "operator_id", sa.String(36), sa.ForeignKey("operators.id"), nullable=False, index=True
    ),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("secret_hash", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

# -- web console (migration 0005) ---------------------------------------------------------------
# Kept in the vault database, not in process memory, so several console instances share them.

# One row per browser session. The cookie carries a random token; only its SHA-256 is stored, so
# a copy of the database does not hand out live sessions. ``operator`` is NULL before sign-in
# (the sign-in form needs a CSRF token too); sign-in replaces the row with a new id.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(128), nullable=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("flash", sa.Text, nullable=False, server_default="[]"),
    # First-admin set-up: the enrolment URI awaiting its first code, encrypted like a seed.
    sa.Column("pending_operator", sa.String(128), nullable=True),
    sa.Column("pending_nonce", sa.LargeBinary, nullable=True),
    sa.Column("pending_ciphertext", sa.LargeBinary, nullable=True),
    sa.Index("ix_web_sessions_last_seen_at", "last_seen_at"),
    sa.Index("ix_web_sessions_operator", "operator"),
)

# One-time links that create the first admin; only the SHA-256 of the token is stored.
setup_tokens = sa.Table(
    "setup_tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
)

# Failed sign-ins by client address and by operator name, for the sign-in rate limit.
signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(200), nullable=False),  # "ip:203.0.113.9" or "name:alice"
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_signin_failures_subject_at", "subject", "at"),
)

# Microsoft Graph (migration 0006). One connection row: where to sign in and how; the client
# secret or certificate and msal's token cache are encrypted with the data key (AAD names the
# row and the tenant/app), never stored in clear.
graph_connection = sa.Table(
    "graph_connection",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.String(256), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("auth", sa.String(16), nullable=False),  # client_secret | certificate | device_code
    sa.Column("authority_host", sa.String(512), nullable=False),
    sa.Column("graph_url", sa.String(512), nullable=False),
    sa.Column("ca_bundle", sa.String(1024), nullable=True),
    sa.Column("signed_in_as", sa.String(320), nullable=False, server_default=""),
    sa.Column("credential_nonce", sa.LargeBinary, nullable=True),
    sa.Column("credential_ciphertext", sa.LargeBinary, nullable=True),
    sa.Column("cache_nonce", sa.LargeBinary, nullable=True),
    sa.Column("cache_ciphertext", sa.LargeBinary, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The push journal: per serial, how far `entra push` got (creating -> created -> assigned ->
# activated), so that an interrupted run resumes without creating or activating twice.
graph_push_journal = sa.Table(
    "graph_push_journal",
    metadata,
    sa.Column("serial", sa.String(64), primary_key=True),
    sa.Column("upn", sa.String(320), nullable=False),
    sa.Column("step", sa.String(16), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
)

# -- bulk provisioning (migration 0004) ---------------------------------------------------------
# Each stored secret's keyed fingerprint (HMAC-SHA256 under a key derived from the data key, 16
# bytes), to find one seed on two tokens without decrypting the vault (vault/fingerprints.py).
# Not unique: the check is a query that names the token already holding the seed. NULL in rows
# stored before 0004 until the vault fills them in.
token_secrets.append_column(sa.Column("fingerprint", sa.LargeBinary, nullable=True))
sa.Index("ix_token_secrets_fingerprint", token_secrets.c.fingerprint)

# Migration 0009: the reveal limits count one user's and one operator's records of an action
# over 24 hours (services/reveal.py); these answer each count from the index alone.
sa.Index("ix_audit_log_action_upn_at", audit_log.c.action, audit_log.c.upn, audit_log.c.at)
sa.Index("ix_audit_log_action_actor_at", audit_log.c.action, audit_log.c.actor, audit_log.c.at)
# Migration 0020: a page of one operator's records of one action, newest first (either index
# alone reads the action's or the operator's records until the page fills).
sa.Index("ix_audit_log_action_actor_seq", audit_log.c.action, audit_log.c.actor, audit_log.c.seq)

# Migration 0012: pages of tokens by serial under a state or kind filter, and of the measured
# tokens (the drift report), each read from an index in page order (vault/paging.py).
sa.Index("ix_tokens_state_serial", tokens.c.state, tokens.c.serial)
sa.Index("ix_tokens_kind_serial", tokens.c.kind, tokens.c.serial)
# Migration 0020: both filters at once; either index alone reads every token of its state or
# kind up to the page (SQLite has no statistics to pick the rarer by).
sa.Index("ix_tokens_state_kind_serial", tokens.c.state, tokens.c.kind, tokens.c.serial)
sa.Index(
    "ix_tokens_measured_serial",
    tokens.c.serial,
    sqlite_where=sa.text("drift_seconds IS NOT NULL"),
    postgresql_where=sa.text("drift_seconds IS NOT NULL"),
)

# Migration 0014: pages of the log filtered by time (and at most an action), read in time order.
sa.Index("ix_audit_log_at_seq", audit_log.c.at, audit_log.c.seq)
# Migration 0020: the same under an operator (their records were read newest first down to the
# range).
sa.Index("ix_audit_log_actor_at_seq", audit_log.c.actor, audit_log.c.at, audit_log.c.seq)

# Migration 0015: the dashboard's late tokens, by state and the time their wait began
# (vault/console.py ``undelivered_tokens``).
sa.Index(
    "ix_tokens_state_waiting_since",
    tokens.c.state,
    sa.func.coalesce(tokens.c.assigned_at, tokens.c.created_at),
)

# -- leases (migration 0010) ---------------------------------------------------------------------
# One holder at a time for a long job several machines could start (vault/leases.py). Not in
# backups: a restored lease would only hold the job up until it expired.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    # Migration 0011: the holder's process and machine, so that a lease whose holder was killed
    # on this machine can be taken over at once (a pid alone may be reused by a later process).
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("process_started", sa.Float, nullable=True),
    sa.Column("boot_time", sa.Float, nullable=True),
    info={"backup": False},
)

# -- tokens per state (migration 0019) -----------------------------------------------------------
# What each write that adds tokens or moves one to another state changed, as (state, +n/-n) rows:
# the sum per state is the dashboard's count (vault/token_counts.py). Not in backups: a restore
# counts the restored tokens afresh.
token_state_changes = sa.Table(
    "token_state_changes",
    metadata,
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("delta", sa.BigInteger, nullable=False),
    info={"backup": False},
)
