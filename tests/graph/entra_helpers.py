"""Helpers for the `oathdesk entra` tests: a real SQLite vault, the CLI run in-process through
``cli.main.run`` (or as a real subprocess), tokens seeded with known seeds."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.cli.main import run
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import Actor, NewToken, Vault
from tests.conftest import CliResult
from tests.graph.fake_graph.fake import FakeGraph
from tests.pg import PostgresServer
from tests.vault_fixtures import cli_env, start_from

ADMIN = Actor("local:test", "admin")


@dataclass
class EntraWorld:
    """A vault, its CLI environment and the fake tenant, side by side."""

    location: VaultLocation
    vault: Vault
    fake: FakeGraph
    env: dict[str, str]
    seeds: dict[str, bytes]  # serial -> seed, to look for leaks
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def cli(self, *args: str, stdin: str = "") -> CliResult:
        """`oathdesk ARGS` in this process (the fake runs in a thread here)."""
        for name, value in self.env.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self.capsys.readouterr()
        code = run(list(args))
        out, err = self.capsys.readouterr()
        return CliResult(code, out, err)

    def login(self) -> CliResult:
        result = self.cli(
            "entra",
            "login",
            "--tenant",
            self.fake.tenant_id,
            "--client-id",
            self.fake.client_id,
            "--client-secret",
            "-",
            "--authority-host",
            self.fake.authority_host,
            "--graph-url",
            self.fake.graph_url,
            "--ca-bundle",
            self.fake.ca_bundle,
            stdin=self.fake.client_secret + "\n",
        )
        assert result.returncode == 0, result
        return result

    def add_tokens(
        self,
        upn: str,
        count: int,
        *,
        first: int,
        kind: TokenKind = TokenKind.CLASSIC,
        in_entra: bool = True,
    ) -> list[str]:
        """``count`` tokens assigned to ``upn`` (added to the vault, and to the fake tenant)."""
        if upn not in {u.upn for u in self.vault.list_users()}:
            self.vault.add_user(ADMIN, upn)
            if in_entra:
                self.fake.add_user(upn)
        items = []
        for number in range(first, first + count):
            serial = f"8659612{number:04d}"
            seed = os.urandom(20)
            self.seeds[serial] = seed
            items.append(NewToken(serial, "Token2", "C202", kind, secret=seed, upn=upn))
        self.vault.add_tokens(ADMIN, items)
        return [item.serial for item in items]

    def audit_text(self) -> str:
        """Everything in the audit table, as text (to scan for secrets)."""
        with self.vault.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT action, upn, serial, details FROM audit_log"))
            return "\n".join(" ".join(str(v) for v in row) for row in rows)

    def db_bytes(self) -> bytes:
        assert self.location.sqlite_path is not None
        folder = self.location.sqlite_path.parent
        return b"".join(p.read_bytes() for p in folder.glob("vault.sqlite3*"))


def _make_world(
    location: VaultLocation,
    fake: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[EntraWorld]:
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, ADMIN)
    for name in [n for n in os.environ if n.startswith("OATHDESK_")]:
        monkeypatch.delenv(name)
    try:
        yield EntraWorld(location, vault, fake, cli_env(location), {}, monkeypatch, capsys)
    finally:
        vault.close()


@pytest.fixture
def world(
    tmp_path: Path,
    fake_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    migrated_sqlite: Path,
) -> Iterator[EntraWorld]:
    """A SQLite vault next to the fake tenant (a copy of the schema migrated once)."""
    path = tmp_path / "vault" / "vault.sqlite3"
    path.parent.mkdir()
    start_from(migrated_sqlite, path)
    location = VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)
    yield from _make_world(location, fake_graph, monkeypatch, capsys)


@pytest.fixture
def pg_world(
    tmp_path: Path,
    postgres: PostgresServer,
    fake_graph: FakeGraph,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[EntraWorld]:
    """The same on a PostgreSQL vault (db_bytes does not apply)."""
    location = VaultLocation(postgres.create_database(), tmp_path / "vault.key", None)
    yield from _make_world(location, fake_graph, monkeypatch, capsys)
