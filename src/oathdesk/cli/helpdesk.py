"""`oathdesk reveal`, `verify` and `settings`: the helpdesk on the phone (`drift`: cli/drift.py)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

import click

from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
    vault_option,
)
from oathdesk.errors import InvalidInput
from oathdesk.otp import PROFILE_NAMES, TimedCode
from oathdesk.services.alerts import AlertSink, alert_settings
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealRequest,
    VerificationMethod,
    reveal_code,
)
from oathdesk.services.token_checks import verify_token
from oathdesk.timeparse import parse_instant
from oathdesk.timetext import iso_utc, until_text
from oathdesk.vault.vault import Actor, Vault


def _approver(vault: Vault, name: str | None) -> Actor | None:
    if name is None:
        return None
    from oathdesk.vault.operators import OperatorDirectory

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"{name}'s password (input hidden): ")
        code = getpass.getpass(f"{name}'s current oathdesk code: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
        code = sys.stdin.readline().strip()
    return OperatorDirectory(vault).approve(name, password, code)


def _until(item: TimedCode, at: float) -> str:
    # "in ..." counts from the moment the codes were computed, as the codes themselves do.
    return until_text(item.accepted_until, datetime.fromtimestamp(at, UTC))


def _grouped(code: str) -> str:
    middle = len(code) // 2
    return f"{code[:middle]} {code[middle:]}"


def _code_json(item: TimedCode) -> dict[str, Any]:
    """The REST API's CodeOut (web/api/reveal.py): same fields, same meaning, same format."""
    return {
        "code": item.code,
        "step_offset": item.step_offset,
        "shown_from": iso_utc(item.shown_from),
        "shown_until": iso_utc(item.shown_until),
        "accepted_until": iso_utc(item.accepted_until),
    }


@click.command("reveal")
@click.argument("upn")
@click.option(
    "--method",
    type=click.Choice([m.value for m in VerificationMethod]),
    required=True,
    help="How the caller's identity was verified.",
)
@click.option("--ticket", required=True, help="The ticket reference of this call.")
@click.option("--note", default="", help="Free text: who confirmed, what was checked.")
@click.option(
    "--channel",
    type=click.Choice([c.value for c in Channel]),
    required=True,
    help="How the code is passed on (email gets the longest-valid code).",
)
@click.option("--serial", help="Which token, if the user has several.")
@click.option("--override-reason", help="Needed for a token already delivered.")
@click.option(
    "--approver", help="Four-eyes rule: the approving operator (password and code asked)."
)
@vault_option
@json_option
def reveal_command(
    upn: str,
    method: str,
    ticket: str,
    note: str,
    channel: str,
    serial: str | None,
    override_reason: str | None,
    approver: str | None,
    vault_path: str | None,
    as_json: bool,
) -> None:
    """Give a verified caller a code from their token's stored seed (never the seed)."""
    alerts = alert_settings(os.environ)  # a mistake in them is said before anything is done
    vault = open_vault(vault_path)
    request = RevealRequest(
        upn=upn,
        check=IdentityCheck(VerificationMethod(method), ticket, note),
        channel=Channel(channel),
        serial=serial,
        override_reason=override_reason,
        approver=_approver(vault, approver),
    )
    result = reveal_code(vault, local_actor(), request, AlertSink(alerts, vault))
    if as_json:
        print_json(
            {
                "serial": result.token.serial,
                "model": result.token.model,
                "upn": result.token.upn,
                "profile": result.profile,
                "at": result.at,
                "channel": result.channel.value,
                "current": _code_json(result.current),
                "longest": _code_json(result.longest),
                "recommended": "longest" if result.recommended is result.longest else "current",
            }
        )
        return
    click.echo(
        f"token {result.token.serial} ({result.token.model}) of {result.token.upn}, "
        f"profile {result.profile}"
    )
    click.echo(
        f"read out now:   {_grouped(result.current.code)}   "
        f"accepted until {_until(result.current, result.at)}"
    )
    click.echo(
        f"longest-valid:  {_grouped(result.longest.code)}   "
        f"accepted until {_until(result.longest, result.at)}"
    )
    if result.channel is Channel.EMAIL:
        click.echo("for email, send the longest-valid code")


@click.command("verify")
@click.argument("upn")
@click.argument("code")
@click.argument("next_code", required=False)
@click.option("--serial", help="Which token, if the user has several.")
@click.option("--at", "at", metavar="TIME", help="When the code was read (default now).")
@vault_option
@json_option
def verify_command(
    upn: str,
    code: str,
    next_code: str | None,
    serial: str | None,
    at: str | None,
    vault_path: str | None,
    as_json: bool,
) -> None:
    """Check a code the user reads off their token; measure and record its clock drift."""
    result = verify_token(
        open_vault(vault_path),
        local_actor(),
        upn,
        code,
        next_code,
        serial=serial,
        at=None if at is None else parse_instant(at),
    )
    found = result.measurement
    if as_json:
        print_json(
            {
                "serial": result.token.serial,
                "match": found is not None,
                "step_offset": found.step_offset if found else None,
                "drift_seconds": found.drift_seconds if found else None,
                "inside_window": result.inside_window,
                "profile": result.profile,
            }
        )
    elif found is None:
        click.echo(
            f"no match for token {result.token.serial} within a day either way: "
            "ask the user to read the code again, or check the token and the user"
        )
    else:
        where = "inside" if result.inside_window else "OUTSIDE"
        click.echo(
            f"token {result.token.serial}: match, drift {found.drift_seconds:+d} s, "
            f"{where} the {result.profile} sign-in window; measurement recorded"
        )
    if found is None:
        raise click.exceptions.Exit(1)


SETTING_TYPES: dict[str, Any] = {
    "acceptance_profile": click.Choice([p for p in PROFILE_NAMES if p != "custom"]),
    "retention_days": click.IntRange(0, 3650),
    "undelivered_warning_days": click.IntRange(1, 3650),
    "max_tokens_per_user": click.IntRange(1, 100),
    "reveal_limit_per_user": click.IntRange(0, 1000),
    "reveal_limit_per_operator": click.IntRange(0, 100000),
    "four_eyes": click.BOOL,
}


@click.group("settings")
def settings_group() -> None:
    """Policy settings: acceptance profile, retention, reveal limits, four-eyes rule."""


@settings_group.command("show")
@vault_option
@json_option
def settings_show_command(vault_path: str | None, as_json: bool) -> None:
    current = open_vault(vault_path).settings().__dict__
    # Alerts are set by the environment, not the vault: what this shell's environment says
    # (a server's own environment may differ; `oathdesk serve` says its own at start-up).
    alerts = alert_settings(os.environ).describe()
    if as_json:
        print_json({**current, "alerts": alerts})
        return
    for key, value in current.items():
        click.echo(f"{key:<26} {value}")
    click.echo(f"{'alerts (environment)':<26} {alerts}")


@settings_group.command("set")
@click.argument("name", type=click.Choice(sorted(SETTING_TYPES)))
@click.argument("value")
@vault_option
def settings_set_command(name: str, value: str, vault_path: str | None) -> None:
    try:
        parsed = SETTING_TYPES[name].convert(value, None, None)
    except click.BadParameter as exc:
        raise InvalidInput(f"{name}: {exc.message}") from None
    open_vault(vault_path).update_settings(local_actor(), **{name: parsed})
    click.echo(f"{name} = {parsed}")
