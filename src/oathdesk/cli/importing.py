"""`oathdesk import FILE`: seeds into the vault, all or nothing."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from oathdesk.cli.vault_context import local_actor, open_vault, vault_option
from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.services.importer import DEFAULT_KINDS, FORMATS, import_seeds
from oathdesk.vault.lifecycle import TokenKind


class ImportRefused(OathdeskError):
    code = "import_refused"
    exit_code = 1


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(FORMATS),
    help="Detected from the content when not given.",
)
@click.option(
    "--kind",
    type=click.Choice([k.value for k in TokenKind]),
    help="Token kind. Default: classic (factory-seeded) for "
    + ", ".join(f for f, k in DEFAULT_KINDS.items() if k is TokenKind.CLASSIC)
    + " (the vendor's files); programmable for "
    + ", ".join(f for f, k in DEFAULT_KINDS.items() if k is TokenKind.PROGRAMMABLE)
    + " (seeds the helpdesk chose).",
)
@click.option("--dry-run", is_flag=True, help="Check everything, change nothing.")
@click.option(
    "--skip-hotp",
    is_flag=True,
    help="PSKC: import the TOTP keys and list the HOTP (counter-based) ones as skipped; "
    "without it a file holding HOTP keys is refused.",
)
@click.option("--password-stdin", is_flag=True, help="PSKC: read the file's password from stdin.")
@click.option(
    "--psk-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PSKC: a file holding the pre-shared key in hex.",
)
@vault_option
def import_command(
    file: Path,
    file_format: str | None,
    kind: str | None,
    dry_run: bool,
    skip_hotp: bool,
    password_stdin: bool,
    psk_file: Path | None,
    vault_path: str | None,
) -> None:
    """Import an Entra CSV, a vendor PSKC file, a vendor stock list (Graph-style CSV, or
    serial,secret), a helpdesk spreadsheet (CSV/XLSX) or a list of otpauth URIs. Rows without
    a user are tokens in stock."""
    import gc
    import sys

    # The import holds a few hundred thousand objects (rows, columns) and makes no garbage
    # cycles worth finding: each collection would walk them all again, half a second of CPU
    # for 100,000 rows. Collecting resumes when the command ends (a caller in-process, such
    # as a test, keeps its collector).
    if gc.isenabled():
        gc.disable()
        click.get_current_context().call_on_close(gc.enable)

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    psk = None
    if psk_file is not None:
        try:
            psk = bytes.fromhex(psk_file.read_text().strip())
        except ValueError:
            raise InvalidInput(f"{psk_file} must hold the pre-shared key in hex") from None
    from contextlib import ExitStack

    stack = ExitStack()
    bar: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        # A bar only for big files (small ones finish before anyone could read it), and only on
        # a terminal: on a pipe or a file rich draws nothing, and importing it and running its
        # refresh thread cost such an import 0.04 s for nothing.
        if total < 5000 or not sys.stderr.isatty():
            return
        if not bar:
            from rich.console import Console
            from rich.progress import Progress

            console = Console(stderr=True)
            bar["progress"] = stack.enter_context(Progress(console=console, transient=True))
            bar["task"] = bar["progress"].add_task("encrypting and storing", total=total)
        bar["progress"].update(bar["task"], completed=done)

    with stack:
        result = import_seeds(
            open_vault(vault_path),
            local_actor(),
            file.read_bytes(),
            file_format=file_format,
            kind=TokenKind(kind) if kind else None,
            dry_run=dry_run,
            source=f"import:{file.name}",
            password=password,
            psk=psk,
            progress=progress,
            skip_hotp=skip_hotp,
        )
    for problem in result.problems:
        click.echo(problem.render(file.name))
    for warning in result.warnings:
        click.echo(f"warning: {warning.render(file.name)}")
    if result.skipped:
        from oathdesk.formats.problems import one_line

        click.echo(
            f"skipped {len(result.skipped)} HOTP (counter-based) key(s), which Entra cannot use: "
            + ", ".join(one_line(key.serial, limit=64) for key in result.skipped)
        )
    if result.problems:
        raise ImportRefused(
            f"{len(result.problems)} problem(s) in {file.name} ({result.format}); "
            "nothing was imported: fix them and run again"
        )
    if dry_run:
        click.echo(f"{file.name} ({result.format}): no problems; run without --dry-run to import")
        return
    in_stock = result.imported - result.assigned
    click.echo(
        f"imported {result.imported} {result.kind} token(s) from {file.name} ({result.format}): "
        f"{result.assigned} assigned to {result.users} user(s), {in_stock} in stock; "
        "secrets encrypted in the vault"
    )
    if result.placeholder_serials:
        click.echo(
            f"{result.placeholder_serials} token(s) had no serial and got a placeholder "
            "(unknown-...); `oathdesk token list` shows them"
        )
    click.echo(
        f"now destroy {file} and every copy of it (e-mail, shared drives, backups): "
        f"e.g. `shred -u {shlex.quote(str(file))}`"
    )
