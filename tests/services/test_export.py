"""Exports with secrets: admin only, audited, 0600, correct content; seeds generate."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from oathdesk.errors import PermissionDenied
from oathdesk.formats.entra_csv import parse_entra_csv
from oathdesk.seed import encode_base32, parse_seed
from oathdesk.services.exporter import export_secrets
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.vault import Actor, NewToken, Vault
from tests.conftest import RunCli
from tests.vault_fixtures import ADMIN

SECRET = bytes(range(20))


@pytest.fixture
def stocked(vault: Vault) -> Vault:
    vault.add_user(ADMIN, "helga@contoso.com")
    vault.add_tokens(
        ADMIN,
        [
            NewToken(
                "60234567", "Token2", "C202", TokenKind.CLASSIC, SECRET, upn="helga@contoso.com"
            ),
            NewToken(
                "86596120001",
                "Token2",
                "miniOTP-2-i",
                TokenKind.PROGRAMMABLE,
                bytes(range(1, 21)),
                upn="helga@contoso.com",
            ),
        ],
    )
    return vault


def test_entra_csv_export(stocked: Vault) -> None:
    text, count = export_secrets(stocked, ADMIN, "entra-csv", header_spelling="timeinterval")
    assert count == 1
    parsed = parse_entra_csv(text.encode())
    assert parsed.problems == []
    assert parsed.header_spelling == "timeinterval"
    assert [(t.serial, t.secret, t.upn) for t in parsed.tokens] == [
        ("60234567", SECRET, "helga@contoso.com")
    ]
    record = stocked.export_audit(action="tokens.exported")[-1]
    assert record["details"] == {"format": "entra-csv", "serials": ["60234567"]}


def test_graph_json_and_qr_sheet(stocked: Vault) -> None:
    body, count = export_secrets(stocked, ADMIN, "graph-json")
    payload = json.loads(body)
    assert payload["@context"] == "#$delta"
    assert count == 2
    first = payload["value"][0]
    assert first["@contentId"] == "1"
    assert first["secretKey"] == encode_base32(SECRET)
    assert (first["timeIntervalInSeconds"], first["hashFunction"]) == (30, "hmacsha1")
    sheet, _ = export_secrets(stocked, ADMIN, "qr-sheet")
    assert sheet.count("<svg") == 1
    assert "86596120001" in sheet


def test_only_admins_export(stocked: Vault) -> None:
    with pytest.raises(PermissionDenied, match="may not export secrets"):
        export_secrets(stocked, Actor("hd", "helpdesk"), "entra-csv")


def test_export_cli_and_seeds_generate(tmp_path: Path, cli: RunCli) -> None:
    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    serials = tmp_path / "serials.txt"
    serials.write_text("86596120010\n86596120011\n")
    made = cli("seeds", "generate", "--serials", str(serials), env=env)
    assert "created 2 programmable token(s)" in made.stdout
    cli("user", "add", "olaf@contoso.com", env=env)
    cli("token", "assign", "86596120010", "olaf@contoso.com", env=env)
    sheet = tmp_path / "burn.html"
    done = cli("export", "qr-sheet", "-o", str(sheet), env=env)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o600
    assert "contains secrets" in done.stdout
    body = json.loads(_write_and_read(cli, env, tmp_path / "graph.json"))
    assert len(body["value"]) == 2
    assert all(len(parse_seed(v["secretKey"]).secret) == 20 for v in body["value"])


def _write_and_read(cli: RunCli, env: dict[str, str], target: Path) -> str:
    assert cli("export", "graph-json", "-o", str(target), env=env).returncode == 0
    return target.read_text()
