"""`oathdesk seed new|show|qr|from-image`: make, inspect and move secrets between forms.

These commands print secrets on purpose: the operator already holds the secret, and this is how
they check or convert it. They never put it in a file anyone else can read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from oathdesk.cli.secret_input import ENV_VAR, read_secret_text
from oathdesk.seed import (
    DEFAULT_SECRET_BYTES,
    ParsedSeed,
    SeedForm,
    build_otpauth_uri,
    encode_base32,
    generate_secret,
    parse_seed,
)

ALGORITHMS = click.Choice(sorted(DEFAULT_SECRET_BYTES), case_sensitive=False)


def _describe(seed: ParsedSeed, account: str | None, issuer: str | None) -> dict[str, Any]:
    algorithm = seed.algorithm or "sha1"
    label_account = account or seed.account
    label_issuer = issuer or seed.issuer
    uri = build_otpauth_uri(
        seed.secret,
        account=label_account or "user",
        issuer=label_issuer,
        algorithm=algorithm,
        digits=seed.digits or 6,
        period=seed.period or 30,
    )
    return {
        "form": str(seed.form),
        "base32": encode_base32(seed.secret),
        "hex": seed.secret.hex(),
        "bytes": len(seed.secret),
        "bits": seed.size_bits,
        "algorithm": algorithm,
        "digits": seed.digits or 6,
        "period": seed.period or 30,
        "issuer": label_issuer,
        "account": label_account,
        "otpauth_uri": uri,
    }


def _print(details: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    width = max(len(name) for name in details)
    for name, value in details.items():
        if value is not None:
            click.echo(f"{name.replace('_', ' '):<{width}}  {value}")


def label_options(command: Any) -> Any:
    command = click.option("--issuer", help="Issuer shown in authenticator apps.")(command)
    return click.option("--account", help="Account name for the otpauth URI (e.g. the UPN).")(
        command
    )


@click.group("seed")
def seed_group() -> None:
    """Generate, inspect and convert secrets; QR codes in and out."""


@seed_group.command("new")
@click.option("--algorithm", type=ALGORITHMS, default="sha1", show_default=True)
@click.option(
    "--bytes", "size", type=click.IntRange(10, 128), help="Secret size (default by hash)."
)
@label_options
@click.option("--json", "as_json", is_flag=True)
def new_command(
    algorithm: str, size: int | None, account: str | None, issuer: str | None, as_json: bool
) -> None:
    """A new random secret from the operating system's CSPRNG."""
    seed = ParsedSeed(
        generate_secret(algorithm.lower(), size), SeedForm.BASE32, algorithm=algorithm.lower()
    )
    _print(_describe(seed, account, issuer), as_json)


@seed_group.command("show", epilog=f"'-' reads SECRET from stdin; without it, ${ENV_VAR}.")
@click.argument("secret", required=False)
@label_options
@click.option("--json", "as_json", is_flag=True)
def show_command(
    secret: str | None, account: str | None, issuer: str | None, as_json: bool
) -> None:
    """Normalised base32, hex, size and otpauth URI of SECRET (base32, hex or otpauth URI)."""
    _print(_describe(parse_seed(read_secret_text(secret)), account, issuer), as_json)


@seed_group.command("qr", epilog=f"'-' reads SECRET from stdin; without it, ${ENV_VAR}.")
@click.argument("secret", required=False)
@label_options
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an .svg or .png file (mode 0600) instead of drawing in the terminal.",
)
def qr_command(
    secret: str | None, account: str | None, issuer: str | None, output: Path | None
) -> None:
    """A QR code of SECRET's otpauth URI, for a burner app or an authenticator."""
    from oathdesk.qr import terminal_qr, write_qr

    uri = _describe(parse_seed(read_secret_text(secret)), account, issuer)["otpauth_uri"]
    if output is None:
        click.echo(terminal_qr(uri))
        return
    write_qr(uri, output)
    from oathdesk.platform_io import PRIVATE_FILES

    click.echo(
        f"wrote {output} ({PRIVATE_FILES}: it holds the secret; delete it after use)", err=True
    )


@seed_group.command("from-image")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@label_options
@click.option("--json", "as_json", is_flag=True)
def from_image_command(image: Path, account: str | None, issuer: str | None, as_json: bool) -> None:
    """Read the secret from a screenshot of a QR code (e.g. the one aka.ms/mfasetup shows)."""
    from oathdesk.qr import decode_image

    _print(_describe(parse_seed(decode_image(image)), account, issuer), as_json)
