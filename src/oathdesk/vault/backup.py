"""Encrypted, consistent backups of a vault that may be in use, and restoring them.

All tables are read in one transaction (SQLite: a WAL read snapshot; PostgreSQL: REPEATABLE
READ), so the copy is a single point in time while operators keep working and writing. The copy is
serialised and encrypted with AES-256-GCM under a key derived (HKDF) from the master key; the seeds
inside were already encrypted. Files are written 0600.

Layout: magic line, 4-byte header length, header (JSON, in clear but authenticated: the argon2id
parameters of a passphrase-sealed vault, which are not secret and are needed to derive the key
before anything can be decrypted), 12-byte nonce, ciphertext.
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
from oathdesk.platform_io import open_private
from oathdesk.vault import db, token_counts
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.passphrase import META_NAME as KDF_META
from oathdesk.vault.passphrase import KdfParams
from oathdesk.vault.schema import metadata

MAGIC_V1 = b"OATHDESK-BACKUP-1\n"  # no header; read for backups made before the header existed
MAGIC = b"OATHDESK-BACKUP-2\n"
PURPOSE = b"oathdesk backup v1"
NONCE_BYTES = 12


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


def _backed_up_tables() -> list[sa.Table]:
    """Every table but those that only coordinate running jobs (leases)."""
    return [table for table in metadata.sorted_tables if table.info.get("backup", True)]


def write_backup(
    engine: sa.Engine, master_key: MasterKey, target: Path, *, overwrite: bool = False
) -> int:
    """Write an encrypted snapshot of every table to ``target``; returns the number of rows.

    An existing ``target`` is refused unless ``overwrite``: it is most likely an older backup,
    and replacing it silently could leave the admin with no copy that opens."""
    if target.exists() and not overwrite:
        raise Conflict(_exists_message(target))
    snapshot: dict[str, list[dict[str, Any]]] = {}
    with db.reading(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for table in _backed_up_tables():
                rows = conn.execute(sa.select(table)).mappings().all()
                snapshot[table.name] = [{k: _encode(v) for k, v in row.items()} for row in rows]
    kdf = next((r["value"] for r in snapshot["vault_meta"] if r["name"] == KDF_META), None)
    header = json.dumps({"kdf": kdf}).encode()
    plain = json.dumps({"format": 2, "schema": db.SCHEMA_HEAD, "tables": snapshot}).encode()
    nonce = os.urandom(NONCE_BYTES)
    aad = MAGIC + header
    sealed = AESGCM(master_key.derive(PURPOSE)).encrypt(nonce, plain, aad)
    # O_EXCL as well: a file made between the check above and now is not overwritten either.
    try:
        handle = open_private(target, exclusive=not overwrite)
    except FileExistsError:
        raise Conflict(_exists_message(target)) from None
    with handle:
        handle.write(MAGIC + len(header).to_bytes(4, "big") + header + nonce + sealed)
    return sum(len(rows) for rows in snapshot.values())


def _exists_message(target: Path) -> str:
    return f"{target} exists; choose another name, or add --force to overwrite it"


def _split(source: Path) -> tuple[bytes, bytes, bytes, bytes]:
    """(associated data, header, nonce, ciphertext) of a backup file."""
    data = source.read_bytes()
    if data.startswith(MAGIC_V1):
        rest = data[len(MAGIC_V1) :]
        return MAGIC_V1, b"{}", rest[:NONCE_BYTES], rest[NONCE_BYTES:]
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise InvalidInput(f"{source} is not an oathdesk backup")
    size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    header = data[start : start + size]
    rest = data[start + size :]
    return MAGIC + header, header, rest[:NONCE_BYTES], rest[NONCE_BYTES:]


def backup_passphrase_params(source: Path) -> KdfParams | None:
    """The argon2id parameters of a backup of a passphrase-sealed vault (None: key file)."""
    _, header, _, _ = _split(source)
    try:
        kdf = json.loads(header).get("kdf")
    except (ValueError, AttributeError):
        raise InvalidInput(f"{source} is damaged (its header is unreadable)") from None
    return None if kdf is None else KdfParams.from_json(kdf)


def read_backup(master_key: MasterKey, source: Path) -> dict[str, list[dict[str, Any]]]:
    aad, _, nonce, sealed = _split(source)
    try:
        plain = AESGCM(master_key.derive(PURPOSE)).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise InvalidInput(
            f"{source} cannot be opened with this master key, or it is damaged"
        ) from None
    content = json.loads(plain)
    if content.get("schema", "0002") > db.SCHEMA_HEAD:
        raise InvalidInput(
            f"{source} comes from a newer oathdesk (schema {content['schema']}); upgrade first"
        )
    tables: dict[str, list[dict[str, Any]]] = content["tables"]
    return tables


def restore_backup(engine: sa.Engine, master_key: MasterKey, source: Path) -> int:
    """Load a backup into an empty vault (schema created, no rows); one transaction."""
    tables = read_backup(master_key, source)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                raise Conflict(
                    "restore needs an empty vault; give a new file with --vault, or an empty "
                    "database with OATHDESK_DATABASE_URL"
                )
        total = 0
        for table in metadata.sorted_tables:
            rows = [{k: _decode(v) for k, v in row.items()} for row in tables.get(table.name, [])]
            if rows:
                conn.execute(table.insert(), rows)
                total += len(rows)
        token_counts.recount(conn)  # the tokens per state are not in backups: counted afresh
    return total
