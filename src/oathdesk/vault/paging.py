"""Keyset paging: one page type and one cursor type for every list in the vault.

A list is read in a stable total order (its sort key ends with a unique column), a page at a time:
``WHERE (sort key) > (last row's) ORDER BY sort key LIMIT n + 1`` (the extra row only says whether
there is a next page), so a page costs the same on the first page as on the thousandth, and rows
added or removed meanwhile never shift the rows of later pages.

The cursor carries the last row's sort key, bound by an HMAC to the list's name and its filter:
a cursor taken from one list or filter and sent with another is refused, not silently applied.
The HMAC key is derived (HKDF) from the vault's audit key, so each vault's cursors are its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from oathdesk.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
TAG_BYTES = 12  # 96 bits: forging one needs 2**96 tries against a server that answers each
CURSOR_PURPOSE = b"oathdesk page cursor"

# A sort key's values: text, whole numbers, and times (encoded as tagged ISO 8601 text).
KeyValue = str | int | datetime | None
FilterValue = str | int | bool | datetime | None


class CursorInvalid(InvalidInput):
    """A cursor that was altered, or that belongs to another list or filter."""

    def __init__(self) -> None:
        super().__init__(
            "this page link is not valid for this list; start again from the first page"
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of a list; ``next_cursor`` fetches the next one (None: this is the last)."""

    items: list[T]
    next_cursor: str | None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}; page with the cursor")
    return limit


def _plain(value: FilterValue | KeyValue) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def _restore(value: Any) -> KeyValue:
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], str):
        try:
            return datetime.fromisoformat(value["t"])
        except ValueError:
            raise CursorInvalid from None
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
        return value
    raise CursorInvalid


def normalised(wanted: Mapping[str, FilterValue]) -> str:
    """The filter as canonical text: empty values dropped, names sorted."""
    kept = {name: _plain(value) for name, value in wanted.items() if value not in (None, "")}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Makes and opens the cursors of one vault."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Cursors(<key hidden>)"

    def _tag(self, listing: str, wanted: Mapping[str, FilterValue], body: bytes) -> bytes:
        bound = b"\x00".join((listing.encode(), normalised(wanted).encode(), body))
        return hmac.digest(self._key, bound, hashlib.sha256)[:TAG_BYTES]

    def make(self, listing: str, wanted: Mapping[str, FilterValue], key: Sequence[KeyValue]) -> str:
        """The cursor that continues ``listing`` under ``wanted`` after the row with ``key``."""
        body = json.dumps([_plain(v) for v in key], separators=(",", ":")).encode()
        return _b64(body + self._tag(listing, wanted, body))

    def open(
        self, cursor: str, listing: str, wanted: Mapping[str, FilterValue], width: int
    ) -> tuple[KeyValue, ...]:
        """The sort key ``cursor`` holds, if it was made for this list and filter."""
        try:
            raw = _unb64(cursor.strip())
        except (binascii.Error, ValueError):
            raise CursorInvalid from None
        body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if len(raw) <= TAG_BYTES or not hmac.compare_digest(tag, self._tag(listing, wanted, body)):
            raise CursorInvalid
        try:
            values = json.loads(body)
        except ValueError:
            raise CursorInvalid from None
        if not isinstance(values, list) or len(values) != width:
            raise CursorInvalid
        return tuple(_restore(value) for value in values)


@dataclass(frozen=True)
class Order:
    """A list's order: columns, all ascending or all descending, the last one unique."""

    columns: tuple[sa.ColumnElement[Any], ...]
    descending: bool = False

    def clauses(self) -> list[sa.ColumnElement[Any]]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, key: Sequence[KeyValue]) -> sa.ColumnElement[bool]:
        """Rows after ``key`` in this order (a row-value comparison: SQLite and PostgreSQL
        both answer it from an index on the same columns)."""
        if len(self.columns) == 1:
            column = self.columns[0]
            return column < key[0] if self.descending else column > key[0]
        left = sa.tuple_(*self.columns)
        right = sa.tuple_(*(sa.literal(v, c.type) for c, v in zip(self.columns, key, strict=True)))
        return left < right if self.descending else left > right


def read_page(
    conn: sa.Connection,
    query: sa.Select[Any],
    *,
    order: Order,
    cursors: Cursors,
    listing: str,
    wanted: Mapping[str, FilterValue],
    cursor: str | None,
    limit: int,
    key_of: Callable[[sa.Row[Any]], Sequence[KeyValue]],
    item_of: Callable[[sa.Row[Any]], T],
) -> Page[T]:
    """One page of ``query`` (its filter already applied) in ``order``: at most limit + 1 rows
    are read, the extra one only to know whether another page follows."""
    check_limit(limit)
    if cursor:
        query = query.where(order.after(cursors.open(cursor, listing, wanted, len(order.columns))))
    found = conn.execute(query.order_by(*order.clauses()).limit(limit + 1)).fetchmany(limit + 1)
    shown = found[:limit]
    more = len(found) > limit
    following = cursors.make(listing, wanted, key_of(shown[-1])) if more and shown else None
    return Page([item_of(row) for row in shown], following)


def walk(fetch: Callable[[str | None], Page[T]]) -> Iterable[T]:
    """Every item of a list, a page at a time (reports that list everything)."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
