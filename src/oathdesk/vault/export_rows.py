"""The rows of an export that streams: its tokens without their secrets (to choose and audit
them before the first byte), then their secrets, read in chunks and decrypted as they go.

Plain tuples rather than ``Token`` objects: an export of 100,000 tokens spent more time building
those than reading and decrypting the secrets.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import NamedTuple

import sqlalchemy as sa

from oathdesk.vault.keys import DataKey
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.schema import token_secrets, tokens, users

# AES-GCM appends a 16-byte tag: the secret's length is known without decrypting it.
_TAG_BYTES = 16


class ExportRow(NamedTuple):
    """A token an export may hold, and the length of its secret (never the secret)."""

    id: str
    serial: str
    upn: str | None
    manufacturer: str
    model: str
    algorithm: str
    digits: int
    period: int
    secret_bytes: int


class SecretRow(NamedTuple):
    """A token as the stream writes it: its values and its decrypted secret."""

    serial: str
    upn: str | None
    manufacturer: str
    model: str
    period: int
    secret: bytes


def _selection(states: Collection[TokenState], kind: TokenKind | None) -> sa.Select[tuple[()]]:
    query = (
        sa.select()
        .select_from(tokens)
        .join(token_secrets, token_secrets.c.token_id == tokens.c.id)
        .outerjoin(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.state.in_(sorted(s.value for s in states)))
        .order_by(tokens.c.serial)
    )
    return query if kind is None else query.where(tokens.c.kind == kind.value)


def export_rows(
    conn: sa.Connection, states: Collection[TokenState], kind: TokenKind | None
) -> list[ExportRow]:
    """The tokens in ``states`` (and of ``kind``) that hold a secret, by serial."""
    query = _selection(states, kind).add_columns(
        tokens.c.id,
        tokens.c.serial,
        users.c.upn,
        tokens.c.manufacturer,
        tokens.c.model,
        tokens.c.algorithm,
        tokens.c.digits,
        tokens.c.period,
        sa.func.length(token_secrets.c.ciphertext) - _TAG_BYTES,
    )
    return [ExportRow(*row) for row in conn.execute(query)]


def stream_secrets(
    conn: sa.Connection,
    data_key: DataKey,
    states: Collection[TokenState],
    kind: TokenKind | None,
    chosen: Collection[str],
    *,
    chunk: int,
) -> Iterator[list[SecretRow]]:
    """The ``chosen`` tokens (ids) of the selection with their secrets, ``chunk`` at a time, by
    serial. One query read as it goes (a server-side cursor on PostgreSQL), no IN lists; a token
    that left the selection since it was chosen (lost, its secret erased) is not in it."""
    query = _selection(states, kind).add_columns(
        tokens.c.id,
        tokens.c.serial,
        users.c.upn,
        tokens.c.manufacturer,
        tokens.c.model,
        tokens.c.period,
        token_secrets.c.nonce,
        token_secrets.c.ciphertext,
    )
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
    decrypt = data_key.decrypt
    for part in result.partitions():
        yield [
            SecretRow(
                serial,
                upn,
                manufacturer,
                model,
                period,
                decrypt(nonce, ciphertext, token_id=token_id, serial=serial),
            )
            for token_id, serial, upn, manufacturer, model, period, nonce, ciphertext in part
            if token_id in chosen
        ]
