"""Storage for the web console: sessions, one-time set-up links and failed sign-ins.

All three live in the vault database rather than in a server's memory, so that several console
instances in front of one PostgreSQL vault share them: a session opened through one instance is
valid on the next, a set-up link works once across all of them, and the sign-in rate limit counts
every instance's failures. Bearer values (session and set-up tokens) are stored as SHA-256 only;
they are 256-bit random, so a plain hash is enough to make a database copy useless for signing in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from oathdesk.errors import NotFound
from oathdesk.vault import db, rows, token_counts
from oathdesk.vault import housekeeping as records
from oathdesk.vault.db import StorageError
from oathdesk.vault.ids import new_id
from oathdesk.vault.models import Actor, Token, aware, utc_now
from oathdesk.vault.schema import (
    audit_log,
    operators,
    setup_tokens,
    signin_failures,
    web_sessions,
)
from oathdesk.vault.vault import Vault

log = logging.getLogger("oathdesk.vault")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_bearer() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    """A browser session as stored; ``operator``/``role`` are None before sign-in."""

    id_hash: str
    operator: str | None
    role: str | None
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    pending_operator: str | None
    flash_waiting: bool = False  # messages for the next page were stored when it was read

    def __repr__(self) -> str:
        return f"Session(operator={self.operator!r}, csrf_token=<hidden>)"


class SessionStore:
    """Server-side sessions with an idle timeout and an absolute lifetime."""

    def __init__(self, vault: Vault, *, idle: timedelta, lifetime: timedelta) -> None:
        self.vault = vault
        self.idle = idle
        self.lifetime = lifetime
        # Writing last_seen_at on every request would make every page view a write; a tenth of
        # the idle timeout (at most a minute) is precise enough.
        self._touch_after = min(timedelta(minutes=1), idle / 10)

    def create(self, operator: str | None = None) -> tuple[str, Session]:
        """A new session (and its cookie value); expired sessions are swept on the way."""
        token = new_bearer()
        now = utc_now()
        id_hash, csrf = token_hash(token), secrets.token_urlsafe(32)
        row = {
            "id_hash": id_hash,
            "operator": operator,
            "csrf_token": csrf,
            "created_at": now,
            "last_seen_at": now,
            "flash": "[]",
        }
        with self.vault.transaction() as conn:
            conn.execute(
                web_sessions.delete().where(
                    sa.or_(
                        web_sessions.c.last_seen_at < now - self.idle,
                        web_sessions.c.created_at < now - self.lifetime,
                    )
                )
            )
            conn.execute(web_sessions.insert().values(**row))
            role = None
            if operator is not None:
                role = conn.execute(
                    sa.select(operators.c.role).where(operators.c.name == operator)
                ).scalar_one_or_none()
        return token, Session(id_hash, operator, role, csrf, now, now, None)

    def load(self, token: str) -> Session | None:
        """The live session for a cookie value, or None (unknown, expired, operator disabled)."""
        if not token or len(token) > 128:
            return None
        id_hash = token_hash(token)
        query = (
            sa.select(web_sessions, operators.c.role, operators.c.disabled)
            .select_from(
                web_sessions.outerjoin(operators, operators.c.name == web_sessions.c.operator)
            )
            .where(web_sessions.c.id_hash == id_hash)
        )
        with db.reading(self.vault.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        now = utc_now()
        created = aware(row.created_at)
        last_seen = aware(row.last_seen_at)
        assert created is not None
        assert last_seen is not None
        signed_in = row.operator is not None
        gone = signed_in and (row.role is None or bool(row.disabled))
        if gone or now - last_seen > self.idle or now - created > self.lifetime:
            self.delete(id_hash)
            return None
        if now - last_seen > self._touch_after:
            with self.vault.transaction() as conn:
                conn.execute(
                    web_sessions.update()
                    .where(web_sessions.c.id_hash == id_hash)
                    .values(last_seen_at=now)
                )
            last_seen = now
        return Session(
            id_hash,
            row.operator,
            row.role if signed_in else None,
            row.csrf_token,
            created,
            last_seen,
            row.pending_operator,
            flash_waiting=bool(row.flash) and row.flash != "[]",
        )

    def delete(self, id_hash: str) -> None:
        with self.vault.transaction() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.id_hash == id_hash))

    def delete_for_operator(self, operator: str) -> int:
        """End every session of an operator (disabled, TOTP reset)."""
        with self.vault.transaction() as conn:
            result = conn.execute(web_sessions.delete().where(web_sessions.c.operator == operator))
        return int(result.rowcount)

    # -- messages shown on the next page -----------------------------------------------------

    def push_flash(self, id_hash: str, message: str, kind: str) -> None:
        with self.vault.transaction() as conn:
            stored = conn.execute(
                sa.select(web_sessions.c.flash).where(web_sessions.c.id_hash == id_hash)
            ).scalar_one_or_none()
            if stored is None:
                return
            messages = [*json.loads(stored), [kind, message]][-5:]
            conn.execute(
                web_sessions.update()
                .where(web_sessions.c.id_hash == id_hash)
                .values(flash=json.dumps(messages))
            )

    def pop_flash(self, id_hash: str) -> list[tuple[str, str]]:
        with db.reading(self.vault.engine) as conn:
            stored = conn.execute(
                sa.select(web_sessions.c.flash).where(web_sessions.c.id_hash == id_hash)
            ).scalar_one_or_none()
        if not stored or stored == "[]":
            return []
        with self.vault.transaction() as conn:
            conn.execute(
                web_sessions.update().where(web_sessions.c.id_hash == id_hash).values(flash="[]")
            )
        return [(str(kind), str(message)) for kind, message in json.loads(stored)]

    # -- an enrolment waiting for its first code (first-admin set-up) ------------------------

    def set_pending(self, id_hash: str, operator: str, otpauth_uri: str) -> None:
        nonce, ciphertext = self.vault.encrypt_for(
            otpauth_uri.encode(), f"session:{id_hash}", operator
        )
        with self.vault.transaction() as conn:
            conn.execute(
                web_sessions.update()
                .where(web_sessions.c.id_hash == id_hash)
                .values(
                    pending_operator=operator, pending_nonce=nonce, pending_ciphertext=ciphertext
                )
            )

    def pending(self, id_hash: str) -> tuple[str, str] | None:
        """(operator, otpauth URI) of the enrolment this session waits to confirm, if any."""
        with db.reading(self.vault.engine) as conn:
            row = conn.execute(
                sa.select(
                    web_sessions.c.pending_operator,
                    web_sessions.c.pending_nonce,
                    web_sessions.c.pending_ciphertext,
                ).where(web_sessions.c.id_hash == id_hash)
            ).first()
        if row is None or row.pending_operator is None:
            return None
        uri = self.vault.decrypt_for(
            row.pending_nonce, row.pending_ciphertext, f"session:{id_hash}", row.pending_operator
        )
        return str(row.pending_operator), uri.decode()


# -- sign-in rate limit --------------------------------------------------------------------------


def record_signin_failure(vault: Vault, subjects: list[str]) -> None:
    """Count a failed sign-in against each subject ("ip:..." and "name:...")."""
    now = utc_now()
    with vault.transaction() as conn:
        conn.execute(signin_failures.delete().where(signin_failures.c.at < now - timedelta(days=1)))
        conn.execute(signin_failures.insert(), [{"subject": s[:200], "at": now} for s in subjects])


def audit_signin_throttled(vault: Vault, actor: Actor, *, ip: str, name: str) -> None:
    """The audit record of an address or a name reaching the sign-in limit: once, when it is
    reached (the attempts refused after it would only let a guesser fill the log)."""
    with vault.transaction() as conn:
        vault.audit(
            conn, actor, "console.signin_throttled", details={"ip": ip, "name": name.strip()[:128]}
        )


def signin_failures_since(vault: Vault, subject: str, since: datetime) -> int:
    with db.reading(vault.engine) as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(signin_failures)
            .where(signin_failures.c.subject == subject[:200], signin_failures.c.at >= since)
        ).scalar_one()
    return int(count)


def last_sign_ins(vault: Vault) -> dict[str, datetime]:
    """Each operator's latest successful sign-in, from the audit log."""
    query = (
        sa.select(audit_log.c.actor, sa.func.max(audit_log.c.at))
        .where(audit_log.c.action == "operator.signed_in")
        .group_by(audit_log.c.actor)
    )
    with db.reading(vault.engine) as conn:
        return {actor: datetime.fromisoformat(at) for actor, at in conn.execute(query)}


