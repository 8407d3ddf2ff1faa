"""`oathdesk key rotate`, `oathdesk backup` and `oathdesk restore`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa

from oathdesk.cli.vault_context import local_actor, location, open_vault_and_key, vault_option
from oathdesk.errors import Conflict, InvalidInput
from oathdesk.vault import db
from oathdesk.vault.backup import backup_passphrase_params, restore_backup, write_backup
from oathdesk.vault.config import KEY_FILE_ENV, VaultLocation, load_master_key, read_passphrase
from oathdesk.vault.keys import (
    MASTER_KEY_ENV,
    MasterKey,
    MasterKeyError,
    read_key_file,
    write_key_file,
)
from oathdesk.vault.passphrase import derive_master_key, read_params
from oathdesk.vault.rotation import (
    clear_pending,
    read_pending,
    record_pending,
    remaining,
    rotate_master_key,
)
from oathdesk.vault.vault import Vault

NEW_PASSPHRASE_ENV = "OATHDESK_NEW_PASSPHRASE"  # noqa: S105 (a variable name)


@click.group("key")
def key_group() -> None:
    """The vault's master key."""


@key_group.command("rotate")
@vault_option
def key_rotate_command(vault_path: str | None) -> None:
    """Re-wrap every data key under a new master key (resumable if interrupted).

    A key-file vault gets a new key file; a passphrase-sealed vault a new passphrase (from
    $OATHDESK_NEW_PASSPHRASE or a prompt). Run it again after an interruption to finish.
    """
    where = location(vault_path)
    if os.environ.get(MASTER_KEY_ENV):
        raise InvalidInput(
            f"rotation replaces the key file; unset {MASTER_KEY_ENV} and use the key file"
        )
    engine = db.create_engine(where.database_url)
    try:
        if read_params(engine) is not None:
            rotation = _passphrase_rotation(engine, where)
        else:
            rotation = _key_file_rotation(engine, where)
        old, new = rotation.old, rotation.new
        pending = record_pending(engine, old.key_id, new.key_id)
        _report_step("recorded in the vault that a rotation is under way")
        moved = (
            0
            if old.key_id == new.key_id
            else rotate_master_key(engine, old, new, on_step=_report_step)
        )
        if remaining(engine, new):
            raise Conflict(
                "some keys are wrapped by a third master key (a different new key or passphrase "
                "than the interrupted run's); run again with that one, or restore a backup"
            )
        rotation.swap()
    finally:
        engine.dispose()
    vault = Vault.open(where, new)
    try:
        # The end of the rotation is one transaction: its audit record, the vault's note that a
        # rotation is under way removed, and (passphrase) the new parameters adopted.
        with vault.unit_of_work(local_actor()) as work:
            rotation.adopt(work.conn)
            clear_pending(work.conn)
            work.audit(
                "key.rotated",
                details={
                    "old_master_key_id": pending.old_key_id,
                    "new_master_key_id": new.key_id,
                    "rewrapped": moved,
                },
            )
    finally:
        vault.close()
    _report_step("recorded key.rotated in the audit log")
    click.echo(f"re-wrapped {moved} key(s) under the new master key")
    rotation.done()


def _report_step(message: str) -> None:
    """Each durable step of a rotation, as it is made: an admin sees how far it got."""
    click.echo(f"step: {message}")


@dataclass
class _Rotation:
    old: MasterKey
    new: MasterKey
    swap: Callable[[], None] = lambda: None  # after every key moved, before the audit record
    adopt: Callable[[sa.Connection], None] = lambda _conn: None  # in the audit's transaction
    done: Callable[[], None] = lambda: None  # what to tell the admin at the end


def _key_file_rotation(engine: sa.Engine, where: VaultLocation) -> _Rotation:
    old = read_key_file(where.key_file)
    pending = where.key_file.with_name(where.key_file.name + ".new")
    if pending.exists():
        new = read_key_file(pending)
        click.echo(f"resuming an interrupted rotation with {pending}")
    else:
        with engine.connect() as conn:
            under_way = read_pending(conn)
        if under_way is not None and under_way.new_key_id == old.key_id:
            # Killed after the key file was swapped: only the audit record is left to write.
            click.echo(f"finishing an interrupted rotation: {where.key_file} holds the new key")
            return _Rotation(old, old, done=_key_file_done(where))
        new = MasterKey.generate()
        # Written whole under another name, then renamed: a kill never leaves a half-written
        # .new file that a resumed run would take for the new key.
        partial = pending.with_name(pending.name + ".partial")
        partial.unlink(missing_ok=True)
        write_key_file(partial, new)
        os.replace(partial, pending)
        _report_step(f"wrote the new master key to {pending}")

    def swap() -> None:
        os.replace(pending, where.key_file)
        _report_step(f"{where.key_file} now holds the new master key")

    return _Rotation(old, new, swap=swap, done=_key_file_done(where))


