"""`oathdesk drift`: tokens whose clock is near or beyond the sign-in window.

A module of its own, apart from the helpdesk's reveal commands, so that this read starts quickly
(issue 15): on SQLite it reads through ``vault.quickread`` and computes the report with
``services.drift``, loading neither SQLAlchemy nor the reveal path.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, cast

import click

from oathdesk.cli.vault_context import (
    json_option,
    open_reader,
    print_json,
    print_table,
    vault_option,
)
from oathdesk.services.drift import drift_rows
from oathdesk.vault.quickread import QuickReader

if TYPE_CHECKING:
    from oathdesk.vault.vault import Vault


@click.command("drift")
@vault_option
@json_option
def drift_command(vault_path: str | None, as_json: bool) -> None:
    """Tokens whose clock is near or beyond the sign-in window, with trend and forecast."""
    with closing(open_reader(vault_path)) as reader:
        if isinstance(reader, QuickReader):
            measured = reader.list_tokens(drift_measured=True)
            profile = reader.settings().acceptance_profile
            rows = drift_rows(measured, reader.drift_history(), profile)
        else:  # the Vault (PostgreSQL...): its report reads a page of tokens at a time
            from oathdesk.services.token_checks import drift_report

            rows = drift_report(cast("Vault", reader))
    if as_json:
        print_json(
            [
                {
                    "serial": r.token.serial,
                    "upn": r.token.upn,
                    "drift_seconds": r.drift_seconds,
                    "window_seconds": r.window_seconds,
                    "status": r.status,
                    "rate_seconds_per_day": r.rate_seconds_per_day,
                    "predicted_outside": r.predicted_outside,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        click.echo("no token is near the edge of its sign-in window")
        return
    print_table(
        "tokens near or outside the sign-in window",
        ["serial", "user", "drift s", "window s", "status", "s/day", "outside from"],
        [
            [
                r.token.serial,
                r.token.upn,
                f"{r.drift_seconds:+d}",
                f"±{r.window_seconds}",
                r.status,
                "" if r.rate_seconds_per_day is None else f"{r.rate_seconds_per_day:+.2f}",
                "" if r.predicted_outside is None else f"{r.predicted_outside:%Y-%m-%d}",
            ]
            for r in rows
        ],
    )
