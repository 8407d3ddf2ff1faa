"""`oathdesk housekeeping`: one housekeeping cycle now, for a host without `oathdesk serve`
(a systemd timer or cron runs it; docs/housekeeping.md). One line per step; the exit status is
non-zero when a step failed (its alert was raised, and the cycle's audit record names it)."""

from __future__ import annotations

import os

import click

from oathdesk.cli.vault_context import json_option, open_vault, print_json, vault_option
from oathdesk.errors import OathdeskError


class StepsFailed(OathdeskError):
    code = "housekeeping_failed"
    exit_code = 1


@click.command("housekeeping")
@click.option(
    "--take-over-lease",
    is_flag=True,
    help="If a cycle from another machine holds the vault's lease but is gone, take the lease "
    "over after confirming (audited). One killed on this machine is taken over without asking.",
)
@click.option("--yes", is_flag=True, help="Confirm --take-over-lease without a prompt.")
@vault_option
@json_option
def housekeeping_command(
    take_over_lease: bool, yes: bool, vault_path: str | None, as_json: bool
) -> None:
    """Run one housekeeping cycle: Entra sync (when connected), an alert about what it left for
    a person, purge --due, the undelivered warning, the audit chain check."""
    from oathdesk.services.alerts import AlertSink, alert_settings
    from oathdesk.services.housekeeping import run_cycle

    settings = alert_settings(os.environ)  # a mistake in them: one line, before anything runs
    take_over = None
    if take_over_lease:
        from oathdesk.cli.lease_prompt import confirm_take_over

        take_over = confirm_take_over(yes, "housekeeping cycle")
    vault = open_vault(vault_path)
    try:
        result = run_cycle(vault, AlertSink(settings, vault), take_over=take_over)
    finally:
        vault.close()
    if as_json:
        print_json(
            {
                "seq": result.seq,
                "failed": [step.name for step in result.failed],
                "steps": {step.name: step.as_dict() for step in result.steps},
            }
        )
    else:
        for step in result.steps:
            click.echo(step.line())
    if result.failed:
        names = ", ".join(step.name for step in result.failed)
        raise StepsFailed(
            f"{len(result.failed)} housekeeping step(s) failed ({names}); the lines above say "
            "why, and an alert was raised for each"
        )
