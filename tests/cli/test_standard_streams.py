"""What a command does when a standard stream is closed or its output cannot be written.

A command whose reader goes away (`oathdesk audit export | head`, a consumer that died) stops
writing and exits 1 without a word, as a Unix tool stopped by SIGPIPE does (and as Python's own
documentation recommends): no traceback, no "Exception ignored" from the interpreter's last
flush, the same for every command. A pipeline under ``set -o pipefail`` sees that the output
was not all read.

The pipes are real: closed by the reader before the command starts (its first write fails,
whenever it comes), or after the first bytes of a streamed output with more than a pipe's buffer
still to come. (A single write bigger than the pipe, such as a table printed at once, that the
reader leaves while it blocks is cut short by CPython without an error: the status is then 0.)

A full disk (``/dev/full``) or a closed standard output is named in one line (exit 74, EX_IOERR):
not "an internal error", and no traceback. A closed standard input reads as empty (`< /dev/null`)
and a closed standard error takes the messages nowhere, as asked; neither leaves its file
descriptor free for the vault to be opened on.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import NewToken
from oathdesk.vault.vault import Vault
from tests.conftest import OATHDESK
from tests.vault_fixtures import ADMIN, cli_env

Done = subprocess.CompletedProcess[bytes]

TOKENS = 3000  # `token list --json`: about 1.5 MB, many times a pipe's 64 KiB buffer
SECRET = "JBSWY3DPEHPK3PXP"


@pytest.fixture(scope="module")
def vault_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("closed-output")
    location = VaultLocation(
        f"sqlite:///{root / 'vault.sqlite3'}", root / "vault.key", root / "vault.sqlite3"
    )
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, ADMIN)
    vault.add_tokens(
        ADMIN,
        [
            NewToken(
                f"{60000000 + i}",
                "Token2",
                "C202",
                TokenKind.CLASSIC,
                os.urandom(20),
                upn=f"person{i}@contoso.com",
            )
            for i in range(TOKENS)
        ],
        create_missing_users=True,
    )
    vault.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    return {**env, **cli_env(location), "OATHDESK_SECRET": SECRET}


def run_oathdesk(args: list[str], env: dict[str, str], stdout: int | IO[bytes]) -> tuple[int, str]:
    """Exit status and stderr of ``oathdesk ARGS`` writing to ``stdout``."""
    done = subprocess.run(
        [str(OATHDESK), *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr.decode()


def run_into_closed_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit status and stderr of ``oathdesk ARGS`` writing into a pipe nobody reads."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return run_oathdesk(args, env, write_end)
    finally:
        os.close(write_end)


def run_reader_leaving(args: list[str], env: dict[str, str]) -> tuple[int, str, bytes]:
    """Exit status, stderr and what was read, of ``oathdesk ARGS`` whose reader takes its first
    bytes and goes away, as `| head -c 16` does."""
    with subprocess.Popen(
        [str(OATHDESK), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    ) as command:
        assert command.stdout is not None
        assert command.stderr is not None
        first = command.stdout.read(16)
        command.stdout.close()
        errors = command.stderr.read().decode()
        return command.wait(timeout=120), errors, first


COMMANDS = [
    ["code"],  # the fast path, without click
    ["codes"],
    ["codes", "--json"],
    ["--version"],
    ["token", "list"],
    ["token", "list", "--json"],
    ["token", "show", "60000007"],
    ["user", "list", "--json"],
    ["user", "show", "person7@contoso.com"],
    ["audit", "export"],
    ["audit", "verify"],
    ["drift"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_command_writing_into_a_closed_pipe_exits_1_without_a_word(
    args: list[str], vault_env: dict[str, str]
) -> None:
    status, errors = run_into_closed_pipe(args, vault_env)
    assert (status, errors) == (1, "")


@pytest.mark.parametrize(
    "args",
    [
        ["token", "list", "--json"],
        ["user", "list", "--json"],
    ],
    ids=" ".join,
)
def test_a_reader_going_away_midway_stops_the_command_without_a_word(
    args: list[str], vault_env: dict[str, str]
) -> None:
    status, errors, first = run_reader_leaving(args, vault_env)
    assert first  # it was writing
    assert (status, errors) == (1, "")


def test_the_same_commands_exit_0_when_their_output_is_read(
    vault_env: dict[str, str], tmp_path: Path
) -> None:
    for args in COMMANDS:
        with (tmp_path / "out").open("wb") as out:
            assert run_oathdesk(args, vault_env, out) == (0, ""), args
        assert (tmp_path / "out").stat().st_size > 0, args


FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_full_disk_under_the_output_is_named_in_one_line(
    args: list[str], vault_env: dict[str, str]
) -> None:
    with FULL.open("wb") as full:
        status, errors = run_oathdesk(args, vault_env, full)
    assert status == 74, errors
    assert errors == (
        "error: cannot write the output: No space left on device; free some space on that "
        "disk, or write elsewhere\n"
    )


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_standard_output_is_named_in_one_line(
    args: list[str], vault_env: dict[str, str]
) -> None:
    done = run_without(1, args, vault_env)
    errors = done.stderr.decode()
    assert done.returncode == 74, errors
    assert errors == "error: cannot write the output: standard output is closed\n"


def test_a_file_the_system_refuses_is_named_with_what_to_do(
    vault_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no such folder" / "out\x1b[31m.csv"
    status, errors = run_oathdesk(
        ["export", "entra-csv", "-o", str(missing)], vault_env, subprocess.DEVNULL
    )
    assert status == 74, errors
    assert errors == (
        f"error: cannot use {tmp_path}/no such folder/out\\x1b[31m.csv: No such file or "
        "directory; check the path (its folder must exist)\n"
    )


def run_without(descriptor: int, args: list[str], env: dict[str, str]) -> Done:
    """``oathdesk ARGS`` started with ``descriptor`` (0, 1 or 2) closed; the other two piped."""
    piped = {0: "stdin", 1: "stdout", 2: "stderr"}
    streams: dict[str, Any] = dict.fromkeys(piped.values(), subprocess.PIPE)
    streams[piped[descriptor]] = None
    return subprocess.run(
        [str(OATHDESK), *args],
        **streams,
        env=env,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.close(descriptor),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["code", "-"], "no secret on standard input; pipe it in, e.g. `... | oathdesk code -`"),
        (["codes", "-"], "no secret on standard input; pipe it in, e.g. `... | oathdesk code -`"),
        (
            ["token", "add", "--serial", "CLOSED-IN"],
            "no secret on standard input; pipe it in, or use --qr-image or --generate",
        ),
    ],
    ids=["code", "codes", "token add"],
)
def test_a_closed_standard_input_reads_as_empty(
    args: list[str], message: str, vault_env: dict[str, str]
) -> None:
    done = run_without(0, args, vault_env)
    assert (done.returncode, done.stderr.decode()) == (2, f"error: {message}\n")


def test_a_closed_standard_error_leaves_the_vault_alone(vault_env: dict[str, str]) -> None:
    done = run_without(2, ["code"], vault_env)
    assert done.returncode == 0
    assert done.stdout.decode().strip().isdigit()
    for args in (["token", "show", "NO-SUCH-TOKEN"], ["user", "add", "not a upn"]):
        refused = run_without(2, args, vault_env)
        assert refused.returncode != 0, args  # said to nowhere, as asked
    vault = vault_env["OATHDESK_VAULT"]
    with contextlib.closing(sqlite3.connect(vault)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert run_oathdesk(["token", "show", "60000007"], vault_env, subprocess.DEVNULL) == (0, "")
