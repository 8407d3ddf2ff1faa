"""Helpers for the vault tests. The ``location``, ``master_key`` and ``vault`` fixtures (each test
on SQLite and on PostgreSQL) come from tests/vault_fixtures.py, shared with other test packages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from oathdesk.vault.config import VaultLocation
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import Actor, NewToken
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli
from tests.vault_fixtures import ADMIN, cli_env

HELPDESK = Actor("hugo", "helpdesk")
AUDITOR = Actor("ada", "auditor")
UPN = "helga@contoso.com"


def secret_for(serial: str) -> bytes:
    """A distinct 20-byte secret per serial (the vault refuses one secret on two tokens)."""
    return hashlib.sha256(f"test secret {serial}".encode()).digest()[:20]


def programmable(serial: str, upn: str | None = UPN, secret: bytes | None = None) -> NewToken:
    return NewToken(
        serial,
        "Token2",
        "miniOTP-2-i",
        TokenKind.PROGRAMMABLE,
        secret if secret is not None else secret_for(serial),
        upn=upn,
    )


def classic(serial: str, upn: str | None = None) -> NewToken:
    return NewToken(serial, "Token2", "C202", TokenKind.CLASSIC, secret_for(serial), upn=upn)


def read_secret(vault: Vault, serial: str, actor: Actor = ADMIN) -> bytes:
    with vault.unit_of_work(actor) as work:
        return work.read_secret(work.token(serial), purpose="test")


@pytest.fixture
def env(location: VaultLocation, cli: RunCli) -> dict[str, str]:
    """The environment of a console script pointed at a vault made with `oathdesk init`."""
    environment = cli_env(location)
    result = cli("init", env=environment)
    assert result.returncode == 0, result.stderr
    return environment


@pytest.fixture
def sqlite_location(tmp_path: Path) -> VaultLocation:
    """A SQLite vault's place only: for tests of the command line or key handling, where the
    database makes no difference (storage tests use the parametrized ``location``)."""
    path = tmp_path / "vault.sqlite3"
    return VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)


@pytest.fixture
def sqlite_env(tmp_path: Path, cli: RunCli) -> dict[str, str]:
    """Like ``env``, SQLite only: for tests of the command line itself rather than of storage."""
    environment = {
        "OATHDESK_VAULT": str(tmp_path / "vault.sqlite3"),
        "OATHDESK_KEY_FILE": str(tmp_path / "vault.key"),
    }
    result = cli("init", env=environment)
    assert result.returncode == 0, result.stderr
    return environment
