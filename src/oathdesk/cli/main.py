"""The root ``oathdesk`` command group.

Sub-commands are loaded lazily from ``COMMANDS`` so that ``oathdesk code`` never imports the vault,
the web stack or anything else it does not use. To add a command, add one line to ``COMMANDS``.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from oathdesk import __version__
from oathdesk.cli.output_failures import IO_ERROR_STATUS, flush_output, io_failed, output_closed
from oathdesk.errors import OathdeskError

# name -> (module, attribute); the attribute is a click.Command or click.Group.
COMMANDS: dict[str, tuple[str, str]] = {
    "code": ("oathdesk.cli.codes", "code_command"),
    "codes": ("oathdesk.cli.codes", "codes_command"),
    "check": ("oathdesk.cli.codes", "check_command"),
    "seed": ("oathdesk.cli.seed", "seed_group"),
    "demo": ("oathdesk.cli.demo", "demo_command"),
    "init": ("oathdesk.cli.vault_admin", "init_command"),
    "audit": ("oathdesk.cli.vault_admin", "audit_group"),
    "purge": ("oathdesk.cli.vault_admin", "purge_command"),
    "housekeeping": ("oathdesk.cli.housekeeping", "housekeeping_command"),
    "user": ("oathdesk.cli.users", "user_group"),
    "token": ("oathdesk.cli.tokens", "token_group"),
    "key": ("oathdesk.cli.vault_keys", "key_group"),
    "backup": ("oathdesk.cli.vault_keys", "backup_command"),
    "restore": ("oathdesk.cli.vault_keys", "restore_command"),
    "operator": ("oathdesk.cli.operators", "operator_group"),
    "reveal": ("oathdesk.cli.helpdesk", "reveal_command"),
    "verify": ("oathdesk.cli.helpdesk", "verify_command"),
    "drift": ("oathdesk.cli.drift", "drift_command"),
    "settings": ("oathdesk.cli.helpdesk", "settings_group"),
    "entra-csv": ("oathdesk.cli.entra_csv", "entra_csv_group"),
    "import": ("oathdesk.cli.importing", "import_command"),
    "export": ("oathdesk.cli.exporting", "export_command"),
    "seeds": ("oathdesk.cli.exporting", "seeds_group"),
    "burn": ("oathdesk.cli.burn", "burn_command"),
    "entra": ("oathdesk.cli.entra", "entra_group"),
    "sso": ("oathdesk.cli.sso", "sso_group"),
    "serve": ("oathdesk.cli.serve", "serve_command"),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when they are invoked or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target
        command = getattr(_import_quietly(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


def _import_quietly(module_name: str) -> Any:
    """Import a command's module with the cyclic garbage collector paused, then freeze what the
    import made. A vault command imports SQLAlchemy and the vault: hundreds of thousands of
    long-lived objects, none of them garbage, which each collection during the import walked
    again (0.05 s of the 0.45 s a command took to start), and a collection during the command
    would walk them again; frozen, collections skip them. A module already imported (a second
    command run in the same process: the demo, the tests) is returned as it is: freezing again
    would keep whatever garbage that process had made meanwhile for good."""
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        return loaded
    paused = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(module_name)
    finally:
        gc.freeze()
        if paused:
            gc.enable()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oathdesk")
def cli() -> None:
    """Provision and look after OATH TOTP hardware tokens for Microsoft Entra ID.

    Secrets are never taken from the command line where a process list would show them: pass
    '-' to read from standard input, or set OATHDESK_SECRET.
    """


def _fail(message: str, exit_code: int) -> int:
    # click lists choices over several lines; an error is always one line here.
    click.echo(f"error: {' '.join(message.split())}", err=True)
    return exit_code


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI and turn every failure into one line on stderr and a non-zero exit code."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        result = cli.main(argv, prog_name="oathdesk", standalone_mode=False)
        flush_output()  # a failure to write what is left is reported here, in one line
    except OathdeskError as exc:
        return _fail(exc.message, exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "oathdesk"
        return _fail(f"{exc.format_message()} (see '{where} --help')", exc.exit_code)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort as exc:
        # click turns Ctrl-C inside a command into Abort; keep the shell's convention for it.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return _fail("interrupted", 130)
        return _fail("aborted", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader went away outside a command (click handles it inside one, the same way).
        return output_closed()
    except OSError as exc:
        # The system refused a read or a write (a full disk, a file without permission): not a
        # bug of ours, and its own words say what to fix.
        return _fail(io_failed(exc), IO_ERROR_STATUS)
    except Exception as exc:
        if os.environ.get("OATHDESK_DEBUG"):
            raise
        # The message of an unexpected exception might quote input, so only its type is shown.
        return _fail(
            f"unexpected internal error ({type(exc).__name__}); "
            "run again with OATHDESK_DEBUG=1 for details and report it",
            70,
        )
    return result if isinstance(result, int) else 0
