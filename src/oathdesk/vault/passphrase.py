"""A master key derived from a passphrase (argon2id), for servers that unseal the vault at start.

The salt and cost parameters are stored in the vault (they are not secret); the key is not.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass

import sqlalchemy as sa
from argon2.low_level import Type, hash_secret_raw

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


def store_params(conn: sa.Connection, params: KdfParams) -> None:
    conn.execute(vault_meta.insert().values(name=META_NAME, value=params.to_json()))


def read_params(engine: sa.Engine) -> KdfParams | None:
    try:
        with engine.connect() as conn:
            text = conn.execute(
                sa.select(vault_meta.c.value).where(vault_meta.c.name == META_NAME)
            ).scalar()
    except sa.exc.DBAPIError:
        return None
    return None if text is None else KdfParams.from_json(text)
