"""The audit chain: append-only records, each MACed together with the previous record's MAC.

mac[n] = HMAC-SHA256(audit_key, canonical(record n) || mac[n-1]), mac[0] a fixed genesis value.
Sequence numbers start at 1 and have no gaps, and a MACed head row records the last one, so
whoever can write to the database but lacks the key cannot edit, insert, reorder or delete
records (first and last included) without ``verify`` naming the place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

import sqlalchemy as sa

from oathdesk.vault.bulk import insert_rows
from oathdesk.vault.schema import audit_head, audit_log

GENESIS = b"oathdesk audit chain genesis"
HEAD_ID = 1


def details_json(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"))


def canonical_bytes(
    seq: int, at: str, actor: str, action: str, upn: str, serial: str, details: str
) -> bytes:
    """The bytes a record's MAC covers: the JSON array [seq, at, actor, action, upn, serial,
    details], built by hand (each string through the json module's C escaper) because a bulk
    import MACs one record per token."""
    quote = encode_basestring_ascii
    return (
        f"[{seq},{quote(at)},{quote(actor)},{quote(action)},{quote(upn)},{quote(serial)},{details}]"
    ).encode()


@dataclass(frozen=True)
class AuditEntry:
    """What to record; the chain adds the sequence number, time and MAC."""

    actor: str
    action: str
    upn: str = ""
    serial: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    upn: str
    serial: str
    details: dict[str, Any]

    def canonical(self) -> bytes:
        return canonical_bytes(
            self.seq,
            self.at,
            self.actor,
            self.action,
            self.upn,
            self.serial,
            details_json(self.details),
        )


class AuditChain:
    """Appends to and verifies the chain with an unwrapped audit key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "AuditChain(<key hidden>)"

    def _mac(self, record: AuditRecord, previous: bytes) -> bytes:
        return hmac.new(self._key, record.canonical() + previous, hashlib.sha256).digest()

    def _head_mac(self, seq: int, last_mac: bytes) -> bytes:
        return hmac.new(self._key, b"head|%d|" % seq + last_mac, hashlib.sha256).digest()

    def genesis(self) -> bytes:
        return hmac.new(self._key, GENESIS, hashlib.sha256).digest()

    def start(self, conn: sa.Connection) -> None:
        """Create the head row of an empty chain (at vault creation)."""
        start = self.genesis()
        conn.execute(
            audit_head.insert().values(
                id=HEAD_ID, seq=0, last_mac=start, head_mac=self._head_mac(0, start)
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
        """Append several records with one head update (bulk imports write one per token);
        returns the last sequence number."""
        head = conn.execute(
            sa.select(audit_head.c.seq, audit_head.c.last_mac)
            .where(audit_head.c.id == HEAD_ID)
            .with_for_update()  # PostgreSQL: appends queue here; SQLite holds the write lock
        ).one()
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        seq, mac = head.seq, head.last_mac
        rows: list[dict[str, Any]] = []
        details_cache: dict[int, str] = {}
        keyed = hmac.new(self._key, digestmod=hashlib.sha256)  # key set-up once, copied per record
        for entry in entries:
            seq += 1
            # Bulk entries share one details dict: serialise it once.
            details = details_cache.get(id(entry.details))
            if details is None:
                details = details_cache[id(entry.details)] = details_json(entry.details)
            canonical = canonical_bytes(
                seq, at, entry.actor, entry.action, entry.upn, entry.serial, details
            )
            state = keyed.copy()
            state.update(canonical + mac)
            mac = state.digest()
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": entry.actor,
                    "action": entry.action,
                    "upn": entry.upn,
                    "serial": entry.serial,
                    "details": details,
                    "mac": mac,
                }
            )
        if rows:
            insert_rows(conn, audit_log, rows)
            conn.execute(
                audit_head.update()
                .where(audit_head.c.id == HEAD_ID)
                .values(seq=seq, last_mac=mac, head_mac=self._head_mac(seq, mac))
            )
        return int(seq)

    def verify(self, conn: sa.Connection) -> list[str]:
        """Every break in the chain, in plain words; an empty list means the log is intact."""
        problems: list[str] = []
        previous_mac: bytes | None = self.genesis()
        expected_seq = 1
        for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)):
            if row.seq > expected_seq:
                gap = (
                    f"record {expected_seq}"
                    if row.seq == expected_seq + 1
                    else f"records {expected_seq}-{row.seq - 1}"
                )
                problems.append(f"{gap} missing (deleted)")
                # The deleted predecessor's MAC is unknown, so this record's own link can't be
                # checked; its MAC still anchors the check of the record after it.
                previous_mac = None
            record = _record_from_row(row)
            if record is None:
                problems.append(f"record {row.seq}: unreadable details (edited)")
            elif previous_mac is not None and not hmac.compare_digest(
                self._mac(record, previous_mac), row.mac
            ):
                problems.append(f"record {row.seq}: MAC mismatch (edited, inserted or reordered)")
            previous_mac = row.mac
            expected_seq = row.seq + 1
        problems += self._check_head(conn, expected_seq - 1, previous_mac)
        return problems

    def _check_head(self, conn: sa.Connection, last_seq: int, last_mac: bytes | None) -> list[str]:
        head = conn.execute(sa.select(audit_head).where(audit_head.c.id == HEAD_ID)).one_or_none()
        if head is None:
            return ["the audit head is missing (deleted); the end of the log cannot be checked"]
        if not hmac.compare_digest(self._head_mac(head.seq, head.last_mac), head.head_mac):
            return ["the audit head is forged or edited"]
        if head.seq > last_seq:
            missing = (
                f"record {head.seq}"
                if head.seq == last_seq + 1
                else f"records {last_seq + 1}-{head.seq}"
            )
            return [f"{missing} missing at the end (deleted): the head says {head.seq} records"]
        if head.seq < last_seq:
            return [f"records {head.seq + 1}-{last_seq} are not covered by the head (inserted)"]
        if last_mac is not None and not hmac.compare_digest(head.last_mac, last_mac):
            return [f"record {last_seq}: does not match the head (edited or replaced)"]
        return []


def _record_from_row(row: sa.Row[Any]) -> AuditRecord | None:
    try:
        details = json.loads(row.details)
    except (TypeError, ValueError):
        return None
    if not isinstance(details, dict):
        return None
    return AuditRecord(row.seq, row.at, row.actor, row.action, row.upn, row.serial, details)


def rows_as_dicts(rows: Iterable[sa.Row[Any]]) -> list[dict[str, Any]]:
    """Audit rows for export (JSON lines for a SIEM); MACs as hex so they can be kept."""
    return [
        {
            "seq": row.seq,
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "upn": row.upn,
            "serial": row.serial,
            "details": json.loads(row.details),
            "mac": row.mac.hex(),
        }
        for row in rows
    ]
