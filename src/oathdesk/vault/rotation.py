"""Re-wrapping every data key (and the audit key) under a new master key, resumably.

Each wrapped key is re-wrapped in its own small transaction and records which master key wrapped
it, so an interrupted rotation is finished by running it again with the same two keys.

Before the first key moves, the vault records which rotation is under way (the public ids of the
old and new master key), and that record goes in the transaction of the ``key.rotated`` audit
record at the very end. So a vault whose keys are all wrapped by the new key while the admin
still holds the old one (killed before the key file was swapped or the passphrase adopted) is
told apart from a wrong key: the first needs ``oathdesk key rotate`` again, the second must
not be "fixed" by restoring a backup.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault.keys import MasterKey, MasterKeyError
from oathdesk.vault.schema import vault_meta, wrapped_keys

PENDING_META = "master_key_rotation"
INTERRUPTED = "a master key rotation was interrupted; run `oathdesk key rotate` again to finish"
WRONG_KEY = "the master key does not open this vault; use the key it was created with"


@dataclass(frozen=True)
class PendingRotation:
    """The public ids of the two master keys of a rotation under way (never the keys)."""

    old_key_id: str
    new_key_id: str


def read_pending(conn: sa.Connection) -> PendingRotation | None:
    text = conn.execute(
        sa.select(vault_meta.c.value).where(vault_meta.c.name == PENDING_META)
    ).scalar()
    if text is None:
        return None
    data = json.loads(text)
    return PendingRotation(str(data["old"]), str(data["new"]))


def record_pending(engine: sa.Engine, old_key_id: str, new_key_id: str) -> PendingRotation:
    """Note the rotation before anything moves; a resumed one keeps its first old key's id."""
    with engine.begin() as conn:
        found = read_pending(conn)
        if found is not None and found.new_key_id == new_key_id:
            return found
        conn.execute(vault_meta.delete().where(vault_meta.c.name == PENDING_META))
        value = json.dumps({"old": old_key_id, "new": new_key_id})
        conn.execute(vault_meta.insert().values(name=PENDING_META, value=value))
    return PendingRotation(old_key_id, new_key_id)


def clear_pending(conn: sa.Connection) -> None:
    """In the transaction of the rotation's audit record: the rotation is over."""
    conn.execute(vault_meta.delete().where(vault_meta.c.name == PENDING_META))


def refusal(conn: sa.Connection, wrappers: set[str]) -> MasterKeyError:
    """Why a master key not among ``wrappers`` (the ids of those wrapping the vault's keys)
    does not open the vault."""
    if len(wrappers) > 1:
        return MasterKeyError(INTERRUPTED)  # some keys moved, others not
    pending = read_pending(conn)
    if pending is not None and wrappers == {pending.new_key_id}:
        return MasterKeyError(INTERRUPTED)  # every key moved, the old key is still in use
    return MasterKeyError(WRONG_KEY)


def rotate_master_key(
    engine: sa.Engine,
    old: MasterKey,
    new: MasterKey,
    *,
    on_step: Callable[[str], None] | None = None,
) -> int:
    """Re-wrap what ``old`` still wraps under ``new``; returns how many keys moved.

    Refused before anything moves if some key is wrapped by neither: that happens when an
    interrupted rotation is resumed with another new key than it started with, and going on
    would spread the keys over three master keys. ``on_step`` hears of each committed key.
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
        if on_step is not None:
            on_step(f"re-wrapped the {row.purpose} key under the new master key")
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