def token_state_counts(vault: Vault) -> dict[str, int]:
    """How many tokens are in each state (the dashboard): the figures the vault's writes keep
    (vault/token_counts.py), folded on the way when many changes piled up."""
    with db.reading(vault.engine) as conn:
        counts, summed = token_counts.read(conn)
    if summed > token_counts.FOLD_AFTER:
        fold_token_counts(vault)
    return counts


def fold_token_counts(vault: Vault) -> None:
    """Fold the kept changes into one row per state. A fold that cannot be done now (another
    writer holds the vault past the wait) is only logged: the figures stay right, the next view
    folds."""
    try:
        with vault.transaction() as conn:
            token_counts.fold(conn)
    except StorageError as error:
        log.warning("tokens per state not folded this time: %s", error.message)


def undelivered_tokens(
    vault: Vault, *, limit: int, warning_days: int | None = None
) -> tuple[list[Token], int]:
    """The oldest ``limit`` tokens still not delivered after the warning period (the settings',
    unless the caller read them already: ``warning_days``), and how many there are, counted up to
    ``housekeeping.COUNTED_UP_TO`` (past it, that plus one: "more than")."""
    with db.reading(vault.engine) as conn:
        if warning_days is None:
            warning_days = rows.read_settings(conn).undelivered_warning_days
        cutoff = utc_now() - timedelta(days=warning_days)
        total = records.late_count(conn, cutoff, up_to=records.COUNTED_UP_TO)
        return records.late_tokens(conn, cutoff, limit=limit), total


