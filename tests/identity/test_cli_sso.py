"""`oathdesk sso ...` through the real console script, against the stand-in over HTTPS."""

from __future__ import annotations

from pathlib import Path

from oathdesk.vault import sso as stored
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.identity.standin import CLIENT_ID, CLIENT_SECRET, TENANT_ID, StandInIdP
from tests.vault_fixtures import ADMIN, cli_env


def new_vault(tmp_path: Path) -> tuple[VaultLocation, MasterKey]:
    path = tmp_path / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    Vault.create(location, key, ADMIN).close()
    return location, key


def test_configure_show_policy_and_disable(cli: RunCli, idp: StandInIdP, tmp_path: Path) -> None:
    location, key = new_vault(tmp_path)
    env = cli_env(location)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(CLIENT_SECRET)
    secret_file.chmod(0o600)
    args = [
        "sso",
        "configure",
        "--tenant",
        TENANT_ID,
        "--client-id",
        CLIENT_ID,
        "--redirect-url",
        "https://oathdesk.contoso.com/auth/callback",
        "--authority-host",
        idp.origin,
        "--ca-bundle",
        idp.ca_bundle,
    ]
    done = cli(*args, "--client-secret-file", "-", input=CLIENT_SECRET + "\n", env=env)
    assert done.returncode == 0, done.stderr
    assert f"{idp.origin}/{TENANT_ID}/v2.0" in done.stdout
    assert CLIENT_SECRET not in done.stdout + done.stderr
    assert cli(*args, "--client-secret-file", str(secret_file), env=env).returncode == 0

    shown = cli("sso", "show", env=env)
    assert "tenant: " + TENANT_ID in shown.stdout
    assert "local_sign_in: on" in shown.stdout
    assert CLIENT_SECRET not in shown.stdout

    assert cli("sso", "local-sign-in", "admins-only", env=env).returncode == 0
    vault = Vault.open(location, key)
    try:
        assert stored.local_sign_in_policy(vault) == "admins-only"
        row = stored.load_settings(vault)
        assert row is not None
        assert row.credential == CLIENT_SECRET
    finally:
        vault.close()
    assert_one_line_error(cli("sso", "local-sign-in", "sometimes", env=env))
    assert cli("sso", "disable", env=env).returncode == 0
    assert "local_sign_in: on" in cli("sso", "show", env=env).stdout


def test_bad_settings_are_one_line_errors(cli: RunCli, idp: StandInIdP, tmp_path: Path) -> None:
    location, _ = new_vault(tmp_path)
    env = cli_env(location)
    base = ["sso", "configure", "--client-id", CLIENT_ID, "--client-secret-file", "-"]
    for extra, words in [
        (["--tenant", "contoso.com", "--redirect-url", "https://a/auth/callback"], "GUID"),
        (["--tenant", TENANT_ID, "--redirect-url", "http://a.example/cb"], "https://"),
        (
            [
                "--tenant",
                TENANT_ID,
                "--redirect-url",
                "https://a/auth/callback",
                "--authority-host",
                idp.origin,
            ],  # the stand-in's CA is not trusted
            "OpenID configuration",
        ),
    ]:
        result = cli(*base, *extra, input="secret\n", env=env)
        assert_one_line_error(result)
        assert words in result.stderr
    assert_one_line_error(cli("sso", "show", env=env))


def test_api_audience_turns_entra_access_tokens_on_and_off(
    cli: RunCli, idp: StandInIdP, tmp_path: Path
) -> None:
    location, key = new_vault(tmp_path)
    env = cli_env(location)
    assert_one_line_error(cli("sso", "api-audience", CLIENT_ID, env=env))  # not configured
    configure = [
        "sso",
        "configure",
        "--tenant",
        TENANT_ID,
        "--client-id",
        CLIENT_ID,
        "--redirect-url",
        "https://oathdesk.contoso.com/auth/callback",
        "--authority-host",
        idp.origin,
        "--ca-bundle",
        idp.ca_bundle,
        "--client-secret-file",
        "-",
    ]
    done = cli(*configure, "--api-audience", f"api://{CLIENT_ID}", input=CLIENT_SECRET, env=env)
    assert done.returncode == 0, done.stderr
    assert f"accepts Entra v2.0 access tokens for {CLIENT_ID}" in done.stdout
    assert f"api_audience: {CLIENT_ID}" in cli("sso", "show", env=env).stdout
    # Configuring again without the option keeps the audience.
    assert cli(*configure, input=CLIENT_SECRET, env=env).returncode == 0
    assert f"api_audience: {CLIENT_ID}" in cli("sso", "show", env=env).stdout

    result = cli("sso", "api-audience", "oathdesk-api", env=env)
    assert_one_line_error(result)
    assert "Application (client) ID" in result.stderr
    assert "accepts API keys only" in cli("sso", "api-audience", "off", env=env).stdout
    vault = Vault.open(location, key)
    try:
        row = stored.load_settings(vault)
        assert row is not None
        assert row.api_audience is None
        records = vault.export_audit(action="sso.api_audience")
        assert [r["details"]["api_audience"] for r in records] == [None]
    finally:
        vault.close()
