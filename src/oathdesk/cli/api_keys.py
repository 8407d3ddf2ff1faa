"""`oathdesk operator api-key create|list|revoke`: keys for the REST API, per operator."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
    print_table,
    vault_option,
)
from oathdesk.timetext import moment_text
from oathdesk.vault.api_keys import MAX_DAYS, ApiKey, ApiKeyStore


@click.group("api-key")
def api_key_group() -> None:
    """REST API keys: each acts as its operator, with their role; shown once at creation."""


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "operator": key.operator,
        "name": key.name,
        "status": key.status(),
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@api_key_group.command("create")
@click.argument("operator")
@click.option("--name", required=True, help="What uses the key, e.g. ci-export.")
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=365,
    show_default=True,
    help="How long the key works.",
)
@click.option("--no-expiry", is_flag=True, help="The key works until it is revoked.")
@vault_option
@json_option
def api_key_create_command(
    operator: str, name: str, days: int, no_expiry: bool, vault_path: str | None, as_json: bool
) -> None:
    """Create an API key for OPERATOR and print it once (it is stored only as a hash)."""
    created = ApiKeyStore(open_vault(vault_path)).create(
        local_actor(), operator, name, days=None if no_expiry else days
    )
    if as_json:
        print_json({**_key_json(created.key), "key": created.secret_text})
        return
    key = created.key
    until = f"until {key.expires_at:%Y-%m-%d}" if key.expires_at else "until revoked"
    click.echo(
        f"API key {key.id} ({key.name}) for {key.operator}, valid {until}; "
        "shown only now, store it in your secret manager:",
        err=True,
    )
    click.echo(created.secret_text)


@api_key_group.command("list")
@click.argument("operator", required=False)
@vault_option
@json_option
def api_key_list_command(operator: str | None, vault_path: str | None, as_json: bool) -> None:
    """List API keys (of one operator, or all)."""
    keys = ApiKeyStore(open_vault(vault_path)).list(local_actor(), operator)
    if as_json:
        print_json([_key_json(key) for key in keys])
        return
    now = datetime.now(UTC)
    print_table(
        "API keys",
        ["id", "operator", "name", "status", "created", "last used", "expires"],
        [
            [
                k.id,
                k.operator,
                k.name,
                k.status(),
                f"{k.created_at:%Y-%m-%d}",
                # In this machine's zone with its name: a bare UTC clock time reads as local.
                moment_text(k.last_used_at, now) if k.last_used_at else "never",
                f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "never",
            ]
            for k in keys
        ],
    )


@api_key_group.command("revoke")
@click.argument("key_id")
@vault_option
def api_key_revoke_command(key_id: str, vault_path: str | None) -> None:
    """Revoke an API key for good (requests with it are refused from now on)."""
    key = ApiKeyStore(open_vault(vault_path)).revoke(local_actor(), key_id)
    click.echo(f"API key {key.id} ({key.name}) of {key.operator} is revoked")
