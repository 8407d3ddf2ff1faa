"""Keyed fingerprints of stored secrets: finding one seed on two tokens without decrypting.

Each ``token_secrets`` row carries ``fingerprint`` = HMAC-SHA256(fingerprint key, seed), first 16
bytes, the key derived by HKDF from the data key (``DataKey.fingerprint``). It lives and dies with
the encrypted secret: written with it (bulk insert, ``token add``, ``seeds generate``, reassign),
zeroed and deleted with it (purge, lost, revoked, retired, reassign). The index is not unique:
the check is a query, so the vault can say *which* token already holds a seed.

Rows written before migration 0004 have no fingerprint (a migration has no key to compute one).
The first unit of work that adds or re-seeds tokens fills them in (``fill_missing``, in its own
transaction, with a ``vault.fingerprints_filled`` audit record); read-only checks compute the
missing ones in memory (``unfilled``) and write nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from oathdesk.vault.keys import DataKey
from oathdesk.vault.schema import token_secrets, tokens

# Rows per IN (...) query: below SQLite's old 999-parameter limit.
_CHUNK = 500
# Scan every stored fingerprint instead of looking each one up when the vault holds at most
# this many times as many secrets as are asked about (a first big import scans an empty table).
_SCAN_RATIO = 4
# Up to this many, always look each one up (one token added, a small import).
_SEEK_ALWAYS = 2000


def holders(conn: sa.Connection, fingerprints: Iterable[bytes]) -> dict[bytes, str]:
    """For each of ``fingerprints`` already stored, the serial of a token holding it."""
    wanted = set(fingerprints)
    if not wanted:
        return {}
    column = token_secrets.c.fingerprint
    found: dict[bytes, str] = {}
    # Counting rows is itself a scan (on PostgreSQL): only worth it for big batches.
    if len(wanted) > _SEEK_ALWAYS and _count(conn) <= _SCAN_RATIO * len(wanted):
        scan = sa.select(column, token_secrets.c.token_id).where(column.is_not(None))
        matches = {bytes(fp): token_id for fp, token_id in conn.execute(scan) if fp in wanted}
        serials = _serials(conn, set(matches.values()))
        return {fp: serials[token_id] for fp, token_id in matches.items()}
    ordered = sorted(wanted)
    query = sa.select(column, tokens.c.serial).join(tokens, tokens.c.id == token_secrets.c.token_id)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        for fp, serial in conn.execute(query.where(column.in_(chunk))):
            found.setdefault(bytes(fp), serial)
    return found


def _count(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(token_secrets)).scalar_one())


def _serials(conn: sa.Connection, token_ids: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    ordered = sorted(token_ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        query = sa.select(tokens.c.id, tokens.c.serial).where(tokens.c.id.in_(chunk))
        found.update((token_id, serial) for token_id, serial in conn.execute(query))
    return found


def _rows_without(conn: sa.Connection) -> list[tuple[str, str, bytes, bytes]]:
    query = (
        sa.select(
            token_secrets.c.token_id,
            tokens.c.serial,
            token_secrets.c.nonce,
            token_secrets.c.ciphertext,
        )
        .join(tokens, tokens.c.id == token_secrets.c.token_id)
        .where(token_secrets.c.fingerprint.is_(None))
    )
    return [(row[0], row[1], row[2], row[3]) for row in conn.execute(query)]


def unfilled(conn: sa.Connection, data_key: DataKey) -> dict[bytes, str]:
    """Fingerprint -> serial of the stored secrets that have no fingerprint yet (in memory)."""
    found: dict[bytes, str] = {}
    for token_id, serial, nonce, ciphertext in _rows_without(conn):
        secret = data_key.decrypt(nonce, ciphertext, token_id=token_id, serial=serial)
        found.setdefault(data_key.fingerprint(secret), serial)
    return found


def fill_missing(conn: sa.Connection, data_key: DataKey) -> int:
    """Write the fingerprint of every stored secret that lacks one; how many were written."""
    values = []
    for token_id, serial, nonce, ciphertext in _rows_without(conn):
        secret = data_key.decrypt(nonce, ciphertext, token_id=token_id, serial=serial)
        values.append({"row_id": token_id, "fp": data_key.fingerprint(secret)})
    if values:
        conn.execute(
            token_secrets.update()
            .where(token_secrets.c.token_id == sa.bindparam("row_id"))
            .values(fingerprint=sa.bindparam("fp")),
            values,
        )
    return len(values)
