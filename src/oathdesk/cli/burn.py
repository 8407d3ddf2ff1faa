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
    from oathdesk.services.burn_batch import BatchFile, BatchReport
    from oathdesk.vault.vault import Vault

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
    # Without the extra "nfc" (pyscard), its one-line error comes first, not after a warning.
    import oathdesk.nfc.transport  # noqa: F401
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
        try:
            return str(click.prompt(prompt, err=True))
        except click.Abort:
            # click turns Ctrl-C at a prompt into Abort; a queue stops on KeyboardInterrupt and
            # writes what is left, so give it back the interrupt.
            click.echo("", err=True)
            raise KeyboardInterrupt from None
    click.echo(f"{prompt}: ", err=True, nl=False)
    try:
        line = sys.stdin.readline()
    finally:
        click.echo("", err=True)  # Ctrl-C too: the error that follows gets a line of its own
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
    batch: BatchFile, name: str, generate: bool, hash_name: str | None, period: int | None
) -> list[BurnTarget]:
    from oathdesk.seed import generate_secret

    targets = []
    for number, line in enumerate(batch.entries, start=1):
        is_upn = "@" in line
        if generate and not is_upn:
            raise InvalidInput(
                f"{name} entry {number} ({line}): --generate needs a UPN on each line"
            )
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
    help="A queue: one UPN or serial per line, burned in any order; run again, it does what is "
    "left (and writes that to FILE.left).",
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
    from oathdesk.services.burn import burn

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
            _burn_queue(reader, vault, batch, count, generate, hash_name, step, timeout)
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


class Interrupted(OathdeskError):
    exit_code = 130  # the shell's convention for Ctrl-C


def _burn_queue(
    reader: PcscReader,
    vault: Vault,
    batch: Path | None,
    count: int | None,
    generate: bool,
    hash_name: str | None,
    step: int | None,
    timeout: float,
) -> None:
    from oathdesk.services.burn_batch import burn_queue, parse_batch

    parsed = None
    if batch is not None:
        parsed = parse_batch(_read_batch(batch), batch.name)
        targets = _batch_targets(parsed, batch.name, generate, hash_name, step)
    else:
        targets = [BurnTarget(hash_name=hash_name, period=step)] * (count or 0)
    report = burn_queue(
        vault,
        local_actor(),
        reader,
        targets,
        read_code,
        announce=lambda text: click.echo(text, err=True),
        batch=parsed.batch_id if parsed else None,
        timeout=timeout,
    )
    left = None
    if batch is not None and parsed is not None:
        left = _write_left_over(batch, parsed.batch_id, report)
    _summary(report, len(targets), left, " --generate" if generate else "")


def _read_batch(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(
            f"cannot read the queue {path.name} ({type(error).__name__}); give a text file "
            "with one UPN or serial per line"
        ) from None


def left_over_path(batch: Path) -> Path:
    """queue.txt -> queue.left.txt; a left-over file is rewritten in place."""
    if batch.stem.endswith(".left"):
        return batch
    return batch.with_name(f"{batch.stem}.left{batch.suffix}")


def _write_left_over(batch: Path, batch_id: str, report: BatchReport) -> Path | None:
    """Write what the next run must do next to the queue, with the queue's permissions (the
    file names users; it holds no seeds: the queue held none). Nothing left: a left-over file
    of ours there is removed, so that no stale list is run again."""
    import os
    import tempfile

    from oathdesk.services.burn_batch import is_left_over_file, left_over_text

    path = left_over_path(batch)
    left = report.left_over()
    try:
        if not left:
            if path.exists() and is_left_over_file(path.read_text(encoding="utf-8")):
                path.unlink()
            return None
        text = left_over_text(
            batch_id, [t.describe() for _, t in left], batch.name, datetime.now(UTC)
        )
        mode = batch.stat().st_mode & 0o777
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, UnicodeDecodeError) as error:
        click.echo(
            f"warning: could not write the left-over entries to {path} "
            f"({type(error).__name__}); run the same queue again: it skips what is done",
            err=True,
        )
        return None
    return path


def _summary(report: BatchReport, total: int, left: Path | None, options: str) -> None:
    skipped = f"; {len(report.skipped)} already burned (skipped)" if report.skipped else ""
    click.echo(f"burned {len(report.burned)} of {total} tokens{skipped}")
    for result in report.burned:
        click.echo(f"  burned   {result.token.serial} ({result.model.name}) {result.token.upn}")
    for _, target, message in report.skipped:
        click.echo(f"  skipped  {target.describe()}: {message}")
    for _, target, message in report.failed:
        click.echo(f"  failed   {target.describe()}: {message}")
    for _, target in report.not_attempted:
        click.echo(f"  not done {target.describe()}")
    if report.stopped:
        click.echo(f"stopped: {report.stopped}")
    missing = len(report.failed) + len(report.not_attempted)
    if left is not None:
        entries = "entry" if missing == 1 else "entries"
        click.echo(f"left over: {missing} {entries} written to {left}")
    if not missing:
        return
    again = (
        f"run `oathdesk burn --batch {left}{options}` for them"
        if left is not None
        else "run the burn again for those"
    )
    message = (
        f"{missing} of {total} tokens are not burned (listed above; the vault is unchanged for "
        f"them): {again}"
    )
    if report.interrupted:
        raise Interrupted(f"interrupted; {message}")
    raise OathdeskError(message)


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
