"""`oathdesk entra-csv lint FILE`: check an Entra OATH CSV before uploading it. No vault needed.

Exit status: 0 when the portal should accept the file, 1 when it has problems (each printed on
stdout as one line, ``FILE:LINE: column 'NAME': what is wrong; how to fix it``), 2 when the file
cannot be read or the options are wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.formats.entra_csv import DEFAULT_MAX_PER_USER, EntraCsv, parse_entra_csv
from oathdesk.formats.entra_csv_fix import FixedCsv, fix_entra_csv
from oathdesk.formats.problems import Code
from oathdesk.platform_io import PRIVATE_FILES

# Problems that `--fix` repairs.
FIXABLE = frozenset(
    {
        Code.SEPARATOR,
        Code.ENCODING,
        Code.EMPTY_LINE,
        Code.BLANKS,
        Code.TRAILING_COLUMNS,
        Code.SECRET_SEPARATORS,
        Code.SECRET_HEX,
        Code.ONE_COLUMN_ROW,
        Code.HEADER_MISSING,
    }
)


class LintFailed(OathdeskError):
    code = "lint_failed"
    exit_code = 1


@click.group("entra-csv")
def entra_csv_group() -> None:
    """The Entra portal's OATH token CSV."""


@entra_csv_group.command("lint")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--max-per-user",
    type=click.IntRange(1, 100),
    default=DEFAULT_MAX_PER_USER,
    show_default=True,
    help="Tokens one user may have (Entra: 5 OATH tokens and apps together).",
)
@click.option(
    "--fix",
    "--fix-hex",
    "fix_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a corrected copy (hex secrets converted to base32, UTF-8, commas, no empty "
    "lines or blanks; mode 0600) to this new file and lint that.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def lint_command(file: Path, max_per_user: int, fix_path: Path | None, as_json: bool) -> None:
    """Report every problem, each with its line; exit 0 only if the portal should accept it."""
    data = _read(file)
    fixed = None
    if fix_path is not None:
        fixed = fix_entra_csv(data)
        _write_secret_file(fix_path, fixed.text)
        data = fixed.text.encode("utf-8")
        file = fix_path
    result = parse_entra_csv(data, max_per_user=max_per_user)
    if as_json:
        click.echo(json.dumps(_as_json(file, result, fixed), indent=2))
    else:
        _print_human(file, result, fixed)
    problems = result.lint_problems
    if problems:
        hint = ""
        if fixed is None and any(p.code in FIXABLE for p in problems):
            hint = " (`--fix NEW.csv` repairs the mechanical ones)"
        raise LintFailed(
            f"{len(problems)} problem(s) in {file.name}; fix them and lint again{hint}"
        )


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {file}: {error.strerror or 'unreadable'}") from None


def _write_secret_file(path: Path, text: str) -> None:
    """A new file only the owner can read: it holds seeds."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(
            f"{path} exists; choose a new file name for the corrected copy"
        ) from None
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or 'not writable'}") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _print_human(file: Path, result: EntraCsv, fixed: FixedCsv | None) -> None:
    if fixed is not None:
        changes = "; ".join(fixed.changes) or "nothing needed changing"
        click.echo(
            f"wrote {file} ({PRIVATE_FILES}; it holds seeds: delete it after the upload): {changes}"
        )
    for problem in result.lint_problems:
        click.echo(problem.render(file.name))
    for warning in result.warnings:
        click.echo(f"warning: {warning.render(file.name)}")
    if result.ready_to_upload:
        click.echo(f"{file.name}: {len(result.tokens)} token(s), ready to upload")


def _as_json(file: Path, result: EntraCsv, fixed: FixedCsv | None) -> dict[str, object]:
    report: dict[str, object] = {
        "file": str(file),
        "ok": result.ready_to_upload,
        "tokens": len(result.tokens),
        "encoding": result.encoding,
        "delimiter": result.delimiter,
        "header_spelling": result.header_spelling,
        "problems": [p.as_dict() for p in result.lint_problems],
        "warnings": [w.as_dict() for w in result.warnings],
    }
    if fixed is not None:
        report["fixed"] = {"changes": fixed.changes, "hex_converted": fixed.hex_converted}
    return report
