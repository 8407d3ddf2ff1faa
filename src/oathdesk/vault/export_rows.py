"""The tokens of an export that streams, as columns: their secrets still encrypted, read in the
transaction that writes the export's audit record (so the export holds exactly what was
audited), then decrypted a chunk at a time as the export is written.

Columns rather than an object per token: an export of 100,000 tokens spent more time building
those (SQLAlchemy rows, then a tuple of ours each) than reading and decrypting the secrets. The
driver's rows are turned into columns once, by position, and every later step (the checks, the
decryption, the CSV text) works on whole columns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from oathdesk.vault.keys import DataKey
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.schema import token_secrets, tokens, users

# AES-GCM appends a 16-byte tag: the secret's length is known without decrypting it.
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True, repr=False)
class ExportColumns:
    """Tokens an export may hold, by serial, one tuple per column (position ``i`` of each is
    the ``i``-th token), their secrets still encrypted."""

    ids: Sequence[str]
    serials: Sequence[str]
    upns: Sequence[str | None]
    manufacturers: Sequence[str]
    models: Sequence[str]
    algorithms: Sequence[str]
    digits: Sequence[int]
    periods: Sequence[int]
    nonces: Sequence[bytes]
    ciphertexts: Sequence[bytes]

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"ExportColumns({len(self)} tokens)"

    def longest_secret(self) -> int:
        """The longest secret's length in bytes, known without decrypting (0: no token)."""
        return max(map(len, self.ciphertexts), default=_TAG_BYTES) - _TAG_BYTES

    def secret_length(self, position: int) -> int:
        return len(self.ciphertexts[position]) - _TAG_BYTES

    def part(self, start: int, stop: int) -> ExportColumns:
        """The tokens at positions ``start`` to ``stop`` (a chunk of the stream)."""
        return ExportColumns(*(column[start:stop] for column in self._columns()))

    def only(self, positions: Sequence[int]) -> ExportColumns:
        """The tokens at ``positions``, in that order (those an export keeps)."""
        return ExportColumns(*([column[i] for i in positions] for column in self._columns()))

    def _columns(self) -> tuple[Sequence[Any], ...]:
        return (
            self.ids,
            self.serials,
            self.upns,
            self.manufacturers,
            self.models,
            self.algorithms,
            self.digits,
            self.periods,
            self.nonces,
            self.ciphertexts,
        )


_EMPTY = ExportColumns((), (), (), (), (), (), (), (), (), ())


def export_columns(
    conn: sa.Connection, states: Collection[TokenState], kind: TokenKind | None
) -> ExportColumns:
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
    result = conn.execute(query)
    try:
        # The driver's own rows (plain tuples of str, int and bytes on sqlite3 and psycopg):
        # SQLAlchemy's Row per token cost a fifth of the read, and none of its processing
        # applies to these types.
        found = result.cursor.fetchall()
    finally:
        result.close()
    if not found:
        return _EMPTY
    return ExportColumns(*zip(*found, strict=True))


def decrypt_part(data_key: DataKey, part: ExportColumns) -> list[bytes]:
    """The secrets of ``part``, in its order (one AES-GCM key for them all)."""
    return data_key.decrypt_many(part.ids, part.serials, part.nonces, part.ciphertexts)