# -- first-admin set-up links --------------------------------------------------------------------


class SetupLinkInvalid(NotFound):
    code = "setup_link_invalid"


SETUP_LINK_REFUSED = (
    "this set-up link was used already or has expired; restart `oathdesk serve` on the server "
    "for a new one (it is printed only while the vault has no operator)"
)


def has_operators(vault: Vault) -> bool:
    with db.reading(vault.engine) as conn:
        return conn.execute(sa.select(operators.c.id).limit(1)).first() is not None


def create_setup_token(vault: Vault, actor: Actor, *, lifetime: timedelta) -> str:
    """A one-time bearer for creating the first admin; audited, stored hashed."""
    token = new_bearer()
    now = utc_now()
    with vault.transaction() as conn:
        link_id = new_id()
        conn.execute(
            setup_tokens.insert().values(
                id=link_id,
                token_hash=token_hash(token),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        vault.audit(
            conn,
            actor,
            "console.setup_link_created",
            details={"link": link_id, "expires_at": (now + lifetime).isoformat()},
        )
    return token


def setup_token_usable(vault: Vault, token: str) -> bool:
    with db.reading(vault.engine) as conn:
        row = conn.execute(
            sa.select(setup_tokens).where(setup_tokens.c.token_hash == token_hash(token))
        ).first()
        if row is None or row.used_at is not None:
            return False
        expires = aware(row.expires_at)
        assert expires is not None
        any_operator = conn.execute(sa.select(operators.c.id).limit(1)).first()
    return expires > utc_now() and any_operator is None


def consume_setup_token(vault: Vault, token: str, actor: Actor) -> None:
    """Use a set-up link: once, before it expires, and only while there is no operator.

    Every other unused link is spent at the same time: the vault gets one first admin.
    """
    now = utc_now()
    with vault.transaction() as conn:
        row = conn.execute(
            sa.select(setup_tokens)
            .where(setup_tokens.c.token_hash == token_hash(token))
            .with_for_update()
        ).first()
        expires = aware(row.expires_at) if row is not None else None
        usable = row is not None and row.used_at is None and expires is not None and expires > now
        if usable and conn.execute(sa.select(operators.c.id).limit(1)).first() is None:
            conn.execute(
                setup_tokens.update().where(setup_tokens.c.used_at.is_(None)).values(used_at=now)
            )
            assert row is not None
            vault.audit(conn, actor, "console.setup_link_used", details={"link": row.id})
            return
    raise SetupLinkInvalid(SETUP_LINK_REFUSED)
