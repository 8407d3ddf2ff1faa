"""The vault facade: each public method that changes something is one unit of work (one
transaction, its audit record included), done on behalf of an explicit actor.

Callers (the CLI, services, the web console) pass the acting operator in; nothing here reads
globals or the environment. Secrets enter as bytes, are encrypted before they touch the database,
and leave only through ``read_secret``, which is audited. Services compose several steps in one
transaction with ``unit_of_work`` (see ``oathdesk.vault.work``).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import Conflict, NotFound
from oathdesk.vault import bulk, db, fingerprints, leases, rotation, rows
from oathdesk.vault import housekeeping as records
from oathdesk.vault.audit import AuditChain, AuditEntry, row_as_dict
from oathdesk.vault.audit_filter import AuditFilter, audit_source
from oathdesk.vault.audit_verify import ChainCheck, ChainPoint
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.export_rows import ExportColumns, decrypt_part, export_columns
from oathdesk.vault.ids import new_id
from oathdesk.vault.keys import KEY_BYTES, DataKey, MasterKey
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import (
    Actor,
    NewToken,
    Token,
    TokenColumns,
    User,
    VaultSettings,
    utc_now,
)
from oathdesk.vault.paging import CURSOR_PURPOSE, Cursors
from oathdesk.vault.passphrase import KdfParams, store_params
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.schema import (
    audit_log,
    drift_measurements,
    settings,
    tokens,
    users,
    wrapped_keys,
)
from oathdesk.vault.work import UnitOfWork

__all__ = ["Actor", "NewToken", "Token", "TokenColumns", "User", "Vault", "VaultSettings"]


class Vault:
    """An open vault: an engine, the unwrapped data key and the audit chain."""

    def __init__(self, engine: sa.Engine, data_key: DataKey, chain: AuditChain) -> None:
        self.engine = engine
        self._data_key = data_key
        self._chain = chain

    def __repr__(self) -> str:
        return f"Vault({self.engine.url.render_as_string(hide_password=True)})"

    @functools.cached_property
    def cursors(self) -> Cursors:
        """This vault's page cursors (``paging``): bound to a key of its own."""
        return Cursors(self._chain.derived_key(CURSOR_PURPOSE))

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

    @staticmethod
    def inspect(location: VaultLocation) -> tuple[str | None, bool]:
        """The schema revision at ``location`` (None: no schema yet) and whether a vault was
        created there (its keys exist); a schema without keys is an unfinished ``init``."""
        if location.sqlite_path is not None and not location.sqlite_path.exists():
            return None, False
        engine = db.create_engine(location.database_url)
        try:
            revision = db.schema_revision(engine)
            if revision is None:
                return None, False
            with db.reading(engine) as conn:
                count = conn.execute(sa.select(sa.func.count()).select_from(wrapped_keys))
                return revision, bool(count.scalar_one())
        except sa.exc.OperationalError as error:
            raise db.open_error(location.display, location.database_url, error) from None
        finally:
            engine.dispose()

    @staticmethod
    def upgrade_schema(location: VaultLocation) -> None:
        """Apply the migrations a vault made by an older oathdesk lacks (keys are untouched)."""
        engine = db.create_engine(location.database_url)
        try:
            db.refuse_newer_schema(location.display, db.schema_revision(engine))
            db.upgrade(engine)
        finally:
            engine.dispose()

    @classmethod
    def open(cls, location: VaultLocation, master_key: MasterKey) -> Vault:
        if location.sqlite_path is not None and not location.sqlite_path.exists():
            raise NotFound(f"no vault at {location.display}; run `oathdesk init` first")
        engine = db.create_engine(location.database_url)
        try:
            revision = db.schema_revision(engine)
        except sa.exc.OperationalError as error:
            engine.dispose()
            raise db.open_error(location.display, location.database_url, error) from None
        if revision != db.SCHEMA_HEAD:
            engine.dispose()
            if revision is None:
                raise db.StorageError(
                    f"{location.display} is not an oathdesk vault; run `oathdesk init` to make one"
                )
            db.refuse_newer_schema(location.display, revision)
            raise db.StorageError(
                f"the vault at {location.display} has an older schema ({revision}); run "
                "`oathdesk init` to upgrade it"
            )
        with db.reading(engine) as conn:
            stored = conn.execute(sa.select(wrapped_keys).order_by(wrapped_keys.c.created_at)).all()
            wrappers = {row.master_key_id for row in stored}
            # An interrupted rotation, told apart from a wrong key (vault/rotation.py).
            refused = rotation.refusal(conn, wrappers) if wrappers - {master_key.key_id} else None
        if refused is not None:
            engine.dispose()
            raise refused
        keys = {}
        for row in stored:
            keys[row.purpose] = (row.id, master_key.unwrap(row.nonce, row.wrapped, slot=row.id))
        return cls(engine, DataKey(*keys["data"]), AuditChain(keys["audit"][1]))

    def close(self) -> None:
        self.engine.dispose()

    # -- units of work -------------------------------------------------------------------------

    @contextlib.contextmanager
    def unit_of_work(self, actor: Actor) -> Iterator[UnitOfWork]:
        """One transaction acting as ``actor``: commits if the block succeeds, else nothing."""
        with self.transaction() as conn:
            work = UnitOfWork(conn, actor, self._data_key, self._chain)
            yield work
        if work.erased_secrets:
            db.checkpoint(self.engine)  # the erased ciphertext leaves the SQLite WAL too

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A bare writing transaction; services pass it to ``read_secret``, ``audit``, ..."""
        try:
            with db.writing(self.engine) as conn:
                yield conn
        except sa.exc.DBAPIError as error:
            # Locked, read-only, full, a refused row: one line; the statement's values not shown.
            raise db.storage_error(error) from None

    @contextlib.contextmanager
    def lease(
        self,
        job: str,
        actor: Actor,
        *,
        host: str,
        ttl: timedelta,
        take_over: Callable[[leases.LeaseHolder], bool] | None = None,
    ) -> Iterator[leases.Lease]:
        """Run ``job`` alone on this vault, across processes and machines (vault/leases.py):
        Conflict, naming who runs it, when another run holds it. Released when the block ends,
        however it ends; a run killed outright frees it after ``ttl`` without a renewal.

        A holder on this machine whose process is gone is taken over at once; one whose fate is
        unknown (another machine) only when ``take_over`` (a person's confirmation, shown the
        holder) says yes. Each take-over is an audit record ``lease.taken_over`` naming the old
        holder, in the transaction that takes the lease."""
        held = leases.Lease(self.transaction, job, ttl)
        current = held.take(actor=actor.name, host=host)
        while current is not None:
            fate = current.fate(host=host, me=held.process)
            if fate is leases.HolderFate.RUNNING:
                raise Conflict(leases.busy_message(job, current, running_here=True))
            if fate is leases.HolderFate.GONE:
                reason = "its process is gone from this machine"
            elif take_over is not None and take_over(current):
                reason = f"confirmed by {actor.name}: the holder on {current.host} is gone"
            else:
                raise Conflict(leases.busy_message(job, current))
            with self.unit_of_work(actor) as work:
                now_held = held.take_over(
                    work.conn, current, actor=actor.name, host=host, reason=reason
                )
                if now_held is None:
                    work.audit(
                        "lease.taken_over",
                        details={
                            "job": job,
                            "from_actor": current.actor,
                            "from_host": current.host,
                            "from_pid": current.pid,
                            "from_taken_at": current.taken_at.isoformat(),
                            "reason": reason,
                        },
                    )
            # None: ours now. Else another run took it first: judge that one the same way
            # (it is most likely alive).
            current = now_held
        try:
            yield held
        finally:
            # A vault gone meanwhile keeps the lease until it expires; the first error stands.
            with contextlib.suppress(db.StorageError):
                held.release()

    @contextlib.contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A read-only snapshot for services that read several rows together."""
        with db.reading(self.engine) as conn:
            yield conn

    def _work(self, conn: sa.Connection, actor: Actor) -> UnitOfWork:
        return UnitOfWork(conn, actor, self._data_key, self._chain)

    def encrypt_for(self, secret: bytes, record: str, label: str) -> tuple[bytes, bytes]:
        """Encrypt a non-token secret (an operator's TOTP, a Graph credential) bound to a record."""
        return self._data_key.encrypt(secret, token_id=record, serial=label)

    def decrypt_for(self, nonce: bytes, ciphertext: bytes, record: str, label: str) -> bytes:
        return self._data_key.decrypt(nonce, ciphertext, token_id=record, serial=label)

    def audit(self, conn: sa.Connection, actor: Actor, action: str, **fields: Any) -> int:
        """Append an audit record inside ``conn``'s transaction (services use this)."""
        return self._work(conn, actor).audit(action, **fields)

    def audit_entries(self, conn: sa.Connection, entries: Sequence[AuditEntry]) -> int:
        """Append several records (of any actors) inside ``conn``'s transaction with one head
        update: a batch of reveals is one append. Returns the last sequence number."""
        return self._chain.append_many(conn, entries)

    def lock_audit(self, conn: sa.Connection) -> None:
        """Queue behind other writers of the audit chain now, in ``conn``'s transaction: what is
        counted after this (rate limits) includes every record committed before ours, on every
        server sharing the database."""
        self._chain.lock(conn)

    # -- settings ------------------------------------------------------------------------------

    def settings(self, conn: sa.Connection | None = None) -> VaultSettings:
        with self._reading(conn) as c:
            return rows.read_settings(c)

    def update_settings(self, actor: Actor, **changes: Any) -> VaultSettings:
        with self.unit_of_work(actor) as work:
            return work.update_settings(changes)

    # -- users ---------------------------------------------------------------------------------

    def add_user(
        self, actor: Actor, upn: str, *, display_name: str = "", phone: str = "", notes: str = ""
    ) -> User:
        try:
            with self.unit_of_work(actor) as work:
                return work.add_user(upn, display_name=display_name, phone=phone, notes=notes)
        except db.ConstraintRefused:
            # Another operator may have added the same UPN between our check and our insert.
            with db.reading(self.engine) as conn:
                if rows.user_id(conn, upn.strip().lower()) is not None:
                    raise Conflict(f"user {upn.strip().lower()} already exists") from None
            raise

    def update_user(
        self,
        actor: Actor,
        upn: str,
        *,
        display_name: str | None = None,
        phone: str | None = None,
        notes: str | None = None,
    ) -> User:
        """Change a user's display name, phone number on file or notes (None: leave it)."""
        with self.unit_of_work(actor) as work:
            return work.update_user(upn, display_name=display_name, phone=phone, notes=notes)

    def get_user(self, upn: str, conn: sa.Connection | None = None) -> User:
        with self._reading(conn) as c:
            user = rows.find_user(c, upn.strip().lower())
        if user is None:
            raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
        return user

    def list_users(self) -> list[User]:
        with db.reading(self.engine) as conn:
            return [
                rows.user_from_row(r) for r in conn.execute(sa.select(users).order_by(users.c.upn))
            ]

    # -- tokens --------------------------------------------------------------------------------

    def add_tokens(
        self,
        actor: Actor,
        new_tokens: Iterable[NewToken] | TokenColumns,
        *,
        source: str = "",
        create_missing_users: bool = False,
        progress: Callable[[int, int], None] | None = None,
        people: Mapping[str, tuple[str, str]] | None = None,
        secret_fingerprints: Sequence[bytes] | None = None,
    ) -> int:
        """Add many tokens in one transaction and one audit record: all of them or none.

        Secrets are encrypted before the insert (two ``executemany`` calls). ``progress(done,
        total)`` is called every thousand tokens while they are encrypted. ``people``: the
        (display name, phone) of users the batch creates, checked (people.py) by the caller.
        ``secret_fingerprints``: the secrets' fingerprints (``secret_fingerprints()``), row for
        row, when the caller has them already. ``TokenColumns`` spare a big import 100,000
        ``NewToken`` objects.
        """
        items = new_tokens if isinstance(new_tokens, TokenColumns) else list(new_tokens)
        try:
            with self.unit_of_work(actor) as work:
                return work.add_tokens(
                    items,
                    source=source,
                    create_missing_users=create_missing_users,
                    progress=progress,
                    people=people,
                    secret_fingerprints=secret_fingerprints,
                )
        except db.ConstraintRefused:
            # The unique index refused a serial? The transaction is gone, so ask afresh which.
            serials = (
                items.serials if isinstance(items, TokenColumns) else [i.serial for i in items]
            )
            clashes = sorted(self.existing_serials(serials))
            if not clashes:
                raise
            if len(clashes) == 1:
                raise Conflict(
                    f"a token with serial {clashes[0]} is already in the vault; nothing was added"
                ) from None
            shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" * (len(clashes) > 5))
            raise Conflict(f"serials {shown} are already in the vault; nothing was added") from None

    add_tokens_bulk = add_tokens

    def users_on_file(self, upns: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(display name, phone) of those of ``upns`` that are users, a query per chunk."""
        with db.reading(self.engine) as conn:
            names = bulk.lookup(conn, users.c.upn, users.c.display_name, upns)
            phones = bulk.lookup(conn, users.c.upn, users.c.phone, list(names))
        return {upn: (names[upn], phones[upn]) for upn in names}

    def add_token(self, actor: Actor, item: NewToken, *, source: str = "") -> Token:
        self.add_tokens(actor, [item], source=source)
        return self.get_token(item.serial)

    def existing_serials(self, serials: Iterable[str]) -> set[str]:
        """Which of ``serials`` the vault already holds (for reporting an import's clashes)."""
        with db.reading(self.engine) as conn:
            return set(bulk.lookup(conn, tokens.c.serial, tokens.c.serial, list(serials)))

    def secret_fingerprints(self, secrets: Sequence[bytes]) -> list[bytes]:
        """The keyed fingerprint of each of ``secrets`` (HMAC, not reversible): an import
        computes them once for ``secret_holders`` and ``add_tokens``."""
        return self._data_key.fingerprints(secrets)

    def secret_holders(
        self, secrets: Sequence[bytes], *, secret_fingerprints: Sequence[bytes] | None = None
    ) -> list[str | None]:
        """For each of ``secrets``, the serial of a token in the vault that already holds it
        (None: no token does). Compares keyed fingerprints (``secret_fingerprints``: theirs,
        if the caller has them); decrypts only rows stored before fingerprints existed, and
        writes nothing."""
        wanted = (
            self._data_key.fingerprints(secrets)
            if secret_fingerprints is None
            else secret_fingerprints
        )
        with db.reading(self.engine) as conn:
            held = fingerprints.holders(conn, wanted)
            for fingerprint, serial in fingerprints.unfilled(conn, self._data_key).items():
                held.setdefault(fingerprint, serial)
        return [held.get(fingerprint) for fingerprint in wanted]

    def token_counts(self, upns: Iterable[str]) -> dict[str, int]:
        """How many tokens each of these users holds or is about to hold."""
        wanted = sorted(set(upns))
        with db.reading(self.engine) as conn:
            ids: dict[str, str] = bulk.lookup(conn, users.c.upn, users.c.id, wanted)
            held = rows.held_token_counts(conn, sorted(ids.values()))
        return {upn: held.get(ids[upn], 0) if upn in ids else 0 for upn in wanted}

    def get_token(self, serial: str, conn: sa.Connection | None = None) -> Token:
        with self._reading(conn) as c:
            return rows.find_token(c, serial)

    def list_tokens(
        self,
        *,
        state: str | None = None,
        upn: str | None = None,
        states: Iterable[TokenState] | None = None,
        kind: TokenKind | None = None,
        drift_measured: bool = False,
    ) -> list[Token]:
        """Tokens by serial; each filter narrows the query (``states``: any of these;
        ``drift_measured``: only tokens whose clock drift has been measured)."""
        # With a user, the other filters are checked on the user's few tokens.
        query = (
            rows.token_query()
            .order_by(tokens.c.serial)
            .where(
                *rows.token_conditions(
                    state=TokenState(state).value if state else None,
                    states=None if states is None else [s.value for s in states],
                    kind=kind.value if kind else None,
                    drift_measured=drift_measured,
                    by_owner=bool(upn),
                )
            )
        )
        if upn:
            query = query.where(users.c.upn == upn.strip().lower())
        with db.reading(self.engine) as conn:
            return [rows.token_from_row(row) for row in conn.execute(query)]

    def tokens_of(self, upn: str, conn: sa.Connection | None = None) -> list[Token]:
        """The tokens of user ``upn``, by serial (``list_tokens(upn=...)`` in one statement
        built once: the reveal path reads it in its own transaction)."""
        with self._reading(conn) as c:
            return rows.tokens_of(c, upn.strip().lower())

    def assign(
        self, actor: Actor, serial: str, upn: str, *, expected_version: int | None = None
    ) -> Token:
        with self.unit_of_work(actor) as work:
            return work.assign(serial, upn, expected_version=expected_version)

    def move(
        self,
        actor: Actor,
        serial: str,
        target: TokenState,
        *,
        details: Mapping[str, Any] | None = None,
        carrier: str | None = None,
        tracking: str | None = None,
        expected_version: int | None = None,
    ) -> Token:
        """Move a token along its lifecycle (burned, registered, shipped, lost, ...).

        ``expected_version``: the version the operator saw; a token changed since is refused
        ("changed meanwhile") instead of overwriting someone else's update.
        """
        with self.unit_of_work(actor) as work:
            return work.move(
                serial,
                target,
                details=details,
                carrier=carrier,
                tracking=tracking,
                expected_version=expected_version,
            )

    def reassign(self, actor: Actor, serial: str, upn: str, new_secret: bytes) -> Token:
        """Give a programmable token to another user with a new seed (the old one is erased)."""
        with self.unit_of_work(actor) as work:
            return work.reassign(serial, upn, new_secret)

    def purge(self, actor: Actor, serial: str, *, reason: str) -> Token:
        """Erase a delivered token's secret for good."""
        with self.unit_of_work(actor) as work:
            return work.purge(serial, reason=reason)

    def purge_due(
        self, actor: Actor, *, now: datetime | None = None, dry_run: bool = False
    ) -> list[Token]:
        """Purge every delivered token whose retention period has passed, in one transaction."""
        with db.reading(self.engine) as conn:
            days = rows.read_settings(conn).retention_days
            due = records.purge_due_by_serial(conn, (now or utc_now()) - timedelta(days=days))
        if due and not dry_run:
            with self.unit_of_work(actor) as work:
                for token in due:
                    work.purge(token.serial, reason="retention period over")
        return due

    def undelivered(self, *, now: datetime | None = None) -> list[Token]:
        """Tokens still not in the user's hands after the warning period: chase them. Stock
        registered in Entra without a user (`entra push --stock`) waits for no one."""
        with db.reading(self.engine) as conn:
            days = rows.read_settings(conn).undelivered_warning_days
            return records.late_by_serial(conn, (now or utc_now()) - timedelta(days=days))

    def read_secret(
        self, conn: sa.Connection, actor: Actor, token: Token, *, purpose: str, audit: bool = True
    ) -> bytes:
        """Decrypt a token's secret inside a service's transaction (see ``UnitOfWork``)."""
        return self._work(conn, actor).read_secret(token, purpose=purpose, audit=audit)

    def export_rows(
        self,
        conn: sa.Connection,
        actor: Actor,
        states: Collection[TokenState],
        kind: TokenKind | None,
    ) -> ExportColumns:
        """The tokens an export of ``states`` (and ``kind``) may hold, secrets still encrypted,
        in ``conn``'s transaction: the service chooses them and writes its audit record there,
        before any secret is decrypted (``decrypt_export``)."""
        require(actor, Permission.EXPORT_SECRETS)
        return export_columns(conn, states, kind)

    def decrypt_export(
        self, actor: Actor, rows: ExportColumns, *, chunk: int = 2000
    ) -> Iterator[tuple[ExportColumns, list[bytes]]]:
        """The secrets of ``rows`` (from ``export_rows``), decrypted ``chunk`` tokens at a time
        as the export is written, each chunk with its tokens. Unaudited: call it after the
        export's record is committed."""
        require(actor, Permission.EXPORT_SECRETS)
        require(actor, Permission.REVEAL)
        for start in range(0, len(rows), chunk):
            part = rows.part(start, start + chunk)
            yield part, decrypt_part(self._data_key, part)

    def read_secrets(
        self, conn: sa.Connection, actor: Actor, chosen: Sequence[Token]
    ) -> list[bytes]:
        """Decrypt many tokens' secrets inside a service's transaction, unaudited: the service
        writes one record for them all (an export)."""
        return self._work(conn, actor).read_secrets(chosen)

    def record_drift(
        self,
        conn: sa.Connection,
        token: Token,
        drift_seconds: int,
        *,
        measured_at: datetime | None = None,
    ) -> None:
        rows.record_drift(conn, token, drift_seconds, measured_at or utc_now())

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
        with db.reading(self.engine) as conn:
            for serial, measured_at, drift in conn.execute(query):
                moment = measured_at if measured_at.tzinfo else measured_at.replace(tzinfo=UTC)
                history.setdefault(serial, []).append((moment, drift))
        return history

    # -- audit ---------------------------------------------------------------------------------

    def verify_audit(self) -> list[str]:
        """Every break in the audit chain, in plain words; empty when intact."""
        return self.check_audit().problems

    def check_audit(self, after: ChainPoint | None = None) -> ChainCheck:
        """The whole chain, or only the records after an earlier check's end (and the head),
        for a page that shows the chain's state on every view (``check_chain``)."""
        with db.reading(self.engine) as conn:
            return self._chain.check(conn, after)

    def audit_count(self) -> int:
        with db.reading(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one())

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
        """Audit records, oldest first, filtered (``audit_records``, held in a list)."""
        wanted = AuditFilter(
            action=action or "",
            upn=upn or "",
            serial=serial or "",
            actor=actor or "",
            since=since,
            until=until,
        )
        return list(self.audit_records(wanted))

    def audit_records(self, wanted: AuditFilter | None = None) -> Iterator[dict[str, Any]]:
        """Audit records, oldest first, filtered, streamed from one snapshot: an export of a
        million records starts at once and never holds them all (PostgreSQL: a server-side
        cursor in a REPEATABLE READ transaction; SQLite's cursor steps as it is read). A
        token's records include the import that added it (one record for many tokens)."""
        wanted = wanted or AuditFilter()
        with db.snapshot(self.engine) as conn:
            query = audit_source(conn, wanted)
            ordered = query.order_by(query.selected_columns.seq)
            streamed = conn.execution_options(stream_results=True, max_row_buffer=1000)
            for row in streamed.execute(ordered):
                yield row_as_dict(row)

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
        return rows.count_audit(conn, action=action, since=since, actor=actor, upn=upn)

    # -- helpers -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, conn: sa.Connection | None) -> Iterator[sa.Connection]:
        if conn is not None:
            yield conn  # inside the caller's transaction
        else:
            with db.reading(self.engine) as fresh:
                yield fresh


def _store_new_key(conn: sa.Connection, master_key: MasterKey, purpose: str) -> tuple[str, bytes]:
    key_id = new_id()
    key = os.urandom(KEY_BYTES)
    nonce, wrapped = master_key.wrap(key, slot=key_id)
    conn.execute(
        wrapped_keys.insert().values(
            id=key_id,
            purpose=purpose,
            master_key_id=master_key.key_id,
            nonce=nonce,
            wrapped=wrapped,
            created_at=utc_now(),
        )
    )
    return key_id, key
