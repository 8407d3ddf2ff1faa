"""`oathdesk entra-csv lint FILE`: check an Entra OATH CSV before uploading it. No vault needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.formats.entra_csv import convert_hex_secrets, parse_entra_csv


class LintFailed(OathdeskError):
    code = "lint_failed"
    exit_code = 1


@click.group("entra-csv")
def entra_csv_group() -> None:
    """The Entra portal's OATH token CSV."""


@entra_csv_group.command("lint")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--max-per-user", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option(
    "--fix-hex",
    "fix_hex",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a copy with hex secrets converted to base32 (mode 0600).",
)
@click.option("--json", "as_json", is_flag=True)
def lint_command(file: Path, max_per_user: int, fix_hex: Path | None, as_json: bool) -> None:
    """Report every problem, each with its line; exit 0 only if the portal should accept it."""
    data = file.read_bytes()
    if fix_hex is not None:
        if fix_hex.exists():
            raise InvalidInput(f"{fix_hex} exists; choose a new file name for the converted copy")
        text, converted = convert_hex_secrets(data)
        fd = os.open(fix_hex, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        click.echo(
            f"wrote {fix_hex} with {converted} secret(s) converted from hex (mode 0600; "
            "it holds seeds: delete it after the upload)",
            err=True,
        )
        data = text.encode()
        file = fix_hex
    result = parse_entra_csv(data, max_per_user=max_per_user)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "tokens": len(result.tokens),
                    "encoding": result.encoding,
                    "delimiter": result.delimiter,
                    "problems": [p.__dict__ for p in result.problems],
                },
                indent=2,
            )
        )
    else:
        for problem in result.problems:
            click.echo(problem.render(file.name))
        notes = []
        if result.encoding != "utf-8":
            notes.append(f"encoding {result.encoding}")
        if result.delimiter != ",":
            notes.append(f"separator {result.delimiter!r}")
        if notes and result.ok:
            click.echo(
                f"note: {', '.join(notes)}; the portal expects UTF-8 with commas: re-save "
                "it, or export it again with `oathdesk export entra-csv`"
            )
    if not result.ok:
        raise LintFailed(
            f"{len(result.problems)} problem(s) in {file.name}; fix them and lint again"
        )
    if not as_json:
        click.echo(f"{file.name}: {len(result.tokens)} token(s), ready to upload")
