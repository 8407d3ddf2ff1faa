"""`oathdesk export entra-csv|graph-json|qr-sheet` and `oathdesk seeds generate`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from oathdesk.cli.vault_context import local_actor, open_vault, vault_option
from oathdesk.errors import InvalidInput
from oathdesk.platform_io import PRIVATE_FILES
from oathdesk.services.exporter import ALL_EXPORTS, open_export

SHOWN_LEFT_OUT = 20


@click.command("export")
@click.argument("kind", type=click.Choice(ALL_EXPORTS))
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (mode 0600; it holds seeds).",
)
@click.option(
    "--header",
    type=click.Choice(["time interval", "timeinterval"]),
    default="time interval",
    show_default=True,
    help="entra-csv header spelling.",
)
@vault_option
def export_command(kind: str, output: Path, header: str, vault_path: str | None) -> None:
    """Export seeds for Entra (CSV or Graph bulk JSON), or for burning programmable tokens (a
    printable QR sheet or a list of otpauth URIs). Admin only, audited, written with mode 0600."""
    if output.exists():
        raise InvalidInput(f"{output} exists; choose a new file name")
    # Audited before it returns; the file is then written chunk by chunk as the secrets are
    # read (an Entra CSV of 100,000 tokens is never whole in memory).
    result = open_export(open_vault(vault_path), local_actor(), kind, header_spelling=header)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            for chunk in result.chunks:
                handle.write(chunk)
    except BaseException:
        # Half an export is no use to anyone and still holds secrets: it goes (the audit
        # record says what was requested).
        output.unlink(missing_ok=True)
        raise
    for problem in result.left_out[:SHOWN_LEFT_OUT]:
        click.echo(f"left out: {problem.message}")
    if len(result.left_out) > SHOWN_LEFT_OUT:
        click.echo(f"left out: ... and {len(result.left_out) - SHOWN_LEFT_OUT} more reason(s)")
    if result.left_out_tokens:
        click.echo(
            f"{result.left_out_tokens} token(s) ready for {kind} were left out: the format "
            "cannot take them (reasons above)"
        )
    click.echo(
        f"wrote {result.count} token(s) to {output}: it contains secrets ({PRIVATE_FILES}); "
        f"upload it, then destroy it (`shred -u {shlex.quote(str(output))}`)"
    )


@click.group("seeds")
def seeds_group() -> None:
    """Seeds for programmable tokens."""


@seeds_group.command("generate")
@click.option("--count", type=click.IntRange(1, 100_000), help="How many new tokens.")
@click.option(
    "--serials",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file with one serial number per line.",
)
@click.option("--model", default="programmable", show_default=True)
@click.option(
    "--algorithm", type=click.Choice(["sha1", "sha256"]), default="sha1", show_default=True
)
@click.option("--period", type=click.Choice(["30", "60"]), default="30", show_default=True)
@vault_option
def seeds_generate_command(
    count: int | None,
    serials: Path | None,
    model: str,
    algorithm: str,
    period: str,
    vault_path: str | None,
) -> None:
    """Create CSPRNG seeds for a batch of programmable tokens, ready to burn and export."""
    from datetime import UTC, datetime

    from oathdesk.otp import Algorithm
    from oathdesk.seed import generate_secret
    from oathdesk.vault.lifecycle import TokenKind
    from oathdesk.vault.vault import NewToken

    if (count is None) == (serials is None):
        raise InvalidInput("give either --count N or --serials FILE")
    if serials is not None:
        names = [line.strip() for line in serials.read_text().splitlines() if line.strip()]
    else:
        # Milliseconds: two batches made in the same second must not clash.
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")[:-3]
        names = [f"batch-{stamp}-{i:05d}" for i in range(1, (count or 0) + 1)]
    tokens = [
        NewToken(
            name,
            "Token2",
            model,
            TokenKind.PROGRAMMABLE,
            generate_secret(algorithm),
            Algorithm(algorithm),
            6,
            int(period),
        )
        for name in names
    ]
    added = open_vault(vault_path).add_tokens(local_actor(), tokens, source="seeds generate")
    click.echo(f"created {added} programmable token(s) with new seeds, in stock")
