"""Reading and writing single rows inside a caller's transaction (the facade's building blocks)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import ARRAY

from oathdesk.errors import Conflict, NotFound
from oathdesk.vault import token_counts
from oathdesk.vault.keys import DataKey
from oathdesk.vault.lifecycle import HELD, TokenState
from oathdesk.vault.models import (
    TOKEN_COLUMNS,
    Token,
    User,
    VaultSettings,
    aware,
    token_of_columns,
    utc_moment,
    utc_now,
)
from oathdesk.vault.schema import (
    audit_log,
    drift_measurements,
    settings,
    token_secrets,
    tokens,
    users,
)

# SQLite allows 32,766 bound parameters per statement; PostgreSQL 65,535. Stay well below.
IN_CHUNK = 500

# Statements on the reveal path are built once, with bound parameters: SQLAlchemy then reuses
# their compiled form and cache key instead of building and hashing a new statement per call
# (that was a third of a reveal's time in the vault; see docs/benchmarks.md).


def user_id(conn: sa.Connection, upn: str) -> str | None:
    found: str | None = conn.execute(sa.select(users.c.id).where(users.c.upn == upn)).scalar()
    return found


def require_user_id(conn: sa.Connection, upn: str) -> str:
    found = user_id(conn, upn)
    if found is None:
        raise NotFound(f"no user {upn}; add them with `oathdesk user add {upn}`")
    return found


_USER_BY_UPN = sa.select(users).where(users.c.upn == sa.bindparam("upn"))


def find_user(conn: sa.Connection, upn: str) -> User | None:
    row = conn.execute(_USER_BY_UPN, {"upn": upn}).first()
    return None if row is None else user_from_row(row)


def user_from_row(row: sa.Row[Any]) -> User:
    return User(row.upn, row.display_name, row.phone, row.notes, aware(row.created_at) or utc_now())


def user_ids(conn: sa.Connection, upns: Sequence[str]) -> dict[str, str]:
    """The id of each of ``upns`` that exists."""
    found: dict[str, str] = {}
    for start in range(0, len(upns), IN_CHUNK):
        chunk = upns[start : start + IN_CHUNK]
        query = sa.select(users.c.upn, users.c.id).where(users.c.upn.in_(chunk))
        found.update((upn, found_id) for upn, found_id in conn.execute(query))
    return found


def held_token_counts(conn: sa.Connection, owner_ids: Sequence[str]) -> dict[str, int]:
    """How many tokens each owner holds or is about to hold (absent: none).

    The owners' tokens are read by owner and their states counted here: with the state in
    the query too, SQLite (no statistics) read every token in a held state for each chunk of
    owners (the (state, ...) index looked more selective than 500 owners), so re-importing a
    file of 100,000 known users took 5 s, and more as the vault grew."""
    counts: dict[str, int] = {}
    held = {s.value for s in HELD}
    for start in range(0, len(owner_ids), IN_CHUNK):
        chunk = owner_ids[start : start + IN_CHUNK]
        query = sa.select(tokens.c.user_id, tokens.c.state).where(tokens.c.user_id.in_(chunk))
        for owner, state in conn.execute(query):
            if state in held:
                counts[owner] = counts.get(owner, 0) + 1
    return counts


def held_token_count(conn: sa.Connection, owner_id: str) -> int:
    """Tokens a user holds or is about to hold (they count against the per-user limit)."""
    query = (
        sa.select(sa.func.count())
        .select_from(tokens)
        .where(tokens.c.user_id == owner_id, tokens.c.state.in_([s.value for s in HELD]))
    )
    return int(conn.execute(query).scalar_one())


def existing_serials(conn: sa.Connection, serials: Iterable[str]) -> set[str]:
    wanted = list(serials)
    found: set[str] = set()
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        found.update(
            conn.execute(sa.select(tokens.c.serial).where(tokens.c.serial.in_(chunk))).scalars()
        )
    return found


def token_query() -> sa.Select[Any]:
    # A join on token_secrets' key, not EXISTS: PostgreSQL ran EXISTS as a hashed subplan that
    # read every secret's row to answer a page of 20 tokens (tests/vault/test_paging.py).
    has_secret = token_secrets.c.token_id.is_not(None)
    return (
        sa.select(tokens, users.c.upn, has_secret.label("has_secret"))
        .outerjoin(users, users.c.id == tokens.c.user_id)
        .outerjoin(token_secrets, token_secrets.c.token_id == tokens.c.id)
    )


_TOKENS_OF_UPN = token_query().where(users.c.upn == sa.bindparam("upn")).order_by(tokens.c.serial)


def tokens_of(conn: sa.Connection, upn: str) -> list[Token]:
    """The tokens of the user ``upn`` (already normalised), by serial."""
    return [token_from_row(row) for row in conn.execute(_TOKENS_OF_UPN, {"upn": upn})]


def tokens_for_entra(
    conn: sa.Connection, serials: Sequence[str], states: Iterable[TokenState]
) -> list[Token]:
    """The tokens with one of ``serials`` or in one of ``states`` (what `entra sync` compares
    with Entra's inventory: the serials Entra lists, and every token the vault says is there),
    without reading the rest of the vault."""
    found: dict[str, Token] = {}
    by_state = token_query().where(tokens.c.state.in_(sorted(s.value for s in states)))
    found.update((t.serial, t) for t in map(token_from_row, conn.execute(by_state)))
    wanted = [serial for serial in dict.fromkeys(serials) if serial not in found]
    for start in range(0, len(wanted), IN_CHUNK):
        query = token_query().where(tokens.c.serial.in_(wanted[start : start + IN_CHUNK]))
        found.update((t.serial, t) for t in map(token_from_row, conn.execute(query)))
    return list(found.values())


def find_token(conn: sa.Connection, serial: str) -> Token:
    row = conn.execute(token_query().where(tokens.c.serial == serial.strip())).first()
    if row is None:
        raise NotFound(f"no token with serial {serial}; list them with `oathdesk token list`")
    return token_from_row(row)


def token_from_row(row: sa.Row[Any]) -> Token:
    return _token(row, row.upn, bool(row.has_secret))


def unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``column`` written so that no index serves a condition on it (``|| ''`` for text,
    ``+ 0`` for a number; SQLite's documented way, and PostgreSQL's planner alike), for a
    condition checked on rows read through a narrower index: a user's few tokens or records.
    A SQLite vault has no statistics, and without them SQLite read the (state, serial) index
    in page order to spare a sort, every token of the state before the user's few."""
    if isinstance(column.type, sa.Integer):
        return column + 0
    return column.concat("")


def token_conditions(
    *,
    state: str | None = None,
    states: Iterable[str] | None = None,
    kind: str | None = None,
    drift_measured: bool = False,
    by_owner: bool = False,
) -> list[sa.ColumnElement[bool]]:
    """The token filters a list narrows by (``states``: any of these; ``drift_measured``: only
    tokens whose drift was measured); ``by_owner``: the list is one user's, read by owner, so
    these are checked on the user's tokens (``unindexed``)."""

    def column(name: str) -> sa.ColumnElement[Any]:
        return unindexed(tokens.c[name]) if by_owner else tokens.c[name]

    conditions: list[sa.ColumnElement[bool]] = []
    if state:
        conditions.append(column("state") == state)
    if states is not None:
        conditions.append(column("state").in_(sorted(states)))
    if kind is not None:
        conditions.append(column("kind") == kind)
    if drift_measured:
        conditions.append(column("drift_seconds").is_not(None))
    return conditions


def among(conn: sa.Connection, column: sa.ColumnElement[str], name: str) -> sa.ColumnElement[bool]:
    """``column`` is one of the strings of the list bound as ``name``. On PostgreSQL one array
    parameter: an IN list is a parameter per key, which SQLAlchemy expanded and psycopg
    re-parsed into a new statement text on every call (a third of a 100-item page's time),
    where one text is converted once and prepared by the server. The array is unnested, not
    compared with ``= ANY``: a prepared statement runs a generic plan, in which ``= ANY`` of a
    parameter is a linear search of the array for every row the scan passes (the drift page's
    history: 3.6 ms, against 0.2 ms for the same plan with the array written in); a set of
    keys is joined by hash or looked up by index. SQLite takes the list as an IN list (no
    arrays there)."""
    if conn.dialect.name == "postgresql":
        keys = sa.func.unnest(sa.bindparam(name, type_=ARRAY(sa.String)))
        return column.in_(sa.select(keys))
    return column.in_(sa.bindparam(name, expanding=True))


# The owner's UPN and whether the vault holds the secret, of tokens by id.
_EXTRAS = (
    sa.select(tokens.c.id, users.c.upn, token_secrets.c.token_id.is_not(None))
    .select_from(tokens)
    .outerjoin(users, users.c.id == tokens.c.user_id)
    .outerjoin(token_secrets, token_secrets.c.token_id == tokens.c.id)
)


def tokens_of_rows(conn: sa.Connection, found: Sequence[sa.Row[Any]]) -> list[Token]:
    """The tokens of rows read from ``tokens`` alone (a page), with each owner's UPN and whether
    the vault holds its secret: one look-up of the page's rows by key, whatever their number.
    Joined into the page's query instead, PostgreSQL may hash-join every user and secret to
    show twenty tokens."""
    token_ids = [row.id for row in found]
    query = _EXTRAS.where(among(conn, tokens.c.id, "ids"))
    extras: dict[str, tuple[str | None, bool]] = {}
    for start in range(0, len(token_ids), IN_CHUNK):
        chunk = {"ids": token_ids[start : start + IN_CHUNK]}
        extras.update((id_, (upn, bool(held))) for id_, upn, held in conn.execute(query, chunk))
    if not found:
        return []
    columns_of = _token_columns(found[0])
    made = []
    for row in found:
        columns = columns_of(row)  # the id first
        upn, has_secret = extras.get(columns[0], (None, False))
        made.append(token_of_columns(columns, upn, has_secret, utc_moment))
    return made


def token_page_query(conn: sa.Connection) -> sa.Select[Any]:
    """What a page of tokens selects (the caller adds filter, order and limit); its rows
    become tokens by ``tokens_of_page``.

    On SQLite each row brings its owner's UPN and whether the vault holds its secret, by
    subqueries in the select list (run for the rows the page returns, by key), and the times
    as the stored text (``utc_moment`` reads it in one call, where SQLAlchemy's DateTime and
    then setting the zone took twice as long): reading owners and secrets by key afterwards
    was a second statement and a third of a 100-token page's time. On PostgreSQL the page is
    ``tokens`` alone and ``tokens_of_rows`` reads the rest by key: there the planner may
    answer such a subquery by scanning a small users table once per row."""
    return _SQLITE_PAGE if conn.dialect.name == "sqlite" else _PAGE


def _sqlite_page_query() -> sa.Select[Any]:
    columns: list[sa.ColumnElement[Any]] = [
        sa.type_coerce(column, sa.String).label(column.name)
        if isinstance(column.type, sa.DateTime)
        else column
        for column in tokens.c
    ]
    owner = sa.select(users.c.upn).where(users.c.id == tokens.c.user_id).scalar_subquery()
    held = sa.select(sa.literal(1)).where(token_secrets.c.token_id == tokens.c.id)
    return sa.select(*columns, owner.label("upn"), held.scalar_subquery().label("has_secret"))


_PAGE = sa.select(tokens)
_SQLITE_PAGE = _sqlite_page_query()


def tokens_of_page(conn: sa.Connection, found: Sequence[sa.Row[Any]]) -> list[Token]:
    """The tokens of rows read by ``token_page_query``."""
    if conn.dialect.name != "sqlite":
        return tokens_of_rows(conn, found)
    if not found:
        return []
    columns_of = _token_columns(found[0])
    names = list(found[0]._fields)
    upn_at, held_at = names.index("upn"), names.index("has_secret")
    return [
        token_of_columns(columns_of(row), row[upn_at], row[held_at] is not None, utc_moment)
        for row in found
    ]


def _token_columns(row: sa.Row[Any]) -> Callable[[sa.Row[Any]], tuple[Any, ...]]:
    """What reads a Token's columns by position off rows shaped like ``row`` (one result's
    rows all are): a Row's attribute look-up costs twelve times its index, and at 23 a token
    it was most of the time a page of 100 tokens took to build."""
    names = list(row._fields)
    return operator.itemgetter(*(names.index(name) for name in TOKEN_COLUMNS))


def _token(row: Any, upn: str | None, has_secret: bool) -> Token:
    columns = tuple(getattr(row, name) for name in TOKEN_COLUMNS)
    return token_of_columns(columns, upn, has_secret, utc_moment)


def update_token(conn: sa.Connection, token: Token, **values: Any) -> None:
    """Optimistic locking: the update applies only to the version that was read.

    Of two operators who read the same version, the second one's update matches no row and is
    refused, instead of silently overwriting the first one's change.
    """
    result = conn.execute(
        tokens.update()
        .where(tokens.c.id == token.id, tokens.c.version == token.version)
        .values(**values, updated_at=utc_now(), version=token.version + 1)
    )
    if result.rowcount != 1:
        raise Conflict(f"token {token.serial} changed meanwhile; reload it and try again")
    if "state" in values:
        token_counts.record_moves(conn, [(token.state.value, str(values["state"]))])


def store_secret(conn: sa.Connection, data_key: DataKey, token: Token, secret: bytes) -> None:
    nonce, ciphertext = data_key.encrypt(secret, token_id=token.id, serial=token.serial)
    conn.execute(
        token_secrets.insert().values(
            token_id=token.id,
            key_id=data_key.key_id,
            nonce=nonce,
            ciphertext=ciphertext,
            fingerprint=data_key.fingerprint(secret),
        )
    )


_SECRET_OF = sa.select(token_secrets.c.nonce, token_secrets.c.ciphertext).where(
    token_secrets.c.token_id == sa.bindparam("token_id")
)


def load_secret(conn: sa.Connection, data_key: DataKey, token: Token) -> bytes:
    row = conn.execute(_SECRET_OF, {"token_id": token.id}).first()
    if row is None:
        raise Conflict(f"the vault holds no secret for token {token.serial}")
    return data_key.decrypt(row.nonce, row.ciphertext, token_id=token.id, serial=token.serial)


def load_secrets(conn: sa.Connection, data_key: DataKey, chosen: Sequence[Token]) -> list[bytes]:
    """The secrets of ``chosen``, in order: a query per ``IN_CHUNK`` tokens, not one each."""
    found: dict[str, tuple[bytes, bytes]] = {}
    for start in range(0, len(chosen), IN_CHUNK):
        ids = [token.id for token in chosen[start : start + IN_CHUNK]]
        query = sa.select(
            token_secrets.c.token_id, token_secrets.c.nonce, token_secrets.c.ciphertext
        ).where(token_secrets.c.token_id.in_(ids))
        found.update((row.token_id, (row.nonce, row.ciphertext)) for row in conn.execute(query))
    secrets = []
    for token in chosen:
        sealed = found.get(token.id)
        if sealed is None:
            raise Conflict(f"the vault holds no secret for token {token.serial}")
        secrets.append(data_key.decrypt(*sealed, token_id=token.id, serial=token.serial))
    return secrets


def erase_secret(conn: sa.Connection, token_id: str) -> bool:
    """Overwrite the ciphertext with zeros, then delete its row; True if there was one.

    The overwrite means that even where a deleted row's bytes linger (PostgreSQL until VACUUM,
    a SQLite page not yet reused), the newest version of the row holds no ciphertext; SQLite's
    secure_delete then zeroes the freed space.
    """
    row = conn.execute(
        sa.select(token_secrets.c.ciphertext).where(token_secrets.c.token_id == token_id)
    ).first()
    if row is None:
        return False
    conn.execute(
        token_secrets.update()
        .where(token_secrets.c.token_id == token_id)
        .values(ciphertext=bytes(len(row.ciphertext)), nonce=bytes(12), fingerprint=None)
    )
    conn.execute(token_secrets.delete().where(token_secrets.c.token_id == token_id))
    return True


_SETTINGS = sa.select(settings).where(settings.c.id == 1)


def read_settings(conn: sa.Connection) -> VaultSettings:
    row = conn.execute(_SETTINGS).one()
    return VaultSettings(**{f.name: getattr(row, f.name) for f in fields(VaultSettings)})


def audit_time(moment: datetime) -> str:
    """The stored form of an audit time (ISO 8601 in UTC, microseconds): it sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def count_audit(
    conn: sa.Connection,
    *,
    action: str,
    since: datetime,
    actor: str | None = None,
    upn: str | None = None,
) -> int:
    """How many records of ``action`` since a time (rate limits count audited events)."""
    query = _COUNT_AUDIT[bool(actor), bool(upn)]
    parameters = {"action": action, "since": audit_time(since), "actor": actor, "upn": upn}
    return int(conn.execute(query, parameters).scalar_one())


def _count_audit_query(by_actor: bool, by_upn: bool) -> sa.Select[Any]:
    query = (
        sa.select(sa.func.count())
        .select_from(audit_log)
        .where(audit_log.c.action == sa.bindparam("action"))
        .where(audit_log.c.at >= sa.bindparam("since"))
    )
    if by_actor:
        query = query.where(audit_log.c.actor == sa.bindparam("actor"))
    if by_upn:
        query = query.where(audit_log.c.upn == sa.bindparam("upn"))
    return query


_COUNT_AUDIT = {(a, u): _count_audit_query(a, u) for a in (False, True) for u in (False, True)}


def record_drift(
    conn: sa.Connection, token: Token, drift_seconds: int, measured_at: datetime
) -> None:
    """Keep a clock-drift measurement (the drift rate is computed from the history)."""
    conn.execute(
        drift_measurements.insert().values(
            token_id=token.id, measured_at=measured_at, drift_seconds=drift_seconds
        )
    )
    conn.execute(
        tokens.update()
        .where(tokens.c.id == token.id)
        .values(drift_seconds=drift_seconds, drift_measured_at=measured_at)
    )
