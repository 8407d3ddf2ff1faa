"""The CLI shows moments in the local time zone with its name (timetext.moment_text), not a
bare UTC clock time that reads as local."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from oathdesk.timetext import moment_text
from oathdesk.vault.api_keys import ApiKeyStore
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import read_key_file
from oathdesk.vault.operators import MAX_FAILURES, OperatorDirectory, SignInRefused
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli
from tests.vault_fixtures import ADMIN


def test_operator_list_says_until_when_in_the_local_zone(
    sqlite_location: VaultLocation, sqlite_env: dict[str, str], cli: RunCli
) -> None:
    env = {**sqlite_env, "TZ": "Europe/Berlin"}
    added = cli(
        "operator",
        "add",
        "hugo",
        "--role",
        "helpdesk",
        "--password-stdin",
        input="answers the phone at desk 42\n",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    vault = Vault.open(sqlite_location, read_key_file(sqlite_location.key_file))
    try:
        for _ in range(MAX_FAILURES):
            with pytest.raises(SignInRefused):
                OperatorDirectory(vault).authenticate("hugo", "wrong password", "000000")
        (locked,) = [o.locked_until for o in OperatorDirectory(vault).list()]
    finally:
        vault.close()
    assert locked is not None
    listed = cli("operator", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    berlin = moment_text(locked, datetime.now(UTC), ZoneInfo("Europe/Berlin"))
    assert f"locked until {berlin}" in listed.stdout  # e.g. 23:17:03 CET
    as_json = json.loads(cli("operator", "list", "--json", env=env).stdout)
    assert as_json[0]["locked_until"].endswith("Z")  # JSON stays in UTC, as the API writes it


def test_token_show_gives_its_moments_in_the_local_zone(
    sqlite_location: VaultLocation, sqlite_env: dict[str, str], cli: RunCli
) -> None:
    env = {**sqlite_env, "TZ": "America/New_York"}
    added = cli("token", "add", "--serial", "T1", "--generate", env=env)
    assert added.returncode == 0, added.stderr
    shown = cli("token", "show", "T1", env=env)
    assert shown.returncode == 0, shown.stderr
    vault = Vault.open(sqlite_location, read_key_file(sqlite_location.key_file))
    try:
        token = vault.get_token("T1")
    finally:
        vault.close()
    zone = ZoneInfo("America/New_York")
    for label, moment in (("created at", token.created_at), ("updated at", token.updated_at)):
        local = moment_text(moment, datetime.now(UTC), zone)  # e.g. 17:03:09 EST
        assert f"{label:<18} {local}" in shown.stdout, shown.stdout
    # --json keeps ISO 8601 (with its offset) for scripts.
    as_json = json.loads(cli("token", "show", "T1", "--json", env=env).stdout)
    assert datetime.fromisoformat(as_json["created_at"]) == token.created_at


def test_api_key_list_says_when_last_used_in_the_local_zone(
    sqlite_location: VaultLocation, sqlite_env: dict[str, str], cli: RunCli
) -> None:
    env = {**sqlite_env, "TZ": "Asia/Tokyo"}
    added = cli(
        "operator", "add", "hugo", "--role", "helpdesk", "--password-stdin",
        input="answers the phone at desk 42\n", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    vault = Vault.open(sqlite_location, read_key_file(sqlite_location.key_file))
    try:
        store = ApiKeyStore(vault)
        created = store.create(ADMIN, "hugo", "ticketing")
        store.authenticate(created.secret_text)  # stamps its last use
        (key,) = store.list(ADMIN)
    finally:
        vault.close()
    assert key.last_used_at is not None
    listed = cli("operator", "api-key", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    # Before: "2026-12-04 22:20" with no zone, in UTC, on a machine in Tokyo.
    tokyo = moment_text(key.last_used_at, datetime.now(UTC), ZoneInfo("Asia/Tokyo"))
    assert tokyo in listed.stdout, listed.stdout
