"""`oathdesk key rotate`, `oathdesk backup` and `oathdesk restore`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from oathdesk.cli.vault_context import local_actor, location, open_vault, vault_option
from oathdesk.errors import Conflict, InvalidInput
from oathdesk.vault import db
from oathdesk.vault.backup import restore_backup, write_backup
from oathdesk.vault.config import load_master_key
from oathdesk.vault.keys import MASTER_KEY_ENV, MasterKey, read_key_file, write_key_file
from oathdesk.vault.rotation import remaining, rotate_master_key
from oathdesk.vault.vault import Vault


@click.group("key")
def key_group() -> None:
    """The vault's master key."""


@key_group.command("rotate")
@vault_option
def key_rotate_command(vault_path: str | None) -> None:
    """Re-wrap every data key under a new master key file (resumable if interrupted)."""
    where = location(vault_path)
    if os.environ.get(MASTER_KEY_ENV):
        raise InvalidInput(
            f"rotation replaces the key file; unset {MASTER_KEY_ENV} and use the key file"
        )
    old = read_key_file(where.key_file)
    pending = where.key_file.with_name(where.key_file.name + ".new")
    if pending.exists():
        new = read_key_file(pending)
        click.echo(f"resuming an interrupted rotation with {pending}")
    else:
        new = MasterKey.generate()
        write_key_file(pending, new)
    engine = db.create_engine(where.database_url)
    moved = rotate_master_key(engine, old, new)
    if remaining(engine, new):
        raise Conflict("some keys are wrapped by a third master key; restore from a backup")
    os.replace(pending, where.key_file)
    vault = Vault.open(where, new)
    with vault.transaction() as conn:
        vault.audit(
            conn,
            local_actor(),
            "key.rotated",
            details={
                "old_master_key_id": old.key_id,
                "new_master_key_id": new.key_id,
                "rewrapped": moved,
            },
        )
    click.echo(f"re-wrapped {moved} key(s); {where.key_file} now holds the new master key")
    click.echo("destroy every copy of the old key file, and back up the new one offline")


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@vault_option
def backup_command(target: Path, vault_path: str | None) -> None:
    """Write an encrypted, consistent copy of the vault (safe while it is in use)."""
    vault = open_vault(vault_path)
    where = location(vault_path)
    rows = write_backup(vault.engine, load_master_key(where), target)
    with vault.transaction() as conn:
        vault.audit(
            conn, local_actor(), "vault.backup", details={"file": str(target), "rows": rows}
        )
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
    master_key = load_master_key(where)
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
    with vault.transaction() as conn:
        vault.audit(
            conn, local_actor(), "vault.restored", details={"file": str(source), "rows": rows}
        )
    click.echo(
        f"restored {rows} rows into {where.display}; audit chain "
        + ("intact" if not problems else f"BROKEN ({len(problems)} problems)")
    )
