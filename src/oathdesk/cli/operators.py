"""`oathdesk operator add|list|disable|enable|reset-totp` (`operator api-key`: cli/api_keys.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from oathdesk.cli.api_keys import api_key_group
from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
    print_table,
    vault_option,
)
from oathdesk.errors import InvalidInput
from oathdesk.timetext import iso_utc, moment_text
from oathdesk.vault.operators import Enrolment, OperatorDirectory


@click.group("operator")
def operator_group() -> None:
    """Console operators: roles admin, helpdesk, auditor; password plus their own TOTP."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise InvalidInput("no password on standard input")
        return password
    import getpass

    first = getpass.getpass("Password for the new operator (input hidden): ")
    if first != getpass.getpass("Repeat it: "):
        raise InvalidInput("the passwords differ; try again")
    return first


def _show_enrolment(enrolment: Enrolment) -> None:
    from oathdesk.qr import terminal_qr

    click.echo(f"{enrolment.operator} scans this once with an authenticator app (shown only now):")
    click.echo(terminal_qr(enrolment.otpauth_uri))
    click.echo(enrolment.otpauth_uri)


@operator_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "helpdesk", "auditor"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@vault_option
def operator_add_command(
    name: str, role: str, password_stdin: bool, vault_path: str | None
) -> None:
    """Add an operator and show their TOTP enrolment QR code once."""
    directory = OperatorDirectory(open_vault(vault_path))
    _show_enrolment(directory.add(local_actor(), name, role, _read_password(password_stdin)))


@operator_group.command("list")
@vault_option
@json_option
def operator_list_command(vault_path: str | None, as_json: bool) -> None:
    """List operators."""
    found = OperatorDirectory(open_vault(vault_path)).list()
    if as_json:
        print_json(
            [
                {
                    "name": o.name,
                    "role": o.role.value,
                    "disabled": o.disabled,
                    "locked_until": iso_utc(o.locked_until) if o.locked_until else None,
                }
                for o in found
            ]
        )
        return
    now = datetime.now(UTC)

    def status(locked_until: datetime | None, disabled: bool) -> str:
        if disabled:
            return "disabled"
        if locked_until is not None and locked_until > now:
            # In this machine's zone, with its name: a bare UTC clock time reads as local.
            return f"locked until {moment_text(locked_until, now)}"
        return "active"

    print_table(
        "operators",
        ["name", "role", "status"],
        [[o.name, o.role.value, status(o.locked_until, o.disabled)] for o in found],
    )


@operator_group.command("disable")
@click.argument("name")
@vault_option
def operator_disable_command(name: str, vault_path: str | None) -> None:
    """Disable an operator (their sign-ins are refused from now on)."""
    OperatorDirectory(open_vault(vault_path)).disable(local_actor(), name)
    click.echo(f"operator {name} is disabled")


@operator_group.command("enable")
@click.argument("name")
@vault_option
def operator_enable_command(name: str, vault_path: str | None) -> None:
    """Let a disabled operator sign in again (same password and TOTP; lockout cleared)."""
    OperatorDirectory(open_vault(vault_path)).enable(local_actor(), name)
    click.echo(f"operator {name} is enabled")


@operator_group.command("reset-totp")
@click.argument("name")
@vault_option
def operator_reset_totp_command(name: str, vault_path: str | None) -> None:
    """Give an operator a new TOTP secret (lost phone) and unlock them."""
    _show_enrolment(OperatorDirectory(open_vault(vault_path)).reset_totp(local_actor(), name))


operator_group.add_command(api_key_group)
