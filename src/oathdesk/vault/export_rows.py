"""The rows of an export that streams: its tokens with their secrets still encrypted, read in
the transaction that writes the export's audit record (so the export holds exactly what was
audited), then decrypted a chunk at a time as the export is written.

Plain tuples rather than ``Token`` objects: an export of 100,000 tokens spent more time building
those than reading and decrypting the secrets.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import sqlalchemy as sa

from oathdesk.vault.keys import DataKey
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.schema import token_secrets, tokens, users

# AES-GCM appends a 16-byte tag: the secret's length is known without decrypting it.
_TAG_BYTES = 16


class ExportRow(NamedTuple):
    """A token an export may hold, with its secret still encrypted."""

    id: str
    serial: str
    upn: str | None
    manufacturer: str
    model: str
    algorithm: str
    digits: int
    period: int
    nonce: bytes
    ciphertext: bytes

    @property
    def secret_bytes(self) -> int:
        """The secret's length, known without decrypting it (AES-GCM adds a 16-byte tag)."""
        return len(self.ciphertext) - _TAG_BYTES

    def __repr__(self) -> str:
        return f"ExportRow(serial={self.serial!r})"


class SecretRow(NamedTuple):
    """A token as the stream writes it: its values and its decrypted secret."""

    serial: str
    upn: str | None
    manufacturer: str
    model: str
    period: int
    secret: bytes

    def __repr__(self) -> str:
        return f"SecretRow(serial={self.serial!r})"


def export_rows(
    conn: sa.Connection, states: Collection[TokenState], kind: TokenKind | None
) -> list[ExportRow]:
    """The tokens in ``states`` (and of ``kind``) that hold a secret, by serial, as of
    ``conn``'s snapshot: the one the export's audit record is written in."""
    query = (
        sa.select(
            tokens.c.id,
            tokens.c.serial,
            users.c.upn,
            tokens.c.manufacturer,
            tokens.c.model,
            tokens.c.algorithm,
            tokens.c.digits,
            tokens.c.period,
            token_secrets.c.nonce,
            token_secrets.c.ciphertext,
        )
        .select_from(tokens)
        .join(token_secrets, token_secrets.c.token_id == tokens.c.id)
        .outerjoin(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.state.in_(sorted(s.value for s in states)))
        .order_by(tokens.c.serial)
    )
    if kind is not None:
        query = query.where(tokens.c.kind == kind.value)
    # all(): one fetch, not a call per row (100,000 of them).
    return [ExportRow._make(row) for row in conn.execute(query).all()]


def decrypt_rows(data_key: DataKey, rows: Sequence[ExportRow]) -> list[SecretRow]:
    """``rows`` with their secrets decrypted, in a tight loop."""
    decrypt = data_key.decrypt
    return [
        SecretRow(
            row.serial,
            row.upn,
            row.manufacturer,
            row.model,
            row.period,
            decrypt(row.nonce, row.ciphertext, token_id=row.id, serial=row.serial),
        )
        for row in rows
    ]
