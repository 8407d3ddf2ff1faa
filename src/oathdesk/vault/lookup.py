"""Read-only look-ups for the consoles and the API: partial-match search, and a page at a time of
every list that grows with the vault (tokens, users, the audit log, measured tokens).

The facade in ``vault.py`` answers exact questions (this user, this token, the audit records
for an export); these answer an operator typing part of a name or paging through a list. Each
page is read in SQL with keyset paging (``paging``): at most limit + 1 rows, whatever the page.
Nothing here writes, and nothing here returns a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from oathdesk.vault import db, rows, search_index
from oathdesk.vault.audit import rows_as_dicts
from oathdesk.vault.audit_filter import AuditFilter, audit_source, normalised
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import Token, User, utc_moment
from oathdesk.vault.paging import DEFAULT_LIMIT, KeyValue, Order, Page, check_limit, read_page
from oathdesk.vault.schema import audit_head, audit_log, drift_measurements, tokens, users
from oathdesk.vault.vault import Vault

BY_SERIAL = Order((tokens.c.serial,))  # serial and UPN are unique: their own tie-break
BY_UPN = Order((users.c.upn,))
NEWEST_FIRST = Order((audit_log.c.seq,), descending=True)
# Records filtered by time alone (or with an action): newest first by time, from the (at, seq)
# or (action, at) index, so a page reads its own rows wherever the range lies in the log.
LATEST_FIRST = Order((audit_log.c.at, audit_log.c.seq), descending=True)


# Rows a search reads in key order, testing each, when the index finds too many to sort.
PROBE_ROWS = 2000


def search_users(
    vault: Vault, text: str, *, cursor: str | None = None, limit: int = 50
) -> Page[User]:
    """Users whose UPN or display name contains ``text`` (any case; at least
    ``search_index.MIN_TRIGRAM`` characters: the service refuses shorter ones), by UPN."""
    with db.reading(vault.engine) as conn, search_index.planned_each(conn):
        found = _search(conn, vault, users.c.upn, "search.users", text, cursor, limit)
        return Page([rows.user_from_row(row) for row in found.items], found.next_cursor)


def search_tokens(
    vault: Vault, text: str, *, cursor: str | None = None, limit: int = 50
) -> Page[Token]:
    """Tokens whose serial number or tracking reference contains ``text``, by serial."""
    with db.reading(vault.engine) as conn, search_index.planned_each(conn):
        found = _search(conn, vault, tokens.c.serial, "search.tokens", text, cursor, limit)
        return Page(rows.tokens_of_rows(conn, found.items), found.next_cursor)


def _search(
    conn: sa.Connection,
    vault: Vault,
    key: sa.Column[str],
    listing: str,
    text: str,
    cursor: str | None,
    limit: int,
) -> Page[sa.Row[Any]]:
    """A page of the rows of ``key``'s table that contain ``text``, in ``key`` order (unique).

    When the trigram index names at most ``search_index.FEW`` rows, those are read, sorted and
    cut to the page. When it names more (the company's domain: every user), the next
    PROBE_ROWS rows in key order are tested by LIKE, and if they hold a page it is the page,
    read from the first rows where the index would hand over every matching one to be sorted.
    Otherwise (many rows, but not near here in key order: ``user05`` among 100,000
    ``user0NNNNN``) the index's rows are sorted after all: as dear as they are many."""
    table = key.table
    assert isinstance(table, sa.Table)
    order = Order((key,))
    wanted = {"q": text}

    def page(*condition: sa.ColumnElement[bool] | sa.TextClause) -> Page[sa.Row[Any]]:
        return read_page(
            conn,
            sa.select(table).where(*condition),
            order=order,
            cursors=vault.cursors,
            listing=listing,
            wanted=wanted,
            cursor=cursor,
            limit=limit,
            key_of=lambda row: (row._mapping[key.name],),
            item_of=lambda row: row,
        )

    check_limit(limit)
    indexed = search_index.substring_condition(conn, table, text)
    if search_index.few_match(conn, table, text):
        return page(indexed)
    after: sa.ColumnElement[bool] = sa.true()
    if cursor:
        after = order.after(vault.cursors.open(cursor, listing, wanted, 1))
    ahead = sa.select(key).where(after).order_by(key).offset(PROBE_ROWS - 1).limit(1)
    bound = conn.execute(ahead).scalar()
    like = search_index.like_condition(table, text)
    if bound is None:  # fewer rows than that left: LIKE reads them all
        return page(like)
    probed = page(like, key <= bound)
    if probed.next_cursor is not None:
        return probed
    return page(indexed)


def token_page(
    vault: Vault,
    *,
    state: TokenState | None = None,
    upn: str | None = None,
    kind: TokenKind | None = None,
    drift_measured: bool = False,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[Token]:
    """Tokens by serial, filtered (``drift_measured``: only those whose drift was measured)."""
    owner = upn.strip().lower() if upn else None
    with db.reading(vault.engine) as conn:
        return _token_page(conn, vault, state, owner, kind, drift_measured, cursor, limit)


def _token_page(
    conn: sa.Connection,
    vault: Vault,
    state: TokenState | None,
    owner: str | None,
    kind: TokenKind | None,
    drift_measured: bool,
    cursor: str | None,
    limit: int,
) -> Page[Token]:
    # A user holds a few tokens (Entra takes five): with an owner, the other filters are
    # checked on those (rows.unindexed).
    query = rows.token_page_query(conn).where(
        *rows.token_conditions(
            state=state.value if state else None,
            kind=kind.value if kind else None,
            drift_measured=drift_measured,
            by_owner=bool(owner),
        )
    )
    if owner:
        owner_id = sa.select(users.c.id).where(users.c.upn == owner).scalar_subquery()
        query = query.where(tokens.c.user_id == owner_id)
    wanted = {
        "state": state.value if state else None,
        "kind": kind.value if kind else None,
        "upn": owner,
        "drift_measured": drift_measured or None,
    }
    found = read_page(
        conn,
        query,
        order=BY_SERIAL,
        cursors=vault.cursors,
        listing="tokens",
        wanted=wanted,
        cursor=cursor,
        limit=limit,
        key_of=lambda row: (row.serial,),
        item_of=lambda row: row,
    )
    return Page(rows.tokens_of_page(conn, found.items), found.next_cursor)


def drift_history(vault: Vault, shown: Sequence[Token]) -> dict[str, list[tuple[datetime, int]]]:
    """The drift measurements of ``shown`` (a page of tokens), oldest first, by serial: only
    those tokens' rows are read."""
    serial_of = {token.id: token.serial for token in shown}
    history: dict[str, list[tuple[datetime, int]]] = {}
    ids = sorted(serial_of)
    with db.reading(vault.engine) as conn:
        query = _history_query(conn)
        for start in range(0, len(ids), rows.IN_CHUNK):
            chunk = {"ids": ids[start : start + rows.IN_CHUNK]}
            for token_id, measured_at, drift in conn.execute(query, chunk):
                moment = utc_moment(measured_at)
                assert moment is not None  # NOT NULL
                history.setdefault(serial_of[token_id], []).append((moment, drift))
    return history


_HISTORY_QUERIES: dict[str, sa.Select[Any]] = {}


def _history_query(conn: sa.Connection) -> sa.Select[Any]:
    """The measurements of the tokens bound as ``ids``, built once per database. On SQLite the
    times come as the stored text, which ``utc_moment`` reads in one call (as a token page)."""
    dialect = conn.dialect.name
    if dialect not in _HISTORY_QUERIES:
        measured_at: sa.ColumnElement[Any] = drift_measurements.c.measured_at
        if dialect == "sqlite":
            measured_at = sa.type_coerce(measured_at, sa.String)
        _HISTORY_QUERIES[dialect] = (
            sa.select(
                drift_measurements.c.token_id, measured_at, drift_measurements.c.drift_seconds
            )
            .where(rows.among(conn, drift_measurements.c.token_id, "ids"))
            .order_by(drift_measurements.c.measured_at, drift_measurements.c.id)
        )
    return _HISTORY_QUERIES[dialect]


def user_page(vault: Vault, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> Page[User]:
    """Users by UPN."""
    with db.reading(vault.engine) as conn:
        return read_page(
            conn,
            sa.select(users),
            order=BY_UPN,
            cursors=vault.cursors,
            listing="users",
            wanted={},
            cursor=cursor,
            limit=limit,
            key_of=lambda row: (row.upn,),
            item_of=rows.user_from_row,
        )


def _filter_key(wanted: AuditFilter) -> dict[str, str | datetime | None]:
    """The (normalised) filter as the cursor binds it."""
    return {
        "action": wanted.action,
        "upn": wanted.upn,
        "serial": wanted.serial,
        "actor": wanted.actor,
        "since": wanted.since,
        "until": wanted.until,
    }


def audit_page(
    vault: Vault, wanted: AuditFilter, *, cursor: str | None = None, limit: int = 50
) -> Page[dict[str, Any]]:
    """One page of the audit records matching ``wanted``, newest first (by sequence number,
    unique; by time then sequence number when a time range filters it and neither a user nor a
    token does: read from the time index, alone or after the action's, the operator's or
    both): the filter, the order and the page are all done in SQL."""
    wanted = normalised(wanted)
    by_time = bool(wanted.since or wanted.until) and not (wanted.upn or wanted.serial)
    with db.reading(vault.engine) as conn:
        source = audit_source(conn, wanted)
        seq = source.selected_columns.seq
        if by_time:
            order = LATEST_FIRST
        else:  # the serial's records come from a merge: order by its column
            order = NEWEST_FIRST if seq is audit_log.c.seq else Order((seq,), descending=True)
        return read_page(
            conn,
            source,
            order=order,
            cursors=vault.cursors,
            listing="audit.by_time" if by_time else "audit",
            wanted=_filter_key(wanted),
            cursor=cursor,
            limit=limit,
            key_of=(lambda row: (row.at, row.seq)) if by_time else (lambda row: (row.seq,)),
            item_of=lambda row: rows_as_dicts([row])[0],
        )


def audit_log_size(vault: Vault) -> int:
    """How many records the log holds: the head's sequence number (they start at 1, without
    gaps), read from one row instead of counting them all."""
    with db.reading(vault.engine) as conn:
        return int(conn.execute(sa.select(audit_head.c.seq)).scalar() or 0)


def audit_about_page(
    vault: Vault,
    upn: str,
    serials: Sequence[str],
    *,
    cursor: str | None = None,
    limit: int = 20,
) -> Page[dict[str, Any]]:
    """A page of the records about a user or any of their tokens, newest first: those naming
    them, and the records that created the user and added the tokens, which for an import name
    no single UPN (one record speaks for the batch; the rows point to it: ``added_seq``).

    Read by ``_about_query``'s statement. The cursor is bound to the user only: their serials
    are looked up again for each page."""
    owner = upn.strip().lower()
    wanted = {"upn": owner}
    check_limit(limit)
    last: KeyValue | None = None
    if cursor:
        (last,) = vault.cursors.open(cursor, "audit.about", wanted, 1)
    distinct = sorted(set(serials))
    values: dict[str, Any] = {"upn": owner, "last": last}
    values.update((f"serial_{i}", serial) for i, serial in enumerate(distinct))
    with db.reading(vault.engine) as conn:
        # The pointers are read first (a few, from the unique indexes on upn and serial) and
        # their records fetched by primary key: as a subquery in the union's OR, the log was
        # walked again.
        pointed = _added_seqs(conn, owner, distinct)
        query = _about_query(len(distinct), last is not None, bool(pointed), limit)
        found = conn.execute(query, {**values, "pointed": pointed}).fetchall()
    shown = found[:limit]
    following = None
    if len(found) > limit and shown:
        following = vault.cursors.make("audit.about", wanted, (shown[-1].seq,))
    return Page(rows_as_dicts(shown), following)


@lru_cache(maxsize=256)
def _about_query(serials: int, after: bool, pointed: bool, limit: int) -> sa.Select[Any]:
    """``audit_about_page``'s statement for a user with ``serials`` tokens, its values bound
    (``upn``, ``serial_0``...; ``last``: the cursor's sequence number; ``pointed``: the records
    that added them). Built once per shape: building its dozen subqueries and their columns
    took a user's page longer than running it.

    One branch per column value, each read newest first from its own index ((upn, seq) or
    (serial, seq)) and cut at limit + 1, then merged: an OR of them let PostgreSQL walk the
    whole log backwards by sequence number looking for a user's few records."""
    older = [audit_log.c.seq < sa.bindparam("last")] if after else []
    about = [
        (audit_log.c.upn, "upn"),
        *((audit_log.c.serial, f"serial_{i}") for i in range(serials)),
    ]
    branches = []
    for column, name in about:
        value = sa.bindparam(name, type_=sa.String)
        branches.append(
            sa.select(
                sa.select(audit_log)
                # Equality written as a range, ordered by (column, seq): the order of the
                # branch's index. With ``column = value ORDER BY seq`` PostgreSQL walks the
                # primary key backwards, testing each record, when it takes the value to be
                # common: every newer record read when that user's records are old (and with
                # the equality it drops the constant column from the order, so ordering by it
                # too does not help).
                .where(column >= value, column <= value, *older)
                .order_by(column.desc(), audit_log.c.seq.desc())
                .limit(limit + 1)
                .subquery()
            )
        )
    if pointed:
        branches.append(
            sa.select(
                sa.select(audit_log)
                .where(audit_log.c.seq.in_(sa.bindparam("pointed", expanding=True)), *older)
                .order_by(audit_log.c.seq.desc())
                .limit(limit + 1)
                .subquery()
            )
        )
    # The branches' rows themselves, merged (a record about the user and their token once):
    # with ``seq IN (branches)`` PostgreSQL walked the log backwards again, testing each record.
    matched = sa.union(*branches).subquery()
    return sa.select(matched).order_by(matched.c.seq.desc()).limit(limit + 1)


def _added_seqs(conn: sa.Connection, upn: str, serials: Sequence[str]) -> list[int]:
    """The records that created the user and added the tokens (a token's import), by number."""
    created = sa.select(users.c.added_seq).where(users.c.upn == upn)
    added = sa.select(tokens.c.added_seq).where(tokens.c.serial.in_(sorted(set(serials))))
    found = conn.execute(sa.union(created, added) if serials else created).scalars()
    return sorted({int(seq) for seq in found if seq is not None})


def recent_audit_about(
    vault: Vault, upn: str, serials: Sequence[str], *, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest records about a user or any of their tokens, newest first."""
    return audit_about_page(vault, upn, serials, limit=limit).items


def audit_actions(vault: Vault) -> list[str]:
    """The distinct actions in the log (the audit viewer's filter choices).

    A loose index scan: one probe of the (action, at) index per action, instead of DISTINCT over
    every record (which grows with the log, on every view of the audit page)."""
    with db.reading(vault.engine) as conn:
        return [action for action in conn.execute(_DISTINCT_ACTIONS).scalars() if action]


_DISTINCT_ACTIONS = sa.text(
    "WITH RECURSIVE found(action) AS ("
    " SELECT MIN(action) FROM audit_log"
    " UNION ALL"
    " SELECT (SELECT MIN(action) FROM audit_log WHERE action > found.action)"
    " FROM found WHERE found.action IS NOT NULL"
    ") SELECT action FROM found WHERE action IS NOT NULL"
)
