"""A unit of work: the vault's operations inside one transaction, acting as one actor.

``Vault.unit_of_work(actor)`` makes one; every facade method is one, and services compose several
steps in one (read a token, decrypt its secret, write the audit record) so that all of it lands
or none of it does. Each operation checks the actor's role first and appends its audit record in
the same transaction: if the record cannot be written, nothing is.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput, NotFound
from oathdesk.formats.cells import starts_like_formula
from oathdesk.upn import MAX_PLAIN_UPN_CHARS, PLAIN_UPN, validate_upn
from oathdesk.vault import fingerprints, rows, token_counts
from oathdesk.vault.audit import AuditChain, AuditEntry
from oathdesk.vault.bulk import (
    INSERTED_TOKEN_COLUMNS,
    SECRET_COLUMNS,
    build_token_batch,
    insert_tuples,
    lookup,
    sqlite_datetime,
)
from oathdesk.vault.ids import new_id, new_ids
from oathdesk.vault.keys import DataKey
from oathdesk.vault.lifecycle import (
    CLOSING,
    REASSIGNABLE,
    SECRET_STATES,
    STAMP_COLUMN,
    TokenKind,
    TokenState,
    check_transition,
)
from oathdesk.vault.models import (
    Actor,
    NewToken,
    Token,
    TokenColumns,
    User,
    VaultSettings,
    utc_now,
)
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.schema import (
    settings,
    token_secrets,
    tokens,
    users,
)

_STATE = INSERTED_TOKEN_COLUMNS.index("state")

# Moves a helpdesk operator may make; the others (and everything else that changes a token)
# need the admin's MANAGE_TOKENS.
SHIPPING_MOVES = frozenset(
    (TokenState.BURNED, TokenState.REGISTERED, TokenState.SHIPPED, TokenState.DELIVERED)
)


class UnitOfWork:
    """Operations on one open transaction ``conn`` on behalf of ``actor``."""

    def __init__(
        self, conn: sa.Connection, actor: Actor, data_key: DataKey, chain: AuditChain
    ) -> None:
        self.conn = conn
        self.actor = actor
        self._data_key = data_key
        self._chain = chain
        # Secrets erased in this unit; the vault folds SQLite's WAL after the commit.
        self.erased_secrets = 0

    def __repr__(self) -> str:
        return f"UnitOfWork(actor={self.actor.name!r})"

    # -- audit -------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        *,
        upn: str = "",
        serial: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append an audit record in this transaction; returns its sequence number."""
        return self._chain.append(
            self.conn, actor=self.actor.name, action=action, upn=upn, serial=serial, details=details
        )

    def audit_many(self, entries: Sequence[AuditEntry]) -> int:
        """Append several records in this transaction with one head update (a batch of
        changes, each with its own record); returns the last sequence number."""
        return self._chain.append_many(self.conn, entries)

    def count_audit(
        self,
        *,
        action: str,
        since: datetime,
        actor: str | None = None,
        upn: str | None = None,
    ) -> int:
        """How many records of ``action`` since a time (rate limits count audited events)."""
        return rows.count_audit(self.conn, action=action, since=since, actor=actor, upn=upn)

    # -- settings ----------------------------------------------------------------------------

    def settings(self) -> VaultSettings:
        return rows.read_settings(self.conn)

    def update_settings(self, changes: dict[str, Any]) -> VaultSettings:
        require(self.actor, Permission.SETTINGS)
        updated = self.settings().changed(changes)
        self.conn.execute(settings.update().where(settings.c.id == 1).values(**changes))
        self.audit("settings.updated", details=changes)
        return updated

    # -- users -------------------------------------------------------------------------------

    def add_user(self, upn: str, *, display_name: str, phone: str, notes: str) -> User:
        require(self.actor, Permission.MANAGE_USERS)
        from oathdesk.people import check_display_name, check_notes, normalize_phone

        upn = validate_upn(upn)
        display_name, phone, notes = (
            check_display_name(display_name),
            normalize_phone(phone),
            check_notes(notes),
        )
        if rows.user_id(self.conn, upn) is not None:
            raise Conflict(f"user {upn} already exists; see it with `oathdesk user show {upn}`")
        now = utc_now()
        added_seq = self.audit("user.added", upn=upn)
        self.conn.execute(
            users.insert().values(
                id=new_id(),
                upn=upn,
                display_name=display_name,
                phone=phone,
                notes=notes,
                created_at=now,
                added_seq=added_seq,
            )
        )
        return User(upn, display_name, phone, notes, now)

    def update_user(
        self,
        upn: str,
        *,
        display_name: str | None = None,
        phone: str | None = None,
        notes: str | None = None,
    ) -> User:
        """Change what is on file about a user (None: leave it); one ``user.updated`` record
        with each changed field before and after. Admin only: the phone number is what a
        "callback" verification dials, so whoever may change it may steer a code."""
        require(self.actor, Permission.MANAGE_USERS)
        from oathdesk.people import check_display_name, check_notes, normalize_phone

        upn = validate_upn(upn)
        current = rows.find_user(self.conn, upn)
        if current is None:
            raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
        wanted = {
            "display_name": None if display_name is None else check_display_name(display_name),
            "phone": None if phone is None else normalize_phone(phone),
            "notes": None if notes is None else check_notes(notes),
        }
        changes: dict[str, str] = {
            field: value
            for field, value in wanted.items()
            if value is not None and value != getattr(current, field)
        }
        if not changes:
            return current
        self.conn.execute(users.update().where(users.c.upn == upn).values(**changes))
        self.audit(
            "user.updated",
            upn=upn,
            details={
                "before": {field: getattr(current, field) for field in changes},
                "after": changes,
            },
        )
        return replace(
            current,
            display_name=changes.get("display_name", current.display_name),
            phone=changes.get("phone", current.phone),
            notes=changes.get("notes", current.notes),
        )

    # -- tokens ------------------------------------------------------------------------------

    def token(self, serial: str, *, expected_version: int | None = None) -> Token:
        """The token as stored now. ``expected_version``: the version the operator was shown;
        if someone changed the token since, refuse rather than act on what they did not see."""
        token = rows.find_token(self.conn, serial)
        if expected_version is not None and token.version != expected_version:
            raise Conflict(f"token {token.serial} changed meanwhile; reload it and try again")
        return token

    def add_tokens(
        self,
        items: Sequence[NewToken] | TokenColumns,
        *,
        source: str = "",
        create_missing_users: bool = False,
        progress: Callable[[int, int], None] | None = None,
        people: Mapping[str, tuple[str, str]] | None = None,
        secret_fingerprints: Sequence[bytes] | None = None,
    ) -> int:
        """Add ``items`` with their secrets (encrypted here) as one audit record.
        ``secret_fingerprints``: see ``build_token_batch`` (an import's, computed once).

        A serial already in the vault makes the insert fail (the unique index catches it);
        ``Vault.add_tokens`` turns that into a message naming the serials.
        """
        require(self.actor, Permission.MANAGE_TOKENS)
        columns = items if isinstance(items, TokenColumns) else TokenColumns.of(items)
        _check_batch(columns)
        canonical = _canonical_upns(columns.upns)
        if canonical:
            columns = columns.with_upns(
                [canonical.get(upn, upn) if upn else upn for upn in columns.upns]
            )
        upns = sorted({upn for upn in columns.upns if upn})
        user_ids = self._owners(upns, columns, create_missing_users, source, people or {})
        now = utc_now()
        added_seq = self._audit_added(columns, source)
        batch = build_token_batch(
            columns,
            user_ids,
            self._data_key,
            now=now,
            added_seq=added_seq,
            for_sqlite=self.conn.dialect.name == "sqlite",
            progress=progress,
            secret_fingerprints=secret_fingerprints,
        )
        known = self._known_secrets(batch.fingerprints)
        # Inserted first so that a serial already in the vault is reported as such (the unique
        # index); a known seed is refused after, in the same transaction, which rolls back.
        insert_tuples(self.conn, tokens, INSERTED_TOKEN_COLUMNS, batch.tokens)
        insert_tuples(self.conn, token_secrets, SECRET_COLUMNS, batch.secrets)
        token_counts.record(self.conn, Counter(row[_STATE] for row in batch.tokens))
        _refuse_known_secrets(batch.fingerprints, known)
        return len(batch.tokens)

    def _known_secrets(self, new: Mapping[bytes, str]) -> dict[bytes, str]:
        """Which of the ``new`` fingerprints a token in the vault already holds (its serial)."""
        if not new:
            return {}
        filled = fingerprints.fill_missing(self.conn, self._data_key)
        if filled:
            self.audit("vault.fingerprints_filled", details={"count": filled})
        return fingerprints.holders(self.conn, new)

    def _owners(
        self,
        upns: list[str],
        items: TokenColumns,
        create_missing: bool,
        source: str,
        people: Mapping[str, tuple[str, str]],
    ) -> dict[str, str]:
        """The user id of each UPN (creating missing users if asked), within the token limit."""
        owner_ids: dict[str, str] = lookup(self.conn, users.c.upn, users.c.id, upns)
        existing = sorted(owner_ids.values())
        missing = [upn for upn in upns if upn not in owner_ids]
        if missing and not create_missing:
            raise NotFound(
                f"no user {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f"; add them with `oathdesk user add {missing[0]}`"
            )
        if missing:
            require(self.actor, Permission.MANAGE_USERS)
            now = utc_now()
            stamp: Any = sqlite_datetime(now) if self.conn.dialect.name == "sqlite" else now
            fresh = dict(zip(missing, new_ids(len(missing)), strict=True))
            # Audited first: each row points to the record (one for the batch) that created it,
            # so a user's timeline finds it though the record names no single UPN.
            added_seq = self._audit_users_added(missing, source)
            insert_tuples(
                self.conn,
                users,
                ("id", "upn", "created_at", "added_seq", "display_name", "phone"),
                [
                    (fresh[upn], upn, stamp, added_seq, *people.get(upn, ("", "")))
                    for upn in missing
                ],
            )
            owner_ids.update(fresh)
        self._check_token_limit(owner_ids, existing, items)
        return owner_ids

    def _audit_users_added(self, upns: list[str], source: str) -> int:
        """One record for the users a batch creates, however many: an import of 100,000 people
        adds two records, not 100,001 (a record per user cost a fifth of such an import). It
        names them by count, first and last UPN and a digest of the sorted UPNs, as a bulk
        token record does; each user row keeps its own creation time."""
        details: dict[str, Any] = {"source": source} if source else {}
        if len(upns) == 1:
            return self.audit("user.added", upn=upns[0], details=details)
        ordered = sorted(upns)
        details.update(
            count=len(ordered),
            first_upn=ordered[0],
            last_upn=ordered[-1],
            upns_sha256=serials_digest(ordered),
        )
        return self.audit("users.added", details=details)

    def _check_token_limit(
        self, owner_ids: dict[str, str], existing: list[str], items: TokenColumns
    ) -> None:
        """No user over the limit; only ``existing`` users (their ids) can hold tokens already,
        so the users this batch created are not asked about."""
        limit = self.settings().max_tokens_per_user
        adding = Counter(upn for upn in items.upns if upn)
        if max(adding.values(), default=0) <= limit and not existing:
            return
        held = rows.held_token_counts(self.conn, existing)
        for upn, count in sorted(adding.items()):
            total = held.get(owner_ids[upn], 0) + count
            if total > limit:
                raise Conflict(
                    f"user {upn} would have {total} tokens, over the limit of {limit}; "
                    "retire one first or raise max_tokens_per_user"
                )

    def _audit_added(self, items: TokenColumns, source: str) -> int:
        """One record for the whole batch; each token row points back to it (added_seq)."""
        details: dict[str, Any] = {"source": source} if source else {}
        if len(items) == 1:
            details["kind"] = items.kinds[0].value
            return self.audit(
                "token.added",
                upn=items.upns[0] or "",
                serial=items.serials[0],
                details=details,
            )
        details.update(
            count=len(items),
            first_serial=items.serials[0],
            last_serial=items.serials[-1],
            users=len({upn for upn in items.upns if upn}),
            serials_sha256=serials_digest(items.serials),
        )
        return self.audit("tokens.added", details=details)

    def assign(self, serial: str, upn: str, *, expected_version: int | None = None) -> Token:
        require(self.actor, Permission.MANAGE_TOKENS)
        upn = validate_upn(upn)
        token = self.token(serial, expected_version=expected_version)
        owner_id = rows.require_user_id(self.conn, upn)
        limit = self.settings().max_tokens_per_user
        if rows.held_token_count(self.conn, owner_id) >= limit:
            raise Conflict(
                f"user {upn} already has {limit} tokens, the limit; retire one first "
                "or raise max_tokens_per_user"
            )
        check_transition(token.serial, token.kind, token.state, TokenState.ASSIGNED)
        rows.update_token(
            self.conn,
            token,
            state=TokenState.ASSIGNED.value,
            user_id=owner_id,
            assigned_at=utc_now(),
        )
        self.audit("token.assigned", upn=upn, serial=token.serial)
        return self.token(serial)

    def move(
        self,
        serial: str,
        target: TokenState,
        *,
        details: Mapping[str, Any] | None = None,
        carrier: str | None = None,
        tracking: str | None = None,
        expected_version: int | None = None,
    ) -> Token:
        """Move a token along its lifecycle (burned, registered, shipped, delivered, lost, ...).

        Lost, revoked and retired tokens lose their seed on the way: a seed that may be in
        someone else's hands must not be usable from the vault either.
        """
        require(
            self.actor, Permission.SHIP if target in SHIPPING_MOVES else Permission.MANAGE_TOKENS
        )
        token = self.token(serial, expected_version=expected_version)
        if target is TokenState.SECRET_PURGED:
            raise InvalidInput(f"use `oathdesk token purge {token.serial}` to erase a secret")
        if target is TokenState.ASSIGNED:
            raise InvalidInput(f"use `oathdesk token assign {token.serial} UPN` to assign it")
        check_transition(token.serial, token.kind, token.state, target)
        values: dict[str, Any] = {"state": target.value, STAMP_COLUMN[target]: utc_now()}
        if target is TokenState.SHIPPED:
            if not (carrier and tracking):
                raise InvalidInput("shipping needs the carrier and the tracking reference")
            values.update(carrier=carrier.strip(), tracking=tracking.strip())
        if target in CLOSING:
            self._erase(token)
        rows.update_token(self.conn, token, **values)
        self.audit(
            f"token.{target.value}",
            upn=token.upn or "",
            serial=token.serial,
            details=_shipping_details(details, carrier, tracking),
        )
        return self.token(serial)

    def reassign(self, serial: str, upn: str, new_secret: bytes) -> Token:
        """Give a programmable token to another user with a new seed; the old one is erased."""
        require(self.actor, Permission.MANAGE_TOKENS)
        upn = validate_upn(upn)
        token = self.token(serial)
        if token.kind is not TokenKind.PROGRAMMABLE:
            raise Conflict(
                f"token {serial} has a factory seed; only programmable tokens can be reassigned"
            )
        if token.state not in REASSIGNABLE:
            raise Conflict(
                f"token {serial} is {token.state.value}; only a token that was assigned "
                "(and not lost, revoked or retired) can be reassigned"
            )
        owner_id = rows.require_user_id(self.conn, upn)
        limit = self.settings().max_tokens_per_user
        if token.upn != upn and rows.held_token_count(self.conn, owner_id) >= limit:
            # A token back to its own user is one they hold already; to anyone else, one more.
            raise Conflict(
                f"user {upn} already has {limit} tokens, the limit; retire one first "
                "or raise max_tokens_per_user"
            )
        self._erase(token)
        new = {self._data_key.fingerprint(new_secret): token.serial}
        _refuse_known_secrets(new, self._known_secrets(new))
        rows.store_secret(self.conn, self._data_key, token, new_secret)
        rows.update_token(
            self.conn,
            token,
            state=TokenState.ASSIGNED.value,
            user_id=owner_id,
            assigned_at=utc_now(),
            burned_at=None,
            registered_at=None,
            shipped_at=None,
            delivered_at=None,
            purged_at=None,
            carrier="",
            tracking="",
        )
        self.audit(
            "token.reassigned",
            upn=upn,
            serial=token.serial,
            details={"previous_upn": token.upn or ""},
        )
        return self.token(serial)

    def purge(self, serial: str, *, reason: str) -> Token:
        """Erase a delivered token's secret for good."""
        require(self.actor, Permission.MANAGE_TOKENS)
        token = self.token(serial)
        check_transition(token.serial, token.kind, token.state, TokenState.SECRET_PURGED)
        self._erase(token)
        rows.update_token(
            self.conn, token, state=TokenState.SECRET_PURGED.value, purged_at=utc_now()
        )
        self.audit(
            "token.secret_purged",
            upn=token.upn or "",
            serial=token.serial,
            details={"reason": reason},
        )
        return self.token(serial)

    def _erase(self, token: Token) -> None:
        if rows.erase_secret(self.conn, token.id):
            self.erased_secrets += 1

    # -- secrets and measurements ------------------------------------------------------------

    def read_secret(self, token: Token, *, purpose: str, audit: bool = True) -> bytes:
        """Decrypt a token's secret (REVEAL permission).

        The access is audited here, unless the caller writes its own, more specific record in
        this transaction (``audit=False``: a reveal is one record, not two).
        """
        require(self.actor, Permission.REVEAL)
        if token.state not in SECRET_STATES:
            raise Conflict(
                f"token {token.serial} is {token.state.value}; its secret is gone. For a "
                "sign-in now, issue a Temporary Access Pass in Entra"
            )
        secret = rows.load_secret(self.conn, self._data_key, token)
        if audit:
            self.audit(
                "token.secret_read",
                upn=token.upn or "",
                serial=token.serial,
                details={"purpose": purpose},
            )
        return secret

    def read_secrets(self, chosen: Sequence[Token]) -> list[bytes]:
        """Decrypt the secrets of many tokens at once (an export); unaudited: the caller writes
        one record naming them all, in this transaction."""
        require(self.actor, Permission.REVEAL)
        gone = next((token for token in chosen if token.state not in SECRET_STATES), None)
        if gone is not None:
            raise Conflict(f"token {gone.serial} is {gone.state.value}; its secret is gone")
        return rows.load_secrets(self.conn, self._data_key, chosen)

    def record_drift(
        self, token: Token, drift_seconds: int, *, measured_at: datetime | None = None
    ) -> None:
        rows.record_drift(self.conn, token, drift_seconds, measured_at or utc_now())


