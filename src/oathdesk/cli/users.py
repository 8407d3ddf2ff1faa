"""`oathdesk user add|list|show`."""

from __future__ import annotations

import click

from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
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


@user_group.command("list")
@vault_option
@json_option
def user_list_command(vault_path: str | None, as_json: bool) -> None:
    """List users."""
    users = open_vault(vault_path).list_users()
    if as_json:
        print_json(
            [{"upn": u.upn, "display_name": u.display_name, "phone": u.phone} for u in users]
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
    vault = open_vault(vault_path)
    user = vault.get_user(upn)
    owned = vault.list_tokens(upn=user.upn)
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
