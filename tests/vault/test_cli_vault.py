"""The vault's commands through the real console script: init, users, tokens, purge, errors."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oathdesk.seed import encode_base32
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.schema import tokens
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault.conftest import UPN, classic, secret_for
from tests.vault_fixtures import ADMIN, cli_env

SECRET = secret_for("cli")


def test_init_once_then_refuses(location: VaultLocation, cli: RunCli) -> None:
    env = cli_env(location)
    created = cli("init", env=env)
    assert created.returncode == 0, created.stderr
    assert "created the vault" in created.stdout
    assert location.key_file.exists()
    key = location.key_file.read_bytes()
    again = cli("init", env=env)
    assert_one_line_error(again)
    assert "is already an oathdesk vault; nothing to do" in again.stderr
    assert location.key_file.read_bytes() == key


def test_users_and_tokens(sqlite_env: dict[str, str], cli: RunCli) -> None:
    env = sqlite_env

    def ok(*args: str, input: str | None = None) -> str:
        result = cli(*args, input=input, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "added user helga@contoso.com" in ok("user", "add", "Helga@Contoso.com", "--name", "H")
    users = json.loads(ok("user", "list", "--json"))
    assert users == [{"upn": UPN, "display_name": "H", "phone": ""}]
    ok("token", "add", "--serial", "t1", "--kind", "classic", "--user", UPN, input=SECRET.hex())
    ok("token", "add", "--serial", "t2", "--generate")
    listing = json.loads(ok("token", "list", "--json"))
    assert [(t["serial"], t["state"], t["upn"]) for t in listing] == [
        ("t1", "assigned", UPN),
        ("t2", "in_stock", None),
    ]
    assert "secret" not in {key for t in listing for key in t if key != "has_secret"}
    shown = json.loads(ok("user", "show", UPN, "--json"))
    assert [t["serial"] for t in shown["tokens"]] == ["t1"]
    ok("token", "assign", "t2", UPN)
    ok("token", "registered", "t1")
    ok("token", "ship", "t1", "--carrier", "DHL", "--tracking", "JD1")
    assert "its secret is erased" in ok("token", "lost", "t2", "--reason", "fell off the desk")
    assert "tracking           JD1" in ok("token", "show", "t1")
    rows = [line.split() for line in ok("token", "list").splitlines()]
    table = {cells[1]: cells for cells in rows if len(cells) > 2 and cells[1] in ("t1", "t2")}
    assert "shipped" in table["t1"]
    assert "lost" in table["t2"]
    burned = cli("token", "burned", "t1", env=env)
    assert_one_line_error(burned)
    assert "classic token" in burned.stderr


def test_secrets_never_from_arguments_and_errors_are_one_line(
    sqlite_env: dict[str, str], cli: RunCli
) -> None:
    env = sqlite_env
    for command in (["add", "--serial", "1"], ["reassign", "1", UPN]):
        result = cli("token", *command, encode_base32(SECRET), env=env)
        assert_one_line_error(result)
        assert "secrets are never read from the command line" in result.stderr
        assert encode_base32(SECRET) not in result.stdout + result.stderr
    assert json.loads(cli("token", "list", "--json", env=env).stdout) == []
    empty = cli("token", "add", "--serial", "1", env=env, input="")
    assert_one_line_error(empty)
    assert "no secret on standard input" in empty.stderr
    missing = cli("token", "show", "999", env=env)
    assert_one_line_error(missing)
    assert "no token with serial 999" in missing.stderr
    bad_upn = cli("user", "add", "not a upn", env=env)
    assert_one_line_error(bad_upn)
    assert "looks like name@contoso.com" in bad_upn.stderr
    cli("token", "add", "--serial", "dup", env=env, input=SECRET.hex())
    twice = cli("token", "add", "--serial", "dup", env=env, input=secret_for("other").hex())
    assert_one_line_error(twice)
    assert "a token with serial dup is already in the vault" in twice.stderr


def test_qr_screenshot_and_otpauth_on_stdin(
    sqlite_env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    env = sqlite_env
    from tests.core.test_qr import screenshot_with_qr

    uri = f"otpauth://totp/Contoso:{UPN}?secret={encode_base32(SECRET)}&period=60&digits=6"
    shot = tmp_path / "mfasetup.png"
    screenshot_with_qr(uri, shot, "PNG")
    added = cli("token", "add", "--serial", "q1", "--qr-image", str(shot), env=env)
    assert added.returncode == 0, added.stderr
    other = uri.replace(encode_base32(SECRET), encode_base32(secret_for("q2")))
    assert cli("token", "add", "--serial", "q2", env=env, input=other).returncode == 0
    found = {t["serial"]: t for t in json.loads(cli("token", "list", "--json", env=env).stdout)}
    assert found["q1"]["period"] == found["q2"]["period"] == 60


def test_purge_due(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [classic("old", UPN), classic("new", UPN), classic("late", UPN)])
    for serial in ("old", "new"):
        vault.move(ADMIN, serial, TokenState.REGISTERED)
        vault.move(ADMIN, serial, TokenState.DELIVERED)
    with vault.transaction() as conn:  # delivered three weeks ago, assigned in the spring
        conn.execute(
            tokens.update()
            .where(tokens.c.serial == "old")
            .values(delivered_at=datetime.now(UTC) - timedelta(days=21))
        )
        conn.execute(
            tokens.update()
            .where(tokens.c.serial == "late")
            .values(assigned_at=datetime.now(UTC) - timedelta(days=90))
        )
    env = cli_env(location)
    dry = json.loads(cli("purge", "--due", "--dry-run", "--json", env=env).stdout)
    assert dry == {"dry_run": True, "purged": ["old"], "undelivered_warning": ["late"]}
    assert vault.get_token("old").has_secret
    done = cli("purge", "--due", env=env)
    assert done.returncode == 0, done.stderr
    assert "purged 1 secret(s): old" in done.stdout
    assert "not delivered after 30 days" in done.stdout
    assert [t.serial for t in vault.list_tokens() if not t.has_secret] == ["old"]
    assert_one_line_error(cli("purge", env=env))


def test_missing_vault_says_to_init(cli: RunCli, tmp_path: Path) -> None:
    result = cli("token", "list", env={"OATHDESK_VAULT": str(tmp_path / "none.sqlite3")})
    assert_one_line_error(result)
    assert "run `oathdesk init` first" in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()


def test_key_file_permissions_are_enforced(sqlite_env: dict[str, str], cli: RunCli) -> None:
    env = sqlite_env
    key_file = Path(env["OATHDESK_KEY_FILE"])
    os.chmod(key_file, 0o644)
    result = cli("user", "list", env=env)
    assert_one_line_error(result)
    assert f"chmod 600 {key_file}" in result.stderr


def test_token_group_can_take_commands_from_other_modules() -> None:
    import click

    from oathdesk.cli import tokens as token_cli

    @click.command("ping")
    def ping() -> None:
        click.echo("pong")

    token_cli.EXTERNAL_COMMANDS["ping"] = (__name__, "PING")
    globals()["PING"] = ping
    try:
        context = click.Context(token_cli.token_group)
        assert "ping" in token_cli.token_group.list_commands(context)
        assert token_cli.token_group.get_command(context, "ping") is ping
        assert token_cli.token_group.get_command(context, "purge") is not None
    finally:
        del token_cli.EXTERNAL_COMMANDS["ping"]
