"""`oathdesk token ...`: add tokens and move them along their lifecycle.

Secrets come from standard input, a prompt without echo, a QR screenshot or an otpauth URI on
standard input; never from a command-line argument, where `ps` and shell history would keep them.

Other modules attach sub-commands (e.g. the NFC reader's `token info` and `token resync`) with one
line in ``EXTERNAL_COMMANDS``; they are imported only when used.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from oathdesk.errors import InvalidInput
from oathdesk.otp import Algorithm
from oathdesk.seed import ParsedSeed, generate_secret, parse_seed
from oathdesk.timetext import moment_text
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import NewToken, Token

# name -> (module, attribute of a click.Command), like the root command's COMMANDS.
EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("oathdesk.cli.burn", "token_info_command"),
    "resync": ("oathdesk.cli.burn", "token_resync_command"),
}


class TokenGroup(click.Group):
    """The commands defined here, plus those of ``EXTERNAL_COMMANDS``, loaded when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *EXTERNAL_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in EXTERNAL_COMMANDS:
            module_name, attribute = EXTERNAL_COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group("token", cls=TokenGroup)
def token_group() -> None:
    """Tokens: add, list, and move them from stock to delivery and purge."""


# Commands that take a secret accept stray arguments only to refuse them without echoing them:
# click's own error would quote the argument (very likely a secret typed where it must not be).
SECRET_SAFE = {"allow_extra_args": True}


def _refuse_arguments(ctx: click.Context) -> None:
    if ctx.args:
        raise InvalidInput(
            "secrets are never read from the command line (it was not used, and is not shown); "
            "remove it from your shell history and pipe the secret in on standard input"
        )


def _read_seed(qr_image: Path | None, generate: bool, algorithm: str) -> ParsedSeed:
    if generate:
        from oathdesk.seed import SeedForm

        return ParsedSeed(generate_secret(algorithm), SeedForm.BASE32)
    if qr_image is not None:
        from oathdesk.qr import decode_image

        return parse_seed(decode_image(qr_image))
    if sys.stdin.isatty():
        import getpass

        return parse_seed(getpass.getpass("Secret (base32, hex or otpauth URI; input hidden): "))
    text = sys.stdin.readline()
    if not text.strip():
        raise InvalidInput(
            "no secret on standard input; pipe it in, or use --qr-image or --generate"
        )
    return parse_seed(text)


@token_group.command("add", context_settings=SECRET_SAFE)
@click.option("--serial", required=True, help="The serial number printed on the token.")
@click.option("--model", default="", help="e.g. C202, miniOTP-2-i (defaults by kind).")
@click.option("--manufacturer", default="Token2", show_default=True)
@click.option(
    "--kind",
    type=click.Choice([k.value for k in TokenKind]),
    default="programmable",
    show_default=True,
)
@click.option("--user", "upn", help="Assign to this UPN right away.")
@click.option(
    "--qr-image",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the secret from a QR screenshot instead of standard input.",
)
@click.option("--generate", is_flag=True, help="Generate a new random seed (programmable tokens).")
@click.option("--algorithm", type=click.Choice([a.value for a in Algorithm]), default=None)
@click.option("--digits", type=click.IntRange(6, 10), default=None)
@click.option("--period", type=click.IntRange(1, 3600), default=None)
@vault_option
def token_add_command(
    serial: str,
    model: str,
    manufacturer: str,
    kind: str,
    upn: str | None,
    qr_image: Path | None,
    generate: bool,
    algorithm: str | None,
    digits: int | None,
    period: int | None,
    vault_path: str | None,
) -> None:
    """Add a token with its secret (from stdin, a hidden prompt, or a QR screenshot)."""
    _refuse_arguments(click.get_current_context())
    vault = open_vault(vault_path)
    seed = _read_seed(qr_image, generate, algorithm or "sha1")
    item = NewToken(
        serial=serial.strip(),
        manufacturer=manufacturer,
        model=model or ("programmable" if kind == "programmable" else "classic"),
        kind=TokenKind(kind),
        secret=seed.secret,
        algorithm=Algorithm.parse(algorithm or seed.algorithm or "sha1"),
        digits=digits or seed.digits or 6,
        period=period or seed.period or 30,
        upn=upn,
    )
    token = vault.add_token(local_actor(), item, source="cli")
    click.echo(
        f"added token {token.serial} ({token.state.value}); its secret is encrypted in the vault"
    )


def _token_rows(tokens: list[Token]) -> list[list[Any]]:
    return [
        [
            t.serial,
            t.model,
            t.kind.value,
            t.state.value,
            t.upn,
            t.tracking,
            "yes" if t.has_secret else "no",
            f"{t.updated_at:%Y-%m-%d}",
        ]
        for t in tokens
    ]


@token_group.command("list")
@click.option("--state", type=click.Choice([s.value for s in TokenState]))
@click.option("--user", "upn")
@vault_option
@json_option
def token_list_command(
    state: str | None, upn: str | None, vault_path: str | None, as_json: bool
) -> None:
    """List tokens."""
    with closing(open_reader(vault_path)) as reader:
        tokens = reader.list_tokens(state=state, upn=upn)
    if as_json:
        print_json_items(t.as_dict() for t in tokens)
        return
    print_table(
        "tokens",
        ["serial", "model", "kind", "state", "user", "tracking", "secret held", "since"],
        _token_rows(tokens),
    )


