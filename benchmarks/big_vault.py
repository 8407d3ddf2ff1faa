"""A big vault, built fast: N users with a token each, spare tokens, and M audit records.

Benchmarks of lists, exports and audit checks measure what a company of 100,000 people has
(issue 15), so they need such a vault in seconds, not minutes. Users and tokens go through the
product's own bulk import (``Vault.add_tokens``: one transaction, secrets encrypted). Audit
records are what ``AuditChain.append_many`` would write, chained and MACed with the vault's own
audit key, but computed in one tight loop and written with the driver's bulk paths (SQLite
``executemany``, PostgreSQL ``COPY``): ``append_many`` builds a dict per record and takes
50 us each, nearly a minute for a million. The head is moved last, so the chain verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from oathdesk.vault.audit import HEAD_ID, canonical_bytes, details_json
from oathdesk.vault.bulk import insert_tuples
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import Actor, NewToken
from oathdesk.vault.schema import audit_head, audit_log
from oathdesk.vault.vault import Vault

BUILDER = Actor("bench", "admin")
AUDIT_COLUMNS = ("seq", "at", "actor", "action", "upn", "serial", "details", "mac", "prev_mac")
CHUNK = 50_000  # audit rows computed and written at a time (memory stays small)


def upn_of(index: int) -> str:
    return f"user{index:06d}@contoso.com"


def serial_of(index: int) -> str:
    return f"B{index:08d}"


def secret_of(index: int) -> bytes:
    """A distinct, reproducible 20-byte secret (the vault refuses one secret on two tokens)."""
    return hashlib.sha256(b"big vault %d" % index).digest()[:20]


def build_big_vault(
    location: VaultLocation,
    master_key: MasterKey,
    *,
    users: int,
    tokens: int,
    audit_records: int,
) -> Vault:
    """A new vault at ``location`` with ``users`` users (user i holds token i), ``tokens``
    tokens (those past ``users`` in stock) and ``audit_records`` audit records in all (the
    import's own records included). ``users`` must not exceed ``tokens``."""
    if users > tokens:
        raise ValueError("every user gets a token here: users must not exceed tokens")
    vault = Vault.create(location, master_key, BUILDER)
    if tokens:
        batch = [
            NewToken(
                serial_of(i),
                "Token2",
                "C202",
                TokenKind.CLASSIC,
                secret_of(i),
                upn=upn_of(i) if i < users else None,
            )
            for i in range(tokens)
        ]
        vault.add_tokens(BUILDER, batch, source="big vault", create_missing_users=True)
    missing = audit_records - vault.audit_count()
    if missing > 0:
        append_audit_records(vault, missing, users=max(users, 1))
    return vault


def append_audit_records(vault: Vault, count: int, *, users: int = 1) -> None:
    """Append ``count`` reveal-like records to the chain in one transaction."""
    chain = vault._chain  # the audit key stays inside the chain object; we only MAC with it
    new_mac = chain.keyed_hmac().copy
    with vault.transaction() as conn:
        head = conn.execute(
            sa.select(audit_head.c.seq, audit_head.c.last_mac).where(audit_head.c.id == HEAD_ID)
        ).one()
        seq, mac = int(head.seq), bytes(head.last_mac)
        # The log's seven indexes, kept up row by row, cost 50 us a record; built once after
        # the rows are in (a sort each), they cost a few seconds for a million.
        indexes = _drop_indexes(conn)
        start = datetime.now(UTC) - timedelta(days=365)
        done = 0
        while done < count:
            rows: list[tuple[Any, ...]] = []
            for _ in range(min(CHUNK, count - done)):
                seq += 1
                done += 1
                user = seq % users
                at = (start + timedelta(seconds=seq)).isoformat(timespec="microseconds")
                details = details_json({"channel": "phone", "ticket": f"INC{seq:07d}"})
                record = (
                    seq,
                    at,
                    "helpdesk:hugo",
                    "token.revealed",
                    upn_of(user),
                    serial_of(user),
                    details,
                )
                digest = new_mac()
                digest.update(canonical_bytes(*record))
                digest.update(mac)
                previous, mac = mac, digest.digest()
                rows.append((*record, mac, previous))
            _insert(conn, rows)
        for create in indexes:
            conn.exec_driver_sql(create)
        conn.execute(
            audit_head.update()
            .where(audit_head.c.id == HEAD_ID)
            .values(seq=seq, last_mac=mac, head_mac=chain.head_mac(seq, mac))
        )


def _drop_indexes(conn: sa.Connection) -> list[str]:
    """Drop the audit log's secondary indexes; the statements that create them again."""
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'audit_log' AND sql IS NOT NULL"
        ).all()
    else:
        found = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_log' "
            "AND indexname NOT LIKE '%%pkey'"
        ).all()
    for name, _ in found:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [str(create) for _, create in found]


def _insert(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    if conn.dialect.name == "sqlite":
        insert_tuples(conn, audit_log, AUDIT_COLUMNS, rows)
        return
    # PostgreSQL: COPY is the bulk path (an INSERT per row costs ten times as much).
    driver: Any = conn.connection.driver_connection
    columns = ", ".join(AUDIT_COLUMNS)
    with driver.cursor() as cursor, cursor.copy(f"COPY audit_log ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def chain_bytes(vault: Vault) -> Iterator[bytes]:
    """Each record's MACed bytes (its canonical form and the MAC before it), in order: what the
    floor of an audit check (a plain ``hmac.digest`` loop) hashes."""
    with vault.reading() as conn:
        result = conn.execute(
            sa.select(*(audit_log.c[name] for name in AUDIT_COLUMNS)).order_by(audit_log.c.seq)
        )
        for row in result:
            yield canonical_bytes(*row[:7]) + bytes(row.prev_mac)
