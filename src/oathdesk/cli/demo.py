"""``oathdesk demo``: a short guided tour of the code-generator commands.

It initialises nothing and touches no vault: it makes a throw-away seed and runs the real commands
on it, printing each command line before its output, so a new operator sees what oathdesk does.
"""

from __future__ import annotations

import os
import shlex
import time

import click

from oathdesk.cli.secret_input import ENV_VAR

# (explanation, arguments). The seed travels in OATHDESK_SECRET, never on a command line.
TOUR: tuple[tuple[str, list[str]], ...] = (
    ("Show the seed in every form: base32 as Entra prints it, hex, size and URI", ["seed", "show"]),
    ("The current code, like `t2otp.exe SECRET` (the secret comes from OATHDESK_SECRET)", ["code"]),
    (
        "Past, current and future codes, with how long Entra accepts each",
        ["codes", "--past", "1", "--future", "3", "--window", "entra"],
    ),
    (
        "The one code to send by email: accepted for the longest time under the profile",
        ["codes", "--longest", "--window", "legacy"],
    ),
)


@click.command("demo")
def demo_command() -> None:
    """Walk through the code-generator commands on a throw-away seed."""
    from oathdesk.cli.main import run
    from oathdesk.otp import totp
    from oathdesk.seed import encode_base32, generate_secret, parse_seed

    secret = encode_base32(generate_secret("sha1"))
    click.secho("oathdesk demo: a throw-away seed, as if pasted from aka.ms/mfasetup", bold=True)
    click.echo(f"  export {ENV_VAR}=<the seed>   # keeps it out of shell history and `ps`\n")
    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = secret
    try:
        for explanation, args in TOUR:
            click.secho(f"# {explanation}", fg="cyan")
            click.secho(f"$ oathdesk {shlex.join(args)}", bold=True)
            status = run(args)
            if status != 0:
                raise click.ClickException(f"the demo step 'oathdesk {args[0]}' failed")
            click.echo()
        # A token whose clock runs 90 s slow shows the code of three steps ago.
        secret_bytes = parse_seed(secret).secret
        shown = totp(secret_bytes, time.time() - 90)
        following = totp(secret_bytes, time.time() - 60)
        click.secho(
            "# A user reads two consecutive codes off a token whose clock runs 90 s slow",
            fg="cyan",
        )
        click.secho(f"$ oathdesk check {shown} {following}", bold=True)
        run(["check", shown, following])
        click.echo("\nNext: `oathdesk --help` lists every command; docs/ explains the workflow.")
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