@token_group.command("show")
@click.argument("serial")
@vault_option
@json_option
def token_show_command(serial: str, vault_path: str | None, as_json: bool) -> None:
    """One token (never its secret)."""
    from oathdesk.textsafe import one_line  # a stored model or UPN may hold control characters

    with closing(open_reader(vault_path)) as reader:
        token = reader.get_token(serial)
    if as_json:
        print_json(token.as_dict())
        return
    now = datetime.now(UTC)
    for key, value in token.as_dict().items():
        if key not in ("id", "version") and value not in (None, ""):
            if key.endswith("_at") and isinstance(value, str):
                # In this machine's zone with its name (timetext), as the console shows them.
                value = moment_text(datetime.fromisoformat(value), now)
            click.echo(f"{key.replace('_', ' '):<18} {one_line(str(value))}")


@token_group.command("assign")
@click.argument("serial")
@click.argument("upn")
@vault_option
def token_assign_command(serial: str, upn: str, vault_path: str | None) -> None:
    """Assign a token to a user."""
    token = open_vault(vault_path).assign(local_actor(), serial, upn)
    click.echo(f"token {token.serial} is assigned to {token.upn}")


def _move(
    serial: str,
    vault_path: str | None,
    target: TokenState,
    *,
    details: dict[str, Any] | None = None,
    carrier: str | None = None,
    tracking: str | None = None,
) -> None:
    token = open_vault(vault_path).move(
        local_actor(), serial, target, details=details, carrier=carrier, tracking=tracking
    )
    note = "; its secret is erased" if target.value in ("lost", "revoked", "retired") else ""
    click.echo(f"token {token.serial} is now {token.state.value}{note}")


def _simple_move(name: str, target: TokenState, help_text: str) -> None:
    @token_group.command(name, help=help_text)
    @click.argument("serial")
    @vault_option
    def command(serial: str, vault_path: str | None) -> None:
        _move(serial, vault_path, target)


_simple_move("burned", TokenState.BURNED, "Record that the seed was burned onto the token.")
_simple_move("registered", TokenState.REGISTERED, "Record that the token is registered in Entra.")


@token_group.command("ship")
@click.argument("serial")
@click.option("--carrier", required=True, help="e.g. DHL, Royal Mail, internal courier.")
@click.option("--tracking", required=True, help="The tracking reference.")
@vault_option
def token_ship_command(serial: str, carrier: str, tracking: str, vault_path: str | None) -> None:
    """Record that the token is in the post."""
    _move(serial, vault_path, TokenState.SHIPPED, carrier=carrier, tracking=tracking)


@token_group.command("deliver")
@click.argument("serial")
@click.option("--override-reason", help="Why delivery is confirmed without a code check today.")
@vault_option
def token_deliver_command(serial: str, override_reason: str | None, vault_path: str | None) -> None:
    """Confirm the user has the token and it works (after `oathdesk verify`)."""
    from oathdesk.services.token_checks import confirm_delivery

    token = confirm_delivery(
        open_vault(vault_path), local_actor(), serial, override_reason=override_reason
    )
    click.echo(f"token {token.serial} is now {token.state.value}")


def _reasoned_move(name: str, target: TokenState, help_text: str) -> None:
    @token_group.command(name, help=help_text)
    @click.argument("serial")
    @click.option("--reason", required=True)
    @vault_option
    def command(serial: str, reason: str, vault_path: str | None) -> None:
        _move(serial, vault_path, target, details={"reason": reason})


_reasoned_move("lost", TokenState.LOST, "The token is lost; its secret is erased.")
_reasoned_move("revoke", TokenState.REVOKED, "Revoke the token; its secret is erased.")
_reasoned_move("retire", TokenState.RETIRED, "Take the token out of service for good.")


@token_group.command("reassign", context_settings=SECRET_SAFE)
@click.argument("serial")
@click.argument("upn")
@click.option("--qr-image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--generate", is_flag=True, help="Generate the new seed.")
@vault_option
def token_reassign_command(
    serial: str, upn: str, qr_image: Path | None, generate: bool, vault_path: str | None
) -> None:
    """Give a programmable token to another user with a new seed."""
    _refuse_arguments(click.get_current_context())
    seed = _read_seed(qr_image, generate, "sha1")
    token = open_vault(vault_path).reassign(local_actor(), serial, upn, seed.secret)
    click.echo(f"token {token.serial} is reassigned to {token.upn} with a new seed; burn it again")


@token_group.command("purge")
@click.argument("serial")
@click.option("--reason", default="delivered and working", show_default=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@vault_option
def token_purge_command(serial: str, reason: str, yes: bool, vault_path: str | None) -> None:
    """Erase a delivered token's secret for good."""
    if not yes:
        click.confirm(f"Erase the secret of token {serial} for good?", abort=True)
    token = open_vault(vault_path).purge(local_actor(), serial, reason=reason)
    click.echo(f"the secret of token {token.serial} is erased")
