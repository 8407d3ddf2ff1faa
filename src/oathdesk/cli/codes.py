"""`oathdesk code`, `codes` and `check`: the helpdesk's code generator, from a secret alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from oathdesk.cli.code_request import CodeRequest, resolve_code_request
from oathdesk.cli.secret_input import ENV_VAR, read_secret_text
from oathdesk.errors import InvalidInput
from oathdesk.otp import (
    PROFILE_NAMES,
    AcceptanceProfile,
    TimedCode,
    acceptance_profile,
    longest_valid_code,
    measure_drift,
    timed_codes,
    totp,
)
from oathdesk.timetext import moment_text, until_text

SECRET_HELP = (
    f"SECRET is base32, hex or an otpauth:// URI; '-' reads it from stdin, else ${ENV_VAR}."
)


def code_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every code command shares (the same as `oathdesk code`'s fast path)."""
    for option in reversed(
        [
            click.option(
                "--at", "at", metavar="TIME", help="ISO 8601 or Unix seconds (default now)."
            ),
            click.option(
                "--algorithm", metavar="sha1|sha256|sha512", help="HMAC hash (default sha1)."
            ),
            click.option("--digits", type=int, help="Code length, 6 to 10 (default 6)."),
            click.option("--period", type=int, help="Time step in seconds (default 30)."),
        ]
    ):
        command = option(command)
    return command


def window_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--window",
                "window",
                type=click.Choice(PROFILE_NAMES, case_sensitive=False),
                default="entra",
                show_default=True,
                help="Acceptance profile behind every 'accepted until'.",
            ),
            click.option("--behind", type=int, help="Steps accepted behind (custom profile)."),
            click.option("--ahead", type=int, help="Steps accepted ahead (custom profile)."),
        ]
    ):
        command = option(command)
    return command


def _request(
    secret: str | None,
    at: str | None,
    algorithm: str | None,
    digits: int | None,
    period: int | None,
) -> CodeRequest:
    return resolve_code_request(
        read_secret_text(secret), at=at, algorithm=algorithm, digits=digits, period=period
    )


