"""Re-wrapping every data key (and the audit key) under a new master key, resumably.

Each wrapped key is re-wrapped in its own small transaction and records which master key wrapped
it, so an interrupted rotation is finished by running it again with the same two keys.
"""

from __future__ import annotations

import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault.keys import MasterKey, MasterKeyError
from oathdesk.vault.schema import wrapped_keys


def rotate_master_key(engine: sa.Engine, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap what ``old`` still wraps under ``new``; returns how many keys moved.

    Refused before anything moves if some key is wrapped by neither: that happens when an
    interrupted rotation is resumed with another new key than it started with, and going on
    would spread the keys over three master keys.
    """
    moved = 0
    with engine.connect() as conn:
        wrapped_by = dict(
            conn.execute(sa.select(wrapped_keys.c.id, wrapped_keys.c.master_key_id)).all()
        )
    wrappers, ours = set(wrapped_by.values()), {old.key_id, new.key_id}
    if wrappers and not wrappers & ours:
        raise MasterKeyError(
            "the current master key does not open this vault; use the key file or passphrase "
            "it was created with"
        )
    if wrappers - ours:
        raise Conflict(
            "some keys are wrapped by a third master key (a different new key or passphrase "
            "than the interrupted run's); run again with that one, or restore a backup"
        )
    pending = [key_id for key_id, wrapper in wrapped_by.items() if wrapper == old.key_id]
    for key_id in pending:
        with engine.begin() as conn:
            row = conn.execute(
                sa.select(wrapped_keys).where(wrapped_keys.c.id == key_id).with_for_update()
            ).one()
            if row.master_key_id != old.key_id:
                continue  # another run got here first
            key = old.unwrap(row.nonce, row.wrapped, slot=row.id)
            nonce, wrapped = new.wrap(key, slot=row.id)
            conn.execute(
                wrapped_keys.update()
                .where(wrapped_keys.c.id == key_id)
                .values(nonce=nonce, wrapped=wrapped, master_key_id=new.key_id)
            )
            moved += 1
    return moved


def remaining(engine: sa.Engine, master_key: MasterKey) -> int:
    """How many keys are wrapped by something other than ``master_key``."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(wrapped_keys)
                .where(wrapped_keys.c.master_key_id != master_key.key_id)
            ).scalar_one()
        )
