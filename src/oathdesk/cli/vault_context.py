"""Shared plumbing for commands that use the vault: where it is, who acts, how to print."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from oathdesk.platform_io import login_name
from oathdesk.vault.config import VaultLocation, load_master_key, locate
from oathdesk.vault.models import Actor

if TYPE_CHECKING:  # imported when a command opens the vault: reading commands never do
    from oathdesk.vault.keys import MasterKey
    from oathdesk.vault.quickread import VaultReader
    from oathdesk.vault.vault import Vault

VAULT_HELP = (
    "The SQLite vault file (default: $OATHDESK_VAULT, else $OATHDESK_DATABASE_URL, else "
    "vault.sqlite3 in $XDG_DATA_HOME/oathdesk, %LOCALAPPDATA%\\oathdesk on Windows, or "
    "~/.local/share/oathdesk)."
)


def vault_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--vault", "vault_path", metavar="PATH", help=VAULT_HELP)(command)


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(command)


def location(vault_path: str | None) -> VaultLocation:
    return locate(vault_path)


def open_vault(vault_path: str | None) -> Vault:
    return open_vault_and_key(vault_path)[0]


def open_vault_and_key(vault_path: str | None) -> tuple[Vault, MasterKey]:
    """The open vault and its master key (backups are encrypted under a key derived from it)."""
    where = locate(vault_path)
    if where.sqlite_path is not None and not where.sqlite_path.exists():
        from oathdesk.errors import NotFound

        raise NotFound(f"no vault at {where.display}; run `oathdesk init` first (or pass --vault)")
    master_key = load_master_key(where)
    from oathdesk.vault.vault import Vault

    return Vault.open(where, master_key), master_key


def open_reader(vault_path: str | None) -> VaultReader:
    """The vault for a command that only reads: on SQLite the quick read path
    (``vault.quickread``, no SQLAlchemy: such commands start several times faster), else (or
    when that path declines: PostgreSQL, a read-only file, a wrong key...) the ``Vault``."""
    where = locate(vault_path)
    if where.sqlite_path is not None and not where.sqlite_path.exists():
        from oathdesk.errors import NotFound

        raise NotFound(f"no vault at {where.display}; run `oathdesk init` first (or pass --vault)")
    master_key = load_master_key(where)
    from oathdesk.vault.quickread import QuickReader

    quick = QuickReader.open(where, master_key)
    if quick is not None:
        return quick
    from oathdesk.vault.vault import Vault

    return Vault.open(where, master_key)


def local_actor() -> Actor:
    """On the server host, whoever holds the key file acts as a local admin, audited as such."""
    return Actor(f"local:{login_name()}", "admin")


def print_json(data: Any) -> None:
    if isinstance(data, list):
        print_json_items(data)
        return
    click.echo(json.dumps(data, indent=2, default=str))


def print_json_items(items: Iterable[Any]) -> None:
    """``print_json`` of a list, written item by item: the same text as ``json.dumps`` of the
    whole list, without holding it (a list of 100,000 tokens took 665 MB as one string)."""
    write = sys.stdout.write
    opened = False
    for item in items:
        # An item's lines, one level deeper (a JSON text holds no raw line break in a value).
        indented = json.dumps(item, indent=2, default=str).replace("\n", "\n  ")
        write(("[\n  " if not opened else ",\n  ") + indented)
        opened = True
    write("\n]\n" if opened else "[]\n")  # run() flushes what is left


def print_table(title: str, headings: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from oathdesk.textsafe import one_line

    # Cells hold what files and people typed (a vendor's model name): control characters
    # escaped, so none can forge a line or act on the terminal; and (below) plain Text, never
    # rich markup, so none can restyle or crash the table.
    cells = [[one_line("" if cell is None else str(cell)) for cell in row] for row in rows]
    if not sys.stdout.isatty():
        from oathdesk.cli.table_text import boxed_table

        drawn = boxed_table(title, headings, cells)  # rich's drawing, without importing rich
        if drawn is not None:
            click.echo(drawn, nl=False)
            return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for heading in headings:
        table.add_column(heading, no_wrap=True)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
