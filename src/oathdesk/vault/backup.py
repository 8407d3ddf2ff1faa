"""Encrypted, consistent backups of a vault that may be in use, and restoring them.

All tables are read in one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: REPEATABLE READ),
so the copy is a single point in time while operators keep working. The copy is serialised and
encrypted with AES-256-GCM under a key derived (HKDF) from the master key; the seeds inside were
already encrypted. Files are written 0600.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from oathdesk.errors import Conflict, InvalidInput
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.schema import metadata

MAGIC = b"OATHDESK-BACKUP-1\n"
PURPOSE = b"oathdesk backup v1"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "b64" in value:
        return base64.b64decode(value["b64"])
    if isinstance(value, dict) and "dt" in value:
        return datetime.fromisoformat(value["dt"])
    return value


def write_backup(engine: sa.Engine, master_key: MasterKey, target: Path) -> int:
    """Write an encrypted snapshot of every table to ``target``; returns the number of rows."""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for table in metadata.sorted_tables:
                rows = conn.execute(sa.select(table)).mappings().all()
                snapshot[table.name] = [{k: _encode(v) for k, v in row.items()} for row in rows]
    plain = json.dumps({"format": 1, "tables": snapshot}).encode()
    nonce = os.urandom(12)
    sealed = AESGCM(master_key.derive(PURPOSE)).encrypt(nonce, plain, MAGIC)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(MAGIC + nonce + sealed)
    return sum(len(rows) for rows in snapshot.values())


def read_backup(master_key: MasterKey, source: Path) -> dict[str, list[dict[str, Any]]]:
    data = source.read_bytes()
    if not data.startswith(MAGIC):
        raise InvalidInput(f"{source} is not an oathdesk backup")
    nonce, sealed = data[len(MAGIC) : len(MAGIC) + 12], data[len(MAGIC) + 12 :]
    try:
        plain = AESGCM(master_key.derive(PURPOSE)).decrypt(nonce, sealed, MAGIC)
    except InvalidTag:
        raise InvalidInput(
            f"{source} cannot be opened with this master key, or it is damaged"
        ) from None
    tables: dict[str, list[dict[str, Any]]] = json.loads(plain)["tables"]
    return tables


def restore_backup(engine: sa.Engine, master_key: MasterKey, source: Path) -> int:
    """Load a backup into an empty vault (schema created, no rows); one transaction."""
    tables = read_backup(master_key, source)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                raise Conflict(
                    "restore needs an empty vault; create one with `oathdesk init --empty`"
                )
        total = 0
        for table in metadata.sorted_tables:
            rows = [{k: _decode(v) for k, v in row.items()} for row in tables.get(table.name, [])]
            if rows:
                conn.execute(table.insert(), rows)
                total += len(rows)
    return total