def _utc(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


def _code_json(item: TimedCode) -> dict[str, Any]:
    return {
        "step_offset": item.step_offset,
        "code": item.code,
        "shown_from": item.shown_from.isoformat(),
        "shown_until": item.shown_until.isoformat(),
        "accepted_from": item.accepted_from.isoformat(),
        "accepted_until": item.accepted_until.isoformat(),
    }


@click.command("code", epilog=SECRET_HELP)
@click.argument("secret", required=False)
@code_options
def code_command(
    secret: str | None,
    at: str | None,
    algorithm: str | None,
    digits: int | None,
    period: int | None,
) -> None:
    """Print the current code for SECRET (like Token2's `t2otp.exe SECRET`)."""
    request = _request(secret, at, algorithm, digits, period)
    click.echo(
        totp(
            request.key,
            request.at,
            algorithm=request.algorithm,
            digits=request.digits,
            period=request.period,
        )
    )


@click.command("codes", epilog=SECRET_HELP)
@click.argument("secret", required=False)
@code_options
@window_options
@click.option("--past", type=click.IntRange(0, 10_000), default=2, show_default=True)
@click.option("--future", type=click.IntRange(0, 10_000), default=2, show_default=True)
@click.option("--longest", is_flag=True, help="Only the code that stays accepted longest (email).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def codes_command(
    secret: str | None,
    at: str | None,
    algorithm: str | None,
    digits: int | None,
    period: int | None,
    window: str,
    behind: int | None,
    ahead: int | None,
    past: int,
    future: int,
    longest: bool,
    as_json: bool,
) -> None:
    """Past, current and future codes with when each is shown and until when it is accepted."""
    request = _request(secret, at, algorithm, digits, period)
    profile = acceptance_profile(window, period=request.period, behind=behind, ahead=ahead)
    algorithm, digits, period = request.algorithm, request.digits, request.period
    if longest:
        best = longest_valid_code(
            request.key,
            request.at,
            profile=profile,
            algorithm=algorithm,
            digits=digits,
            period=period,
        )
        if as_json:
            click.echo(json.dumps({"profile": profile.name, **_code_json(best)}, indent=2))
            return
        click.echo(best.code)
        # "in ..." counts from the moment asked about (--at, default now).
        asked = datetime.fromtimestamp(request.at, UTC)
        until = best.accepted_until
        in_utc = moment_text(until, asked, UTC)
        also = "" if moment_text(until, asked) == in_utc else f", {in_utc}"
        click.echo(
            f"accepted until {until_text(until, asked)}{also}, "
            f"under the {profile.describe(request.period)} profile; step offset "
            f"{best.step_offset:+d}",
            err=True,
        )
        return
    items = timed_codes(
        request.key,
        request.at,
        past=past,
        future=future,
        profile=profile,
        algorithm=algorithm,
        digits=digits,
        period=period,
    )
    if as_json:
        payload = {"profile": profile.name, "codes": [_code_json(item) for item in items]}
        click.echo(json.dumps(payload, indent=2))
        return
    _print_codes_table(items, profile, request.period, datetime.fromtimestamp(request.at, UTC))


def _print_codes_table(
    items: list[TimedCode], profile: AcceptanceProfile, period: int, asked: datetime
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"accepted under the {profile.describe(period)} profile")
    for heading in ("offset", "code", "shown (local)", "shown (UTC)", "accepted until (local)"):
        table.add_column(heading, justify="right" if heading == "offset" else "left", no_wrap=True)
    for item in items:
        style = "bold" if item.step_offset == 0 else None
        table.add_row(
            f"{item.step_offset:+d}",
            item.code,
            f"{item.shown_from.astimezone():%H:%M:%S}-{item.shown_until.astimezone():%H:%M:%S}",
            f"{_utc(item.shown_from)}-{_utc(item.shown_until)}",
            moment_text(item.accepted_until, asked),
            style=style,
        )
    Console(soft_wrap=True, width=100).print(table)


def _split_check_arguments(arguments: tuple[str, ...]) -> tuple[str | None, str, str | None]:
    """[SECRET] CODE [NEXT_CODE]: codes are all digits and a secret never is."""
    values = list(arguments)
    secret = None
    if values and not values[0].replace(" ", "").isdigit():
        secret = values.pop(0)
    if not 1 <= len(values) <= 2:
        raise InvalidInput("give the code the token shows, and optionally the next one")
    return secret, values[0], values[1] if len(values) == 2 else None


@click.command("check", epilog=SECRET_HELP)
@click.argument("arguments", nargs=-1, required=True, metavar="[SECRET] CODE [NEXT_CODE]")
@code_options
@click.option(
    "--search",
    type=click.Choice(PROFILE_NAMES, case_sensitive=False),
    default="entra-activation",
    show_default=True,
    help="How far to search for the code (drift).",
)
@window_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_command(
    arguments: tuple[str, ...],
    at: str | None,
    algorithm: str | None,
    digits: int | None,
    period: int | None,
    search: str,
    window: str,
    behind: int | None,
    ahead: int | None,
    as_json: bool,
) -> None:
    """Check a code read off a token: does it match, at which step, and how far is its clock off.

    Exit status 0 on a match, 1 on none. Give NEXT_CODE (the code after the button is pressed
    again, one period later) to rule out a chance match during a wide drift search.
    """
    secret, code, next_code = _split_check_arguments(arguments)
    request = _request(secret, at, algorithm, digits, period)
    search_profile = acceptance_profile(search, period=request.period, behind=behind, ahead=ahead)
    sign_in = acceptance_profile(window, period=request.period, behind=behind, ahead=ahead)
    found = measure_drift(
        request.key,
        code,
        request.at,
        next_code=next_code,
        algorithm=request.algorithm,
        digits=request.digits,
        period=request.period,
        max_steps=max(search_profile.behind, search_profile.ahead),
    )
    inside = found is not None and -sign_in.behind <= found.step_offset <= sign_in.ahead
    if as_json:
        result: dict[str, Any] = {"match": found is not None, "profile": sign_in.name}
        if found is not None:
            result |= {
                "step_offset": found.step_offset,
                "drift_seconds": found.drift_seconds,
                "confirmed_by_next_code": found.confirmed_by_next_code,
                "inside_window": inside,
            }
        click.echo(json.dumps(result, indent=2))
    elif found is None:
        click.echo(f"no match within the {search_profile.describe(request.period)} search")
    else:
        direction = "ahead of" if found.drift_seconds > 0 else "behind"
        clock = (
            "in step with this machine"
            if found.drift_seconds == 0
            else f"{abs(found.drift_seconds)} s {direction} this machine"
        )
        verdict = "inside" if inside else "OUTSIDE"
        click.echo(
            f"match at step offset {found.step_offset:+d}: drift {found.drift_seconds:+d} s "
            f"(token clock {clock}); {verdict} the {sign_in.describe(request.period)} window"
        )
    if found is None:
        raise click.exceptions.Exit(1)
