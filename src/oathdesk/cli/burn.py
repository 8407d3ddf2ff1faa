"""`oathdesk burn`, `oathdesk token info`, `oathdesk token resync`: tokens on an NFC reader.

The code the token shows after a burn is typed at a prompt (or given as a line on standard
input), never as an argument: for a minute or two it would sign its owner in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from oathdesk.cli.vault_context import (
    json_option,
    local_actor,
    open_vault,
    print_json,
    vault_option,
)
from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.services.burn import BurnTarget, CodeRequest, SeedInput

if TYPE_CHECKING:
    from oathdesk.nfc.transport import PcscReader
    from oathdesk.services.burn import BatchReport

READER_HELP = "Use the reader whose name contains this (default: the first one)."


def _reader_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--reader", "reader_name", metavar="NAME", help=READER_HELP)(command)
    return click.option(
        "--timeout",
        type=click.FloatRange(1, 3600),
        default=30,
        show_default=True,
        help="Seconds to wait for each token.",
    )(command)


@contextmanager
def _reader(name: str | None) -> Iterator[PcscReader]:
    from oathdesk.nfc.transport import PcscReader

    with PcscReader(name) as reader:
        click.echo(f"hold the token on the reader {reader.name!r}", err=True)
        yield reader


def _warn_unsynchronised_clock() -> None:
    from oathdesk.nfc.hostclock import ntp_synchronised

    if ntp_synchronised() is False:
        click.echo(
            "warning: this computer's clock is not NTP-synchronised, and the token takes its "
            "clock from it; check `timedatectl` (or w32tm /query /status) first",
            err=True,
        )


def read_code(request: CodeRequest) -> str:
    """Ask the operator for the code on the token's display (stdin lines when not a terminal)."""
    again = " again" if request.attempt > 1 else ""
    prompt = (
        f"Press the button of token {request.serial} ({request.model}) and type the code it "
        f"shows{again}"
    )
    if sys.stdin.isatty():
        return str(click.prompt(prompt, err=True))
    click.echo(f"{prompt}: ", err=True, nl=False)
    line = sys.stdin.readline()
    click.echo("", err=True)
    if not line.strip():
        raise InvalidInput("no code on standard input; type the code the token shows")
    return line


def _seed_input(qr_image: Path | None, secret: bool, generate: bool) -> SeedInput | None:
    from oathdesk.seed import generate_secret, parse_seed

    if generate:
        return SeedInput(generate_secret("sha1"), "generated")
    if qr_image is not None:
        from oathdesk.qr import decode_image

        parsed = parse_seed(decode_image(qr_image))
        source = "qr"
    elif secret:
        if sys.stdin.isatty():
            import getpass

            text = getpass.getpass("Secret (base32, hex or otpauth URI; input hidden): ")
        else:
            text = sys.stdin.readline()
        if not text.strip():
            raise InvalidInput("no secret on standard input; pipe it in, or use --qr-image")
        parsed = parse_seed(text)
        source = "entered"
    else:
        return None
    return SeedInput(parsed.secret, source, parsed.algorithm, parsed.period, parsed.digits)


def _batch_targets(
    path: Path, generate: bool, hash_name: str | None, period: int | None
) -> list[BurnTarget]:
    from oathdesk.seed import generate_secret

    targets = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        is_upn = "@" in line
        if generate and not is_upn:
            raise InvalidInput(f"{path.name} line {number}: --generate needs a UPN on each line")
        seed = SeedInput(generate_secret("sha1"), "generated") if generate else None
        targets.append(
            BurnTarget(
                upn=line if is_upn else None,
                serial=None if is_upn else line,
                new_seed=seed,
                hash_name=hash_name,
                period=period,
            )
        )
    if not targets:
        raise InvalidInput(f"{path.name} lists no tokens (one UPN or serial per line)")
    return targets


