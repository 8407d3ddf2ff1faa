"""The audit chain: append-only records, each MACed together with the previous record's MAC.

mac[n] = HMAC-SHA256(audit_key, canonical(record n) || mac[n-1]), mac[0] a keyed genesis value;
the canonical form includes n itself. Sequence numbers start at 1 and have no gaps, and a MACed
head row records the last one, so whoever can write to the database but lacks the key cannot
edit, insert, reorder or delete records (first and last included) without ``verify`` (in
``audit_verify``) naming the place. Records never hold secrets or codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

# The records and MACs live in audit_records (no SQL); re-exported for this module's callers.
from oathdesk.vault.audit_records import (
    GENESIS,
    HEAD_ID,
    AuditEntry,
    AuditRecord,
    ChainMacs,
    canonical_bytes,
    details_json,
    parse_record,
)
from oathdesk.vault.bulk import insert_rows
from oathdesk.vault.schema import audit_head, audit_log

if TYPE_CHECKING:
    from oathdesk.vault.audit_verify import ChainCheck, ChainPoint

__all__ = [
    "GENESIS",
    "HEAD_ID",
    "AuditChain",
    "AuditEntry",
    "AuditRecord",
    "canonical_bytes",
    "details_json",
    "parse_record",
    "record_from_row",
    "row_as_dict",
    "rows_as_dicts",
]

# Built once: every audited operation runs these two (see rows.py on why).
_LOCK_HEAD = (
    sa.select(audit_head.c.seq, audit_head.c.last_mac)
    .where(audit_head.c.id == HEAD_ID)
    .with_for_update()
)
_MOVE_HEAD = (
    audit_head.update()
    .where(audit_head.c.id == HEAD_ID)
    .values(
        seq=sa.bindparam("new_seq"),
        last_mac=sa.bindparam("new_last_mac"),
        head_mac=sa.bindparam("new_head_mac"),
    )
)


class AuditChain(ChainMacs):
    """Appends to and verifies the chain with an unwrapped audit key (its MACs: ``ChainMacs``)."""

    def start(self, conn: sa.Connection) -> None:
        """Create the head row of an empty chain (at vault creation)."""
        start = self.genesis()
        conn.execute(
            audit_head.insert().values(
                id=HEAD_ID, seq=0, last_mac=start, head_mac=self.head_mac(0, start)
            )
        )

    def append(
        self,
        conn: sa.Connection,
        *,
        actor: str,
        action: str,
        upn: str = "",
        serial: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one record inside the caller's transaction (which fails if this does);
        returns its sequence number."""
        entry = AuditEntry(actor, action, upn, serial, dict(details or {}))
        return self.append_many(conn, [entry])

    def append_many(self, conn: sa.Connection, entries: Sequence[AuditEntry]) -> int:
        """Append several records with one head update; returns the last sequence number.

        The head row is locked first (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the caller's
        BEGIN IMMEDIATE already holds the write lock), so concurrent appends queue here and the
        sequence stays gap-free. Whatever fails here fails the caller's whole transaction.
        """
        head = conn.execute(_LOCK_HEAD).one()
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        seq, mac = int(head.seq), bytes(head.last_mac)
        rows: list[dict[str, Any]] = []
        for entry in entries:
            seq += 1
            record = AuditRecord(
                seq, at, entry.actor, entry.action, entry.upn, entry.serial, entry.details
            )
            previous, mac = mac, self.record_mac(record, mac)
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": entry.actor,
                    "action": entry.action,
                    "upn": entry.upn,
                    "serial": entry.serial,
                    "details": details_json(entry.details),
                    "mac": mac,
                    "prev_mac": previous,
                }
            )
        if rows:
            insert_rows(conn, audit_log, rows)
            conn.execute(
                _MOVE_HEAD,
                {"new_seq": seq, "new_last_mac": mac, "new_head_mac": self.head_mac(seq, mac)},
            )
        return seq

    def lock(self, conn: sa.Connection) -> None:
        """Take the chain's write lock now, before reading what the next record depends on
        (a rate limit counts records). SQLite: the caller's BEGIN IMMEDIATE holds it already;
        PostgreSQL: the head row's lock, so a second server counting at the same moment waits
        for this transaction's record instead of counting without it."""
        if conn.dialect.name != "sqlite":
            conn.execute(_LOCK_HEAD).one()

    def check(self, conn: sa.Connection, after: ChainPoint | None) -> ChainCheck:
        """The whole chain, or what came after an earlier check's end (see ``check_chain``)."""
        from oathdesk.vault.audit_verify import check_chain

        return check_chain(self, conn, after=after)


def record_from_row(row: sa.Row[Any]) -> AuditRecord | None:
    """The record a row holds, or None when its details are not a JSON object (edited)."""
    return parse_record(row.seq, row.at, row.actor, row.action, row.upn, row.serial, row.details)


def row_as_dict(row: sa.Row[Any]) -> dict[str, Any]:
    """An audit row for export (JSON lines for a SIEM); the MAC as hex so it can be kept."""
    return {
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "upn": row.upn,
        "serial": row.serial,
        "details": json.loads(row.details),
        "mac": row.mac.hex(),
    }


def rows_as_dicts(rows: Iterable[sa.Row[Any]]) -> list[dict[str, Any]]:
    return [row_as_dict(row) for row in rows]