def _canonical_upns(upns: Sequence[str | None]) -> dict[str, str]:
    """The canonical form of each given UPN that is not canonical already (InvalidInput for an
    invalid one). Checked in bulk first: lower-case UPNs of the usual form (nearly all of an
    import) are canonical as they are, and only the others go through ``validate_upn``."""
    distinct = {upn for upn in upns if upn}
    if not distinct:
        return {}
    joined = "\n".join(distinct)
    if (
        joined == joined.lower()
        and max(map(len, distinct)) <= MAX_PLAIN_UPN_CHARS
        and all(map(PLAIN_UPN.fullmatch, distinct))
    ):
        return {}
    changed = {raw: validate_upn(raw) for raw in distinct}
    return {raw: upn for raw, upn in changed.items() if raw != upn}


def _check_batch(items: TokenColumns) -> None:
    """Blank or repeated serials, and one secret on two tokens, before anything is written.

    Set sizes first (cheap for 100,000 tokens); the culprits are looked for only on failure.
    """
    serials = items.serials
    if not all(map(str.strip, serials)):
        raise InvalidInput("a token in this batch has no serial number; give every token one")
    # Stored values are exported unchanged (Entra CSV), so one a spreadsheet would run as a
    # formula never gets in: no legitimate serial, manufacturer or model starts like that. The
    # first characters are gathered first (cheap for 100,000 tokens); only unusual ones are
    # looked at closely.
    firsts = {serial[:1] for serial in serials} | {m[:1] for m in items.manufacturers}
    firsts |= {model[:1] for model in items.models}
    if not all(first.isascii() and first.isalnum() for first in firsts):
        _refuse_formulas(items)
    if len(set(serials)) != len(serials):
        seen: set[str] = set()
        for serial in serials:
            if serial in seen:
                raise Conflict(f"serial {serial} appears twice in this batch; remove one")
            seen.add(serial)
    secrets = [secret for secret in items.secrets if secret is not None]
    if len(set(secrets)) != len(secrets):
        owner: dict[bytes, str] = {}
        for serial, secret in zip(serials, items.secrets, strict=True):
            if secret is not None:
                other = owner.setdefault(secret, serial)
                if other != serial:
                    raise Conflict(
                        f"tokens {other} and {serial} have the same secret; every token "
                        "needs its own seed"
                    )


