"""The quick read path: the reading CLI commands on a SQLite vault, without SQLAlchemy.

`oathdesk token list`, `token show`, `user show`, `user list`, `audit verify` and `drift` are
run by people and scripts many times a day; loading SQLAlchemy (and its dialects) cost them ten
to twenty times what starting Python costs (issue 15). This module answers exactly those reads
with the standard library's ``sqlite3``, on a connection that can only query, in one snapshot
(a deferred read transaction in WAL mode), and returns the same values as the ``Vault`` facade
(``models`` dataclasses, ``ChainCheck``). tests/vault/test_quickread.py runs every query here
and its ``Vault`` counterpart on the same vaults and asserts the same answers, so the SQL shape
of ``rows``/``lookup`` stays the one source of truth.

It only takes the common road: a writable SQLite file at the schema this oathdesk knows,
every key wrapped by the master key given. Anything else (PostgreSQL, a read-only mount, an
older or newer schema, a wrong key, an interrupted rotation, a damaged file) returns None from
``QuickReader.open``, and the caller opens the ``Vault``, which says what is wrong in its usual
words. So a wrong master key is refused even by commands that read no secret (an admin's
mistake to hear about at once, not at the next write): told by the public id each wrapped key
records of the master key that wrapped it, an HMAC of that key. Only a read that needs a key
(the audit check) unwraps them, all, as ``Vault.open`` does; listing metadata never loads the
cipher (a third of such a command's start-up).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from oathdesk.errors import NotFound
from oathdesk.platform_io import chmod_private
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import (
    Token,
    User,
    VaultSettings,
    token_of_columns,
    utc_moment,
    utc_now,
)
from oathdesk.vault.schema_version import schema_head

if TYPE_CHECKING:
    from oathdesk.vault.audit_verify import ChainCheck
    from oathdesk.vault.config import VaultLocation
    from oathdesk.vault.keys import MasterKey

# The columns of ``tokens`` a Token is built from, then the owner's UPN and whether the vault
# holds the secret: rows.token_query() (a join on token_secrets' key, as there).
_TOKENS_SELECT = (
    "SELECT t.id, t.serial, t.manufacturer, t.model, t.kind, t.algorithm, t.digits, t.period,"
    " t.state, t.carrier, t.tracking, t.drift_seconds, t.drift_measured_at, t.created_at,"
    " t.updated_at, t.assigned_at, t.burned_at, t.registered_at, t.shipped_at, t.delivered_at,"
    " t.purged_at, t.closed_at, t.version, u.upn, s.token_id IS NOT NULL AS has_secret"
    " FROM tokens AS t"
    " LEFT OUTER JOIN users AS u ON u.id = t.user_id"
    " LEFT OUTER JOIN token_secrets AS s ON s.token_id = t.id"
)
_USER_SELECT = "SELECT upn, display_name, phone, notes, created_at FROM users"
_SETTING_NAMES = tuple(f.name for f in fields(VaultSettings))


class VaultReader(Protocol):
    """What the reading commands ask of a vault: the ``Vault`` facade and ``QuickReader``."""

    def list_tokens(
        self, *, state: str | None = None, upn: str | None = None, drift_measured: bool = False
    ) -> list[Token]: ...

    def get_token(self, serial: str) -> Token: ...

    def get_user(self, upn: str) -> User: ...

    def list_users(self) -> list[User]: ...

    def tokens_of(self, upn: str) -> list[Token]: ...

    def settings(self) -> VaultSettings: ...

    def drift_history(self) -> dict[str, list[tuple[datetime, int]]]: ...

    def check_audit(self) -> ChainCheck: ...

    def close(self) -> None: ...


class QuickReader:
    """One snapshot of a SQLite vault, read with ``sqlite3``; ``close`` ends it."""

    def __init__(
        self, connection: sqlite3.Connection, master_key: MasterKey, wrapped: list[Any]
    ) -> None:
        self._db = connection
        self._master_key = master_key
        self._wrapped = wrapped  # (id, purpose, nonce, wrapped key), oldest first

    def __repr__(self) -> str:
        return "QuickReader(<snapshot>)"

    @classmethod
    def open(cls, location: VaultLocation, master_key: MasterKey) -> QuickReader | None:
        """The vault at ``location`` read quickly, or None: open it as a ``Vault`` instead."""
        path = location.sqlite_path
        if path is None or not _writable(str(path)):
            return None  # PostgreSQL, or a read-only mount (db.py's read-only URI handles it)
        try:
            # mode=rw never creates a file; query_only refuses any write on this connection.
            connection = sqlite3.connect(
                f"file:{quote(str(path))}?mode=rw", uri=True, isolation_level=None, timeout=30
            )
        except sqlite3.Error:
            return None
        try:
            reader = cls._start(connection, str(path), master_key)
        except sqlite3.Error:
            reader = None
        except BaseException:
            connection.close()  # a key that does not open the vault: refused, as Vault.open
            raise
        if reader is None:
            connection.close()
        return reader

    @classmethod
    def _start(
        cls, connection: sqlite3.Connection, path: str, master_key: MasterKey
    ) -> QuickReader | None:
        connection.execute("PRAGMA query_only=ON")
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("BEGIN")  # deferred: the snapshot starts at the first read
        try:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None  # no schema: not a vault
        # SQLite made the WAL's shared-memory file if it was gone; it gets the vault's mode.
        for suffix in ("-wal", "-shm"):
            chmod_private(path + suffix)
        if revision is None or revision[0] != schema_head():
            return None
        stored = connection.execute(
            "SELECT id, purpose, nonce, wrapped, master_key_id FROM wrapped_keys"
            " ORDER BY created_at"
        ).fetchall()
        if not stored or any(row[4] != master_key.key_id for row in stored):
            return None  # a wrong key or an interrupted rotation: Vault.open names which
        if not {"data", "audit"} <= {row[1] for row in stored}:
            return None
        # Every key is wrapped by this master key (its public id says so): a wrong key was
        # refused above. The keys themselves are unwrapped only by a read that needs one (the
        # audit check): listing metadata spares the cipher's import and work.
        return cls(connection, master_key, [row[:4] for row in stored])

    def close(self) -> None:
        self._db.close()  # a read transaction: nothing to commit

    # -- users and tokens (rows.py, lookup.py) ---------------------------------------------

    def list_tokens(
        self, *, state: str | None = None, upn: str | None = None, drift_measured: bool = False
    ) -> list[Token]:
        """``Vault.list_tokens``: tokens by serial, each filter narrowing the query."""
        where: list[str] = []
        values: list[Any] = []
        # With a user, the other filters are checked on the user's few tokens, written so that
        # no index serves them (as rows.unindexed does for the Vault's lists).
        if state:
            where.append("t.state || '' = ?" if upn else "t.state = ?")
            values.append(TokenState(state).value)
        if drift_measured:
            measured = "t.drift_seconds + 0" if upn else "t.drift_seconds"
            where.append(f"{measured} IS NOT NULL")
        if upn:
            where.append("u.upn = ?")
            values.append(upn.strip().lower())
        sql = _TOKENS_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        return [_token(row) for row in self._db.execute(sql + " ORDER BY t.serial", values)]

    def tokens_of(self, upn: str) -> list[Token]:
        return self.list_tokens(upn=upn)

    def get_token(self, serial: str) -> Token:
        row = self._db.execute(_TOKENS_SELECT + " WHERE t.serial = ?", (serial.strip(),)).fetchone()
        if row is None:
            raise NotFound(f"no token with serial {serial}; list them with `oathdesk token list`")
        return _token(row)

    def get_user(self, upn: str) -> User:
        row = self._db.execute(_USER_SELECT + " WHERE upn = ?", (upn.strip().lower(),)).fetchone()
        if row is None:
            raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
        return _user(row)

    def list_users(self) -> list[User]:
        return [_user(row) for row in self._db.execute(_USER_SELECT + " ORDER BY upn")]

    def settings(self) -> VaultSettings:
        row = self._db.execute(
            # Column names from the dataclass's own fields, never from input.
            f"SELECT {', '.join(_SETTING_NAMES)} FROM settings WHERE id = 1"  # noqa: S608
        ).fetchone()
        defaults = VaultSettings()
        # SQLite hands booleans back as 0 and 1; the typed row has them as bools.
        values: dict[str, Any] = {
            name: bool(value) if isinstance(getattr(defaults, name), bool) else value
            for name, value in zip(_SETTING_NAMES, row, strict=True)
        }
        return VaultSettings(**values)

    def drift_history(self) -> dict[str, list[tuple[datetime, int]]]:
        """``Vault.drift_history``: every token's drift measurements, oldest first, by serial."""
        history: dict[str, list[tuple[datetime, int]]] = {}
        query = (
            "SELECT t.serial, d.measured_at, d.drift_seconds FROM drift_measurements AS d"
            " JOIN tokens AS t ON t.id = d.token_id ORDER BY d.measured_at, d.id"
        )
        for serial, measured_at, drift in self._db.execute(query):
            moment = utc_moment(measured_at)
            assert moment is not None  # NOT NULL
            history.setdefault(serial, []).append((moment, drift))
        return history

    # -- the audit chain (audit_verify.py) -------------------------------------------------

    def check_audit(self) -> ChainCheck:
        """The whole chain, checked in this reader's snapshot."""
        # Here, not at the top: only `audit verify` pays for the chain's modules.
        from oathdesk.vault.audit_records import ChainMacs
        from oathdesk.vault.audit_verify import check_driver_chain

        return check_driver_chain(ChainMacs(self._unwrapped("audit")), self._db, "sqlite")

    def _unwrapped(self, purpose: str) -> bytes:
        """The key for ``purpose``, every key unwrapped as ``Vault.open`` does (so a wrapped key
        altered in the file is refused here in the same words)."""
        keys = {}
        for key_id, found, nonce, wrapped in self._wrapped:
            keys[found] = self._master_key.unwrap(nonce, wrapped, slot=key_id)
        return keys[purpose]

    def audit_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM audit_log").fetchone()[0])


def _writable(path: str) -> bool:
    folder = os.path.dirname(path) or "."
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK)


def _user(row: Any) -> User:
    upn, display_name, phone, notes, created_at = row
    return User(upn, display_name, phone, notes, utc_moment(created_at) or utc_now())


def _token(row: Any) -> Token:
    # The tokens' columns, then the owner's UPN and whether the secret is held (_TOKENS_SELECT).
    return token_of_columns(row[:-2], row[-2], row[-1], utc_moment)