# Stray arguments are accepted only to be refused without echoing them: after --secret, one is
# very likely a secret typed where it must not be (click's own error would quote it).
@click.command("burn", context_settings={"allow_extra_args": True})
@click.argument("upn", required=False)
@click.option(
    "--serial", help="Burn this token of the vault (its serial is checked on the reader)."
)
@click.option(
    "--batch",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A queue: one UPN or serial per line.",
)
@click.option("--count", type=click.IntRange(1, 10_000), help="Burn N tokens awaiting their burn.")
@click.option("--hash", "hash_name", type=click.Choice(["sha1", "sha256"]))
@click.option("--period", type=click.Choice(["30", "60"]), help="Time step in seconds.")
@click.option(
    "--qr-image",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The seed comes with the burn, from this QR screenshot (a new token record).",
)
@click.option(
    "--secret",
    "secret_given",
    is_flag=True,
    help="The seed comes with the burn: hidden prompt, or the first line of standard input.",
)
@click.option("--generate", is_flag=True, help="A new random seed (for an Entra CSV upload).")
@_reader_options
@vault_option
def burn_command(
    upn: str | None,
    serial: str | None,
    batch: Path | None,
    count: int | None,
    hash_name: str | None,
    period: str | None,
    qr_image: Path | None,
    secret_given: bool,
    generate: bool,
    reader_name: str | None,
    timeout: float,
    vault_path: str | None,
) -> None:
    """Program a Token2 token on the NFC reader with its seed from the vault, and check it."""
    from oathdesk.services.burn import burn, burn_queue

    if click.get_current_context().args:
        raise InvalidInput(
            "burn takes one UPN and options only; secrets are never read from the command line "
            "(it was not used, and is not shown): use --secret and type or pipe it in"
        )
    step = int(period) if period else None
    chosen = [
        name
        for name, on in (("UPN", upn), ("--serial", serial), ("--batch", batch), ("--count", count))
        if on
    ]
    if len(chosen) != 1:
        raise InvalidInput("name one of: a UPN, --serial SERIAL, --batch FILE or --count N")
    seed_options = [qr_image is not None, secret_given, generate]
    if sum(seed_options) > 1:
        raise InvalidInput("give the seed one way: --qr-image, --secret or --generate")
    if any(seed_options) and not upn and not (generate and batch):
        raise InvalidInput("a seed given to the burn needs the UPN it belongs to")
    vault = open_vault(vault_path)
    _warn_unsynchronised_clock()
    with _reader(reader_name) as reader:
        if batch is not None or count is not None:
            targets = (
                _batch_targets(batch, generate, hash_name, step)
                if batch is not None
                else [BurnTarget(hash_name=hash_name, period=step)] * (count or 0)
            )
            report = burn_queue(
                vault,
                local_actor(),
                reader,
                targets,
                read_code,
                announce=lambda text: click.echo(text, err=True),
                timeout=timeout,
            )
            _summary(report, len(targets))
            return
        target = BurnTarget(
            upn=upn,
            serial=serial,
            new_seed=_seed_input(qr_image, secret_given, generate),
            hash_name=hash_name,
            period=step,
        )
        result = burn(vault, local_actor(), reader, target, read_code, timeout=timeout)
    token = result.token
    click.echo(
        f"burned token {token.serial} ({result.model.name}) for {token.upn}: "
        f"{token.algorithm.value}, {token.period} s, clock {result.drift_seconds:+d} s; "
        "recorded in the vault"
    )


def _summary(report: BatchReport, total: int) -> None:
    click.echo(f"burned {len(report.burned)} of {total} tokens")
    for result in report.burned:
        click.echo(f"  burned   {result.token.serial} ({result.model.name}) {result.token.upn}")
    for position, target, message in report.failed:
        click.echo(f"  failed   #{position} {target.describe()}: {message}")
    for position, target in report.not_attempted:
        click.echo(f"  not done #{position} {target.describe()}")
    if report.failed or report.not_attempted:
        raise OathdeskError(
            f"{len(report.failed) + len(report.not_attempted)} of {total} tokens are not burned "
            "(listed above; the vault is unchanged for them): run the burn again for those"
        )


@click.command("info")
@_reader_options
@vault_option
@json_option
def token_info_command(
    reader_name: str | None, timeout: float, vault_path: str | None, as_json: bool
) -> None:
    """Read the serial, model and clock drift of the token on the reader (changes nothing)."""
    from oathdesk.services.burn import token_info

    vault = None
    try:
        vault = open_vault(vault_path)
    except OathdeskError:
        if vault_path:
            raise
    with _reader(reader_name) as reader:
        report = token_info(reader, vault=vault, timeout=timeout)
    device, stored = report.device, report.stored
    survives = device.model.seed_survives_clock_sync
    if as_json:
        print_json(
            {
                "serial": device.serial,
                "model": device.model.name,
                "seed_survives_clock_sync": survives,
                "token_clock": datetime.fromtimestamp(device.clock, UTC).isoformat(),
                "drift_seconds": report.drift_seconds,
                "vault": stored.as_dict() if stored else None,
            }
        )
        return
    sync = "the seed survives a clock resync" if survives else "a clock resync re-burns the seed"
    ahead = {1: "ahead of", 0: "in step with", -1: "behind"}[
        (report.drift_seconds > 0) - (report.drift_seconds < 0)
    ]
    click.echo(f"serial        {device.serial}")
    click.echo(f"model         {device.model.name} (programmable; {sync})")
    click.echo(f"token clock   {datetime.fromtimestamp(device.clock, UTC):%Y-%m-%d %H:%M:%S} UTC")
    click.echo(f"drift         {report.drift_seconds:+d} s (token {ahead} this computer)")
    if vault is not None:
        held = f"{stored.upn or 'stock'}, {stored.state.value}" if stored else "not in the vault"
        click.echo(f"vault         {held}")


@click.command("resync")
@click.argument("serial")
@_reader_options
@vault_option
def token_resync_command(
    serial: str, reader_name: str | None, timeout: float, vault_path: str | None
) -> None:
    """Set the token's clock from this computer's; restricted-sync models get their seed again."""
    from oathdesk.services.burn import resync

    vault = open_vault(vault_path)
    _warn_unsynchronised_clock()
    with _reader(reader_name) as reader:
        result = resync(vault, local_actor(), reader, serial, read_code, timeout=timeout)
    again = "; its seed was burned again (restricted sync model)" if result.reburned else ""
    click.echo(
        f"token {result.token.serial} ({result.model.name}): clock was "
        f"{result.drift_before:+d} s off, now {result.drift_after:+d} s{again}"
    )
