"""A master key derived from a passphrase (argon2id), for servers that unseal the vault at start.

The salt and cost parameters are stored in the vault (they are not secret); the key is not.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass

import sqlalchemy as sa

from oathdesk.vault.keys import KEY_BYTES, MasterKey, MasterKeyError
from oathdesk.vault.schema import vault_meta

PASSPHRASE_ENV = "OATHDESK_PASSPHRASE"  # noqa: S105 (a variable name)
META_NAME = "master_key_kdf"
MIN_PASSPHRASE = 12


@dataclass(frozen=True)
class KdfParams:
    salt: bytes
    time_cost: int = 3
    memory_cost: int = 64 * 1024  # KiB
    parallelism: int = 2

    @classmethod
    def new(cls) -> KdfParams:
        return cls(os.urandom(16))

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": "argon2id",
                "salt": base64.b64encode(self.salt).decode(),
                "t": self.time_cost,
                "m": self.memory_cost,
                "p": self.parallelism,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> KdfParams:
        data = json.loads(text)
        return cls(base64.b64decode(data["salt"]), data["t"], data["m"], data["p"])


def derive_master_key(passphrase: str, params: KdfParams) -> MasterKey:
    if len(passphrase) < MIN_PASSPHRASE:
        raise MasterKeyError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    # Imported here: argon2 loads cffi (70 ms), which a vault opened by its key file never needs.
    from argon2.low_level import Type, hash_secret_raw

    raw = hash_secret_raw(
        passphrase.encode(),
        params.salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )
    return MasterKey(raw)


def store_params(conn: sa.Connection, params: KdfParams, *, name: str = META_NAME) -> None:
    conn.execute(vault_meta.delete().where(vault_meta.c.name == name))
    conn.execute(vault_meta.insert().values(name=name, value=params.to_json()))


def read_params(engine: sa.Engine, *, name: str = META_NAME) -> KdfParams | None:
    try:
        with engine.connect() as conn:
            text = conn.execute(
                sa.select(vault_meta.c.value).where(vault_meta.c.name == name)
            ).scalar()
    except sa.exc.DBAPIError:
        return None
    return None if text is None else KdfParams.from_json(text)


# During a passphrase change, the parameters of the new passphrase wait here, so that a rotation
# interrupted half-way can derive the same new key when it is run again.
PENDING_NAME = "master_key_kdf_pending"


def pending_params(engine: sa.Engine) -> KdfParams:
    """The new passphrase's parameters: those of an interrupted change, else new ones (stored)."""
    found = read_params(engine, name=PENDING_NAME)
    if found is not None:
        return found
    fresh = KdfParams.new()
    with engine.begin() as conn:
        store_params(conn, fresh, name=PENDING_NAME)
    return fresh


def adopt_pending_params(conn: sa.Connection) -> None:
    """After every key is re-wrapped: the new passphrase's parameters become the vault's (in the
    caller's transaction, the one of the rotation's audit record, so both happen or neither)."""
    pending = conn.execute(
        sa.select(vault_meta.c.value).where(vault_meta.c.name == PENDING_NAME)
    ).scalar()
    if pending is None:
        return  # adopted by the run that was interrupted after it
    conn.execute(vault_meta.update().where(vault_meta.c.name == META_NAME).values(value=pending))
    conn.execute(vault_meta.delete().where(vault_meta.c.name == PENDING_NAME))
