"""Re-wrapping every data key (and the audit key) under a new master key, resumably.

Each wrapped key is re-wrapped in its own small transaction and records which master key wrapped
it, so an interrupted rotation is finished by running it again with the same two keys.
"""

from __future__ import annotations

import sqlalchemy as sa

from oathdesk.vault.keys import MasterKey
from oathdesk.vault.schema import wrapped_keys


def rotate_master_key(engine: sa.Engine, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap what ``old`` still wraps under ``new``; returns how many keys moved."""
    moved = 0
    with engine.connect() as conn:
        pending = (
            conn.execute(
                sa.select(wrapped_keys.c.id).where(wrapped_keys.c.master_key_id == old.key_id)
            )
            .scalars()
            .all()
        )
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
