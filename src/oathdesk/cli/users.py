"""`oathdesk user add|edit|list|show`."""

from __future__ import annotations

from contextlib import closing

import click

from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_reader,
    open_vault,
    print_json,
    print_json_items,
    print_table,
    vault_option,
)


@click.group("user")
def user_group() -> None:
    """The people tokens are for (by UPN)."""


@user_group.command("add")
@click.argument("upn")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--phone", default="", help="Phone number on file, for identity callbacks.")
@click.option("--notes", default="")
@vault_option
def user_add_command(
    upn: str, display_name: str, phone: str, notes: str, vault_path: str | None
) -> None:
    """Add a user."""
    user = open_vault(vault_path).add_user(
        local_actor(), upn, display_name=display_name, phone=phone, notes=notes
    )
    click.echo(f"added user {user.upn}")


@user_group.command("edit")
@click.argument("upn")
@click.option("--name", "display_name", default=None, help="New display name.")
@click.option(
    "--phone",
    default=None,
    help="New phone number on file (international, e.g. +44 20 7946 0958; '' clears it).",
)
@click.option("--notes", default=None, help="New notes (replace the old ones; '' clears them).")
@vault_option
def user_edit_command(
    upn: str,
    display_name: str | None,
    phone: str | None,
    notes: str | None,
    vault_path: str | None,
) -> None:
    """Change a user's display name, phone number on file or notes (admin; audited)."""
    if display_name is None and phone is None and notes is None:
        raise click.UsageError("say what to change: --name, --phone and/or --notes")
    vault = open_vault(vault_path)
    before = vault.get_user(upn)
    user = vault.update_user(
        local_actor(), upn, display_name=display_name, phone=phone, notes=notes
    )
    if user == before:
        click.echo(f"user {user.upn}: nothing changed")
        return
    click.echo(f"updated user {user.upn}: {user.display_name or '-'}, phone {user.phone or '-'}")


@user_group.command("list")
@vault_option
@json_option
def user_list_command(vault_path: str | None, as_json: bool) -> None:
    """List users."""
    with closing(open_reader(vault_path)) as reader:
        users = reader.list_users()
    if as_json:
        print_json_items(
            {"upn": u.upn, "display_name": u.display_name, "phone": u.phone} for u in users
        )
        return
    print_table(
        "users", ["UPN", "name", "phone"], [[u.upn, u.display_name, u.phone] for u in users]
    )


@user_group.command("show")
@click.argument("upn")
@vault_option
@json_option
def user_show_command(upn: str, vault_path: str | None, as_json: bool) -> None:
    """A user with their tokens."""
    with closing(open_reader(vault_path)) as reader:
        user = reader.get_user(upn)
        owned = reader.list_tokens(upn=user.upn)
    if as_json:
        print_json(
            {
                "upn": user.upn,
                "display_name": user.display_name,
                "phone": user.phone,
                "notes": user.notes,
                "tokens": [t.as_dict() for t in owned],
            }
        )
        return
    click.echo(f"{user.upn}  {user.display_name}  phone: {user.phone or '-'}")
    if user.notes:
        click.echo(f"notes: {user.notes}")
    print_table(
        "tokens",
        ["serial", "model", "state", "drift s"],
        [[t.serial, t.model, t.state.value, t.drift_seconds] for t in owned],
    )