def _key_file_done(where: VaultLocation) -> Callable[[], None]:
    def done() -> None:
        click.echo(f"{where.key_file} now holds the new master key")
        click.echo("destroy every copy of the old key file, and back up the new one offline")

    return done


def _passphrase_rotation(engine: sa.Engine, where: VaultLocation) -> _Rotation:
    from oathdesk.vault.passphrase import (
        adopt_pending_params,
        derive_master_key,
        pending_params,
    )

    current = read_params(engine)
    assert current is not None
    old = load_master_key(where)  # the current passphrase ($OATHDESK_PASSPHRASE or a prompt)
    new_passphrase = os.environ.get(NEW_PASSPHRASE_ENV) or _prompt_new_passphrase()
    new = derive_master_key(new_passphrase, pending_params(engine))
    _report_step("stored the new passphrase's parameters as pending")
    if new.key_id == old.key_id:
        raise InvalidInput("the new passphrase must differ from the current one")

    def done() -> None:
        click.echo("the vault now opens with the new passphrase only")

    return _Rotation(old, new, adopt=adopt_pending_params, done=done)


def _prompt_new_passphrase() -> str:
    import getpass
    import sys

    if not sys.stdin.isatty():
        raise InvalidInput(f"set {NEW_PASSPHRASE_ENV} to the new passphrase")
    first = getpass.getpass("New vault passphrase (input hidden): ")
    if first != getpass.getpass("Repeat it: "):
        raise InvalidInput("the passphrases differ; try again")
    return first


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite TARGET if it exists.")
@vault_option
def backup_command(target: Path, force: bool, vault_path: str | None) -> None:
    """Write an encrypted, consistent copy of the vault (safe while it is in use)."""
    vault, master_key = open_vault_and_key(vault_path)
    rows = write_backup(vault.engine, master_key, target, overwrite=force)
    with vault.unit_of_work(local_actor()) as work:
        work.audit("vault.backup", details={"file": str(target), "rows": rows})
    click.echo(
        f"wrote {target} ({rows} rows, encrypted, mode 0600); it opens only with the master key"
    )


@click.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@vault_option
def restore_command(source: Path, vault_path: str | None) -> None:
    """Restore a backup into a new, empty vault (same master key)."""
    where = location(vault_path)
    if where.sqlite_path is not None and where.sqlite_path.exists():
        raise Conflict(f"{where.display} exists; restore into a new path with --vault")
    kdf = backup_passphrase_params(source)
    if kdf is not None and not os.environ.get(MASTER_KEY_ENV):
        # A passphrase-sealed vault: its parameters travel in the backup's header.
        master_key = derive_master_key(read_passphrase(), kdf)
    else:
        master_key = _restore_master_key(where)
    if where.sqlite_path is not None:
        where.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = db.create_engine(where.database_url)
    try:
        db.upgrade(engine)
        rows = restore_backup(engine, master_key, source)
    except BaseException:
        engine.dispose()
        if where.sqlite_path is not None:  # leave no half-made vault file behind
            for leftover in (
                where.sqlite_path,
                *where.sqlite_path.parent.glob(where.sqlite_path.name + "-*"),
            ):
                leftover.unlink(missing_ok=True)
        raise
    vault = Vault.open(where, master_key)
    problems = vault.verify_audit()
    with vault.unit_of_work(local_actor()) as work:
        work.audit("vault.restored", details={"file": str(source), "rows": rows})
    click.echo(
        f"restored {rows} rows into {where.display}; audit chain "
        + ("intact" if not problems else f"BROKEN ({len(problems)} problems)")
    )


def _restore_master_key(where: VaultLocation) -> MasterKey:
    """The key the backup was made with. `oathdesk init` would make a new key, which cannot open
    the backup, so the error names the key file looked for and the ways to give the old key."""
    if not os.environ.get(MASTER_KEY_ENV) and not where.key_file.exists():
        raise MasterKeyError(
            f"no key file at {where.key_file}; a backup opens only with the master key of the "
            f"vault it came from: copy that key file there, or give it with {KEY_FILE_ENV}=PATH "
            f"or {MASTER_KEY_ENV}"
        )
    return load_master_key(where)
