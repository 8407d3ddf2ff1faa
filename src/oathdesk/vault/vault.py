"""The vault facade: each public method is one transaction, its audit record included.

Callers (the CLI, services, the web console) pass the acting operator in; nothing here reads
globals. Secrets enter as bytes, are encrypted before they touch the database, and leave only
through ``read_secret``, which audits why.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput, NotFound
from oathdesk.otp import Algorithm
from oathdesk.upn import validate_upn
from oathdesk.vault import db
from oathdesk.vault.audit import AuditChain, AuditEntry, rows_as_dicts
from oathdesk.vault.bulk import insert_rows
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import DataKey, MasterKey, MasterKeyError
from oathdesk.vault.lifecycle import (
    REASSIGNABLE,
    SECRET_STATES,
    TokenKind,
    TokenState,
    check_transition,
)
from oathdesk.vault.passphrase import KdfParams, store_params
from oathdesk.vault.schema import (
    audit_log,
    drift_measurements,
    settings,
    token_secrets,
    tokens,
    users,
    wrapped_keys,
)


@dataclass(frozen=True)
class Actor:
    """Who is acting: an operator name (``local:<os user>`` for the CLI on the host) and role."""

    name: str
    role: str = "admin"


@dataclass(frozen=True)
class VaultSettings:
    acceptance_profile: str = "entra"
    retention_days: int = 14
    undelivered_warning_days: int = 30
    max_tokens_per_user: int = 5
    reveal_limit_per_user: int = 3
    reveal_limit_per_operator: int = 30
    four_eyes: bool = False


@dataclass(frozen=True)
class User:
    upn: str
    display_name: str
    phone: str
    notes: str
    created_at: datetime


@dataclass(frozen=True)
class Token:
    """A token as stored, without its secret."""

    id: str
    serial: str
    manufacturer: str
    model: str
    kind: TokenKind
    algorithm: Algorithm
    digits: int
    period: int
    state: TokenState
    upn: str | None
    carrier: str
    tracking: str
    drift_seconds: int | None
    drift_measured_at: datetime | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    has_secret: bool
    version: int

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in data.items()
        }


@dataclass(frozen=True)
class NewToken:
    """One token to add (a bulk import is a list of these)."""

    serial: str
    manufacturer: str
    model: str
    kind: TokenKind
    secret: bytes | None = field(repr=False, default=None)
    algorithm: Algorithm = Algorithm.SHA1
    digits: int = 6
    period: int = 30
    upn: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything oathdesk stores is UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Vault:
    """An open vault: an engine, the unwrapped data key and the audit chain."""

    def __init__(self, engine: sa.Engine, data_key: DataKey, chain: AuditChain) -> None:
        self.engine = engine
        self._data_key = data_key
        self._chain = chain

    def __repr__(self) -> str:
        return f"Vault({self.engine.url.render_as_string(hide_password=True)})"

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        location: VaultLocation,
        master_key: MasterKey,
        actor: Actor,
        *,
        kdf: KdfParams | None = None,
    ) -> Vault:
        """Create the schema and the wrapped keys of a new vault (``kdf``: passphrase-sealed)."""
        if location.sqlite_path is not None:
            location.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = db.create_engine(location.database_url)
        db.upgrade(engine)
        with engine.begin() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(wrapped_keys)).scalar_one():
                raise Conflict(f"{location.display} is already an oathdesk vault")
            if kdf is not None:
                store_params(conn, kdf)
            data_key = _store_new_key(conn, master_key, "data")
            audit_key = _store_new_key(conn, master_key, "audit")
            conn.execute(settings.insert().values(id=1, **VaultSettings().__dict__))
            chain = AuditChain(audit_key[1])
            chain.start(conn)
            chain.append(
                conn,
                actor=actor.name,
                action="vault.created",
                details={"master_key_id": master_key.key_id},
            )
        return cls(engine, DataKey(*data_key), chain)

    @classmethod
    def open(cls, location: VaultLocation, master_key: MasterKey) -> Vault:
        if location.sqlite_path is not None and not location.sqlite_path.exists():
            raise NotFound(f"no vault at {location.display}; run `oathdesk init` first")
        engine = db.create_engine(location.database_url)
        try:
            current = db.schema_is_current(engine)
        except sa.exc.OperationalError:
            raise db.StorageError(
                f"cannot open the vault at {location.display}; check the path or database URL"
            ) from None
        if not current:
            raise db.StorageError(
                f"{location.display} is not an oathdesk vault of this version; run `oathdesk init`"
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(wrapped_keys).order_by(wrapped_keys.c.created_at)).all()
        keys = {}
        if len({row.master_key_id for row in rows}) > 1:
            raise MasterKeyError(
                "a master key rotation was interrupted; run `oathdesk key rotate` again to finish"
            )
        for row in rows:
            if row.master_key_id != master_key.key_id:
                raise MasterKeyError(
                    "the master key does not open this vault; use the key it was created with"
                )
            keys[row.purpose] = (row.id, master_key.unwrap(row.nonce, row.wrapped, slot=row.id))
        return cls(engine, DataKey(*keys["data"]), AuditChain(keys["audit"][1]))

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One unit of work for services composing several steps; commits only if all succeed."""
        with self.engine.begin() as conn:
            yield conn

    def encrypt_for(self, secret: bytes, record: str, label: str) -> tuple[bytes, bytes]:
        """Encrypt a non-token secret (an operator's TOTP, a Graph credential) bound to a record."""
        return self._data_key.encrypt(secret, token_id=record, serial=label)

    def decrypt_for(self, nonce: bytes, ciphertext: bytes, record: str, label: str) -> bytes:
        return self._data_key.decrypt(nonce, ciphertext, token_id=record, serial=label)

    def audit(self, conn: sa.Connection, actor: Actor, action: str, **fields: Any) -> None:
        """Append an audit record inside ``conn``'s transaction (services use this)."""
        details = fields.pop("details", None)
        self._chain.append(conn, actor=actor.name, action=action, details=details, **fields)

    # -- settings ------------------------------------------------------------------------------

    def settings(self, conn: sa.Connection | None = None) -> VaultSettings:
        with _maybe(self.engine, conn) as c:
            row = c.execute(sa.select(settings).where(settings.c.id == 1)).one()
        return VaultSettings(**{k: getattr(row, k) for k in VaultSettings.__dataclass_fields__})

    def update_settings(self, actor: Actor, **changes: Any) -> VaultSettings:
        unknown = set(changes) - set(VaultSettings.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"unknown setting {sorted(unknown)[0]!r}")
        with self.engine.begin() as conn:
            conn.execute(settings.update().where(settings.c.id == 1).values(**changes))
            self._chain.append(conn, actor=actor.name, action="settings.updated", details=changes)
        return self.settings()

    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self, actor: Actor, upn: str, *, display_name: str = "", phone: str = "", notes: str = ""
    ) -> User:
        upn = validate_upn(upn)
        with self.engine.begin() as conn:
            if _user_id(conn, upn) is not None:
                raise Conflict(f"user {upn} already exists")
            now = _now()
            conn.execute(
                users.insert().values(
                    id=str(uuid.uuid4()),
                    upn=upn,
                    display_name=display_name,
                    phone=phone,
                    notes=notes,
                    created_at=now,
                )
            )
            self._chain.append(conn, actor=actor.name, action="user.added", upn=upn)
        return User(upn, display_name, phone, notes, now)

    def get_user(self, upn: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.upn == upn.strip().lower())).first()
        if row is None:
            raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
        return User(
            row.upn, row.display_name, row.phone, row.notes, _aware(row.created_at) or _now()
        )

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.upn)).all()
        return [
            User(r.upn, r.display_name, r.phone, r.notes, _aware(r.created_at) or _now())
            for r in rows
        ]

    # -- tokens --------------------------------------------------------------------------------

    def add_tokens(
        self,
        actor: Actor,
        new_tokens: Iterable[NewToken],
        *,
        source: str = "",
        create_missing_users: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Add many tokens in one transaction (a failed row leaves the vault untouched).

        ``progress(done, total)`` is called every thousand tokens while they are encrypted.
        """
        new_tokens = list(new_tokens)
        now = _now()
        token_rows: list[dict[str, Any]] = []
        secret_rows: list[dict[str, Any]] = []
        serials: list[str] = []
        with self.engine.begin() as conn:
            user_ids: dict[str, str] = {}
            limit = self.settings(conn).max_tokens_per_user
            per_user: dict[str, int] = {}
            for index, item in enumerate(new_tokens, start=1):
                if progress is not None and index % 1000 == 0:
                    progress(index, len(new_tokens))
                token_id = os.urandom(16).hex()  # as unique as a UUID4, and 6x cheaper to make
                user_id = None
                if item.upn:
                    upn = validate_upn(item.upn)
                    if upn not in user_ids:
                        found = _user_id(conn, upn)
                        if found is None and create_missing_users:
                            found = str(uuid.uuid4())
                            conn.execute(users.insert().values(id=found, upn=upn, created_at=now))
                            self._chain.append(
                                conn,
                                actor=actor.name,
                                action="user.added",
                                upn=upn,
                                details={"source": source},
                            )
                        if found is None:
                            raise NotFound(
                                f"no user {upn}; add them with `oathdesk user add {upn}`"
                            )
                        user_ids[upn] = found
                        per_user[upn] = _token_count(conn, found)
                    user_id = user_ids[upn]
                    per_user[upn] += 1
                    if per_user[upn] > limit:
                        raise Conflict(f"user {upn} would have more than {limit} tokens")
                token_rows.append(
                    {
                        "id": token_id,
                        "serial": item.serial,
                        "manufacturer": item.manufacturer,
                        "model": item.model,
                        "kind": item.kind.value,
                        "algorithm": item.algorithm.value,
                        "digits": item.digits,
                        "period": item.period,
                        "state": (TokenState.ASSIGNED if user_id else TokenState.IN_STOCK).value,
                        "user_id": user_id,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
                if item.secret is not None:
                    nonce, ciphertext = self._data_key.encrypt(
                        item.secret, token_id=token_id, serial=item.serial
                    )
                    secret_rows.append(
                        {
                            "token_id": token_id,
                            "key_id": self._data_key.key_id,
                            "nonce": nonce,
                            "ciphertext": ciphertext,
                        }
                    )
                serials.append(item.serial)
            _check_new_serials(conn, serials)
            # Inserting in key order appends to the B-trees instead of splitting pages at random
            # places: it halves the time of a large import on SQLite.
            insert_rows(conn, tokens, sorted(token_rows, key=lambda row: str(row["id"])))
            insert_rows(conn, token_secrets, sorted(secret_rows, key=lambda r: str(r["token_id"])))
            upn_by_id = {user_id: upn for upn, user_id in user_ids.items()}
            details = {"source": source} if source else {}
            self._chain.append_many(
                conn,
                [
                    AuditEntry(
                        actor.name,
                        "token.added",
                        upn_by_id.get(row["user_id"], ""),
                        row["serial"],
                        details,
                    )
                    for row in token_rows
                ],
            )
        return len(token_rows)

    def existing_serials(self, serials: Iterable[str]) -> set[str]:
        """Which of ``serials`` the vault already holds (for reporting an import's clashes)."""
        wanted = list(serials)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(
                    conn.execute(
                        sa.select(tokens.c.serial).where(tokens.c.serial.in_(chunk))
                    ).scalars()
                )
        return found

    def token_counts(self, upns: Iterable[str]) -> dict[str, int]:
        """How many working tokens each of these users already has."""
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for upn in set(upns):
                user_id = _user_id(conn, upn)
                counts[upn] = 0 if user_id is None else _token_count(conn, user_id)
        return counts

    def add_token(self, actor: Actor, item: NewToken, *, source: str = "") -> Token:
        self.add_tokens(actor, [item], source=source)
        return self.get_token(item.serial)

    def get_token(self, serial: str, conn: sa.Connection | None = None) -> Token:
        with _maybe(self.engine, conn) as c:
            row = c.execute(_token_query().where(tokens.c.serial == serial.strip())).first()
        if row is None:
            raise NotFound(f"no token with serial {serial}; list them with `oathdesk token list`")
        return _token_from_row(row)

    def list_tokens(self, *, state: str | None = None, upn: str | None = None) -> list[Token]:
        query = _token_query().order_by(tokens.c.serial)
        if state:
            query = query.where(tokens.c.state == TokenState(state).value)
        if upn:
            query = query.where(users.c.upn == upn.strip().lower())
        with self.engine.connect() as conn:
            return [_token_from_row(row) for row in conn.execute(query)]

    def assign(self, actor: Actor, serial: str, upn: str) -> Token:
        upn = validate_upn(upn)
        with self.engine.begin() as conn:
            token = self.get_token(serial, conn)
            user_id = _user_id(conn, upn)
            if user_id is None:
                raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
            limit = self.settings(conn).max_tokens_per_user
            if _token_count(conn, user_id) >= limit:
                raise Conflict(f"user {upn} already has {limit} tokens, Entra's limit")
            check_transition(serial, token.kind, token.state, TokenState.ASSIGNED)
            _update_token(conn, token, state=TokenState.ASSIGNED.value, user_id=user_id)
            self._chain.append(
                conn, actor=actor.name, action="token.assigned", upn=upn, serial=token.serial
            )
        return self.get_token(serial)

    def move(
        self,
        actor: Actor,
        serial: str,
        target: TokenState,
        *,
        details: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Token:
        """Move a token along its lifecycle (burned, registered, shipped, lost, ...)."""
        with self.engine.begin() as conn:
            token = self.get_token(serial, conn)
            check_transition(token.serial, token.kind, token.state, target)
            if target == TokenState.SECRET_PURGED:
                raise Conflict("use purge to erase a secret")
            values: dict[str, Any] = {"state": target.value, **fields}
            if target == TokenState.DELIVERED:
                values["delivered_at"] = _now()
            if target in (TokenState.LOST, TokenState.REVOKED, TokenState.RETIRED):
                self._erase_secret(conn, token.id)  # a lost or revoked seed must not survive
            _update_token(conn, token, **values)
            self._chain.append(
                conn,
                actor=actor.name,
                action=f"token.{target.value}",
                upn=token.upn or "",
                serial=token.serial,
                details=details,
            )
        if target in (TokenState.LOST, TokenState.REVOKED, TokenState.RETIRED):
            db.checkpoint(self.engine)
        return self.get_token(serial)

    def reassign(self, actor: Actor, serial: str, upn: str, new_secret: bytes) -> Token:
        """Give a programmable token to another user with a new seed (the old one is erased)."""
        upn = validate_upn(upn)
        with self.engine.begin() as conn:
            token = self.get_token(serial, conn)
            if token.kind is not TokenKind.PROGRAMMABLE:
                raise Conflict(
                    f"token {serial} has a factory seed; only programmable tokens can be reassigned"
                )
            if token.state not in REASSIGNABLE:
                raise Conflict(f"token {serial} is {token.state.value}; it cannot be reassigned")
            user_id = _user_id(conn, upn)
            if user_id is None:
                raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
            self._erase_secret(conn, token.id)
            nonce, ciphertext = self._data_key.encrypt(
                new_secret, token_id=token.id, serial=token.serial
            )
            conn.execute(
                token_secrets.insert().values(
                    token_id=token.id,
                    key_id=self._data_key.key_id,
                    nonce=nonce,
                    ciphertext=ciphertext,
                )
            )
            _update_token(
                conn,
                token,
                state=TokenState.ASSIGNED.value,
                user_id=user_id,
                delivered_at=None,
                purged_at=None,
                carrier="",
                tracking="",
            )
            self._chain.append(
                conn,
                actor=actor.name,
                action="token.reassigned",
                upn=upn,
                serial=token.serial,
                details={"previous_upn": token.upn or ""},
            )
        db.checkpoint(self.engine)
        return self.get_token(serial)

    def purge(self, actor: Actor, serial: str, *, reason: str) -> Token:
        """Erase a delivered token's secret for good."""
        with self.engine.begin() as conn:
            token = self.get_token(serial, conn)
            check_transition(token.serial, token.kind, token.state, TokenState.SECRET_PURGED)
            self._erase_secret(conn, token.id)
            _update_token(conn, token, state=TokenState.SECRET_PURGED.value, purged_at=_now())
            self._chain.append(
                conn,
                actor=actor.name,
                action="token.secret_purged",
                upn=token.upn or "",
                serial=token.serial,
                details={"reason": reason},
            )
        db.checkpoint(self.engine)
        return self.get_token(serial)

    def purge_due(
        self, actor: Actor, *, now: datetime | None = None, dry_run: bool = False
    ) -> list[Token]:
        """Purge every delivered token whose retention period has passed."""
        now = now or _now()
        cutoff = now - timedelta(days=self.settings().retention_days)
        due = [
            t
            for t in self.list_tokens(state=TokenState.DELIVERED.value)
            if t.delivered_at is not None and t.delivered_at <= cutoff
        ]
        if not dry_run:
            for token in due:
                self.purge(actor, token.serial, reason="retention period over")
        return due

    def undelivered(self, *, now: datetime | None = None) -> list[Token]:
        """Tokens still out of the user's hands after the warning period: chase them."""
        now = now or _now()
        cutoff = now - timedelta(days=self.settings().undelivered_warning_days)
        waiting = (
            TokenState.ASSIGNED,
            TokenState.BURNED,
            TokenState.REGISTERED,
            TokenState.SHIPPED,
        )
        return [t for t in self.list_tokens() if t.state in waiting and t.created_at <= cutoff]

    def read_secret(
        self, conn: sa.Connection, actor: Actor, token: Token, *, purpose: str, audit: bool = True
    ) -> bytes:
        """Decrypt a token's secret inside a service's transaction.

        The access is audited there, unless the caller writes its own, more specific record in
        the same transaction (``audit=False``: a reveal is one record, not two).
        """
        if token.state not in SECRET_STATES:
            raise Conflict(f"token {token.serial} is {token.state.value}; its secret is gone")
        row = conn.execute(
            sa.select(token_secrets).where(token_secrets.c.token_id == token.id)
        ).first()
        if row is None:
            raise Conflict(f"the vault holds no secret for token {token.serial}")
        secret = self._data_key.decrypt(
            row.nonce, row.ciphertext, token_id=token.id, serial=token.serial
        )
        if not audit:
            return secret
        self._chain.append(
            conn,
            actor=actor.name,
            action="token.secret_read",
            upn=token.upn or "",
            serial=token.serial,
            details={"purpose": purpose},
        )
        return secret

    def record_drift(
        self,
        conn: sa.Connection,
        token: Token,
        drift_seconds: int,
        *,
        measured_at: datetime | None = None,
    ) -> None:
        now = measured_at or _now()
        conn.execute(
            drift_measurements.insert().values(
                token_id=token.id, measured_at=now, drift_seconds=drift_seconds
            )
        )
        conn.execute(
            tokens.update()
            .where(tokens.c.id == token.id)
            .values(drift_seconds=drift_seconds, drift_measured_at=now)
        )

    def drift_history(self) -> dict[str, list[tuple[datetime, int]]]:
        """Every token's drift measurements, oldest first, by serial."""
        query = (
            sa.select(
                tokens.c.serial,
                drift_measurements.c.measured_at,
                drift_measurements.c.drift_seconds,
            )
            .join(tokens, tokens.c.id == drift_measurements.c.token_id)
            .order_by(drift_measurements.c.measured_at, drift_measurements.c.id)
        )
        history: dict[str, list[tuple[datetime, int]]] = {}
        with self.engine.connect() as conn:
            for serial, measured_at, drift in conn.execute(query):
                history.setdefault(serial, []).append((_aware(measured_at) or _now(), drift))
        return history

    def _erase_secret(self, conn: sa.Connection, token_id: str) -> None:
        # Overwrite first, then delete: with secure_delete the freed bytes are zeroed too.
        row = conn.execute(
            sa.select(token_secrets.c.ciphertext).where(token_secrets.c.token_id == token_id)
        ).first()
        if row is None:
            return
        conn.execute(
            token_secrets.update()
            .where(token_secrets.c.token_id == token_id)
            .values(ciphertext=bytes(len(row.ciphertext)), nonce=bytes(12))
        )
        conn.execute(token_secrets.delete().where(token_secrets.c.token_id == token_id))

    # -- audit ---------------------------------------------------------------------------------

    def verify_audit(self) -> list[str]:
        with self.engine.connect() as conn:
            return self._chain.verify(conn)

    def export_audit(
        self,
        *,
        actor: str | None = None,
        upn: str | None = None,
        serial: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        query = sa.select(audit_log).order_by(audit_log.c.seq)
        for column, value in (
            (audit_log.c.actor, actor),
            (audit_log.c.upn, upn),
            (audit_log.c.serial, serial),
            (audit_log.c.action, action),
        ):
            if value:
                query = query.where(column == value)
        if since:
            query = query.where(audit_log.c.at >= since.astimezone(UTC).isoformat())
        if until:
            query = query.where(audit_log.c.at <= until.astimezone(UTC).isoformat())
        with self.engine.connect() as conn:
            return rows_as_dicts(conn.execute(query))

    def count_audit(
        self,
        conn: sa.Connection,
        *,
        action: str,
        since: datetime,
        actor: str | None = None,
        upn: str | None = None,
    ) -> int:
        """How many records of ``action`` since a time (rate limits count audited events)."""
        query = (
            sa.select(sa.func.count())
            .select_from(audit_log)
            .where(
                audit_log.c.action == action, audit_log.c.at >= since.astimezone(UTC).isoformat()
            )
        )
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if upn:
            query = query.where(audit_log.c.upn == upn)
        return int(conn.execute(query).scalar_one())


# -- helpers ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _maybe(engine: sa.Engine, conn: sa.Connection | None) -> Iterator[sa.Connection]:
    if conn is not None:
        yield conn
    else:
        with engine.connect() as fresh:
            yield fresh


def _store_new_key(conn: sa.Connection, master_key: MasterKey, purpose: str) -> tuple[str, bytes]:
    import os

    key_id = str(uuid.uuid4())
    key = os.urandom(32)
    nonce, wrapped = master_key.wrap(key, slot=key_id)
    conn.execute(
        wrapped_keys.insert().values(
            id=key_id,
            purpose=purpose,
            master_key_id=master_key.key_id,
            nonce=nonce,
            wrapped=wrapped,
            created_at=_now(),
        )
    )
    return key_id, key


def _user_id(conn: sa.Connection, upn: str) -> str | None:
    found: str | None = conn.execute(sa.select(users.c.id).where(users.c.upn == upn)).scalar()
    return found


def _token_count(conn: sa.Connection, user_id: str) -> int:
    active = [
        s.value
        for s in (
            TokenState.ASSIGNED,
            TokenState.BURNED,
            TokenState.REGISTERED,
            TokenState.SHIPPED,
            TokenState.DELIVERED,
            TokenState.SECRET_PURGED,
        )
    ]
    query = (
        sa.select(sa.func.count())
        .select_from(tokens)
        .where(tokens.c.user_id == user_id, tokens.c.state.in_(active))
    )
    return int(conn.execute(query).scalar_one())


def _check_new_serials(conn: sa.Connection, serials: list[str]) -> None:
    seen: set[str] = set()
    for serial in serials:
        if not serial.strip():
            raise InvalidInput("a token needs a serial number")
        if serial in seen:
            raise Conflict(f"serial {serial} appears twice")
        seen.add(serial)
    for start in range(0, len(serials), 500):
        chunk = serials[start : start + 500]
        existing = conn.execute(
            sa.select(tokens.c.serial).where(tokens.c.serial.in_(chunk))
        ).first()
        if existing is not None:
            raise Conflict(f"a token with serial {existing.serial} is already in the vault")


def _token_query() -> sa.Select[Any]:
    has_secret = sa.exists().where(token_secrets.c.token_id == tokens.c.id)
    return sa.select(tokens, users.c.upn, has_secret.label("has_secret")).outerjoin(
        users, users.c.id == tokens.c.user_id
    )


def _token_from_row(row: sa.Row[Any]) -> Token:
    return Token(
        id=row.id,
        serial=row.serial,
        manufacturer=row.manufacturer,
        model=row.model,
        kind=TokenKind(row.kind),
        algorithm=Algorithm(row.algorithm),
        digits=row.digits,
        period=row.period,
        state=TokenState(row.state),
        upn=row.upn,
        carrier=row.carrier,
        tracking=row.tracking,
        drift_seconds=row.drift_seconds,
        drift_measured_at=_aware(row.drift_measured_at),
        created_at=_aware(row.created_at) or _now(),
        updated_at=_aware(row.updated_at) or _now(),
        delivered_at=_aware(row.delivered_at),
        has_secret=bool(row.has_secret),
        version=row.version,
    )


def _update_token(conn: sa.Connection, token: Token, **values: Any) -> None:
    """Optimistic locking: the update applies only to the version that was read."""
    result = conn.execute(
        tokens.update()
        .where(tokens.c.id == token.id, tokens.c.version == token.version)
        .values(**values, updated_at=_now(), version=token.version + 1)
    )
    if result.rowcount != 1:
        raise Conflict(f"token {token.serial} changed meanwhile; reload it and try again")