def _refuse_formulas(items: TokenColumns) -> None:
    for values in zip(items.serials, items.manufacturers, items.models, strict=True):
        for what, value in zip(("serial number", "manufacturer", "model"), values, strict=True):
            if starts_like_formula(value):
                raise InvalidInput(
                    f"the {what} of a token starts with =, +, -, @, a tab or a line break, "
                    "which a spreadsheet runs as a formula; remove the leading character(s)"
                )


def serials_digest(serials: Iterable[str]) -> str:
    """SHA-256 (hex) of the sorted serials, one per line: the MACed record of a bulk import
    names exactly which tokens it added, so rows pointing to it (``added_seq``) can be checked
    against it (``oathdesk audit verify`` cannot see a token row slipped in later, this can)."""
    return hashlib.sha256("\n".join(sorted(serials)).encode()).hexdigest()


def _refuse_known_secrets(new: Mapping[bytes, str], clashes: Mapping[bytes, str]) -> None:
    """One seed on two tokens across the vault: refuse, naming both serials, never the seed."""
    if not clashes:
        return
    pairs = sorted((new[fp], held) for fp, held in clashes.items())
    first, held = pairs[0]
    more = f" (and {len(pairs) - 1} more)" if len(pairs) > 1 else ""
    raise Conflict(
        f"token {first} has the same secret as token {held}, already in the vault{more}; "
        "every token needs its own seed; nothing was changed"
    )


def _shipping_details(
    details: Mapping[str, Any] | None, carrier: str | None, tracking: str | None
) -> dict[str, Any]:
    merged = dict(details or {})
    if carrier:
        merged["carrier"] = carrier.strip()
    if tracking:
        merged["tracking"] = tracking.strip()
    return merged
