"""Exports with secrets: admin only, audited, 0600, correct content; seeds generate."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from oathdesk.errors import NotFound, PermissionDenied
from oathdesk.formats.entra_csv import parse_entra_csv
from oathdesk.formats.otpauth_list import parse_otpauth_list
from oathdesk.formats.problems import Code
from oathdesk.otp import Algorithm
from oathdesk.seed import encode_base32, parse_seed
from oathdesk.services.exporter import export, export_secrets
from oathdesk.vault.lifecycle import TokenKind, TokenState
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
    assert count == 2
    parsed = parse_entra_csv(text.encode())
    assert parsed.problems == []
    assert parsed.header_spelling == "timeinterval"
    # The programmable token's seed is not in Entra yet either: it goes in the upload too.
    assert [(t.serial, t.secret, t.upn) for t in parsed.tokens] == [
        ("60234567", SECRET, "helga@contoso.com"),
        ("86596120001", bytes(range(1, 21)), "helga@contoso.com"),
    ]
    record = stocked.export_audit(action="tokens.exported")[-1]
    assert record["details"] == {"format": "entra-csv", "serials": ["60234567", "86596120001"]}


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
    # The same tokens as otpauth URIs, which `oathdesk import` reads back.
    listing = export(stocked, ADMIN, "otpauth")
    assert listing.count == 1
    assert "# serial 86596120001" in listing.text
    parsed = parse_otpauth_list(listing.text.encode())
    assert parsed.problems == []
    assert [(r.upn, r.secret, r.period) for r in parsed.records] == [
        ("helga@contoso.com", bytes(range(1, 21)), 30)
    ]


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


def test_exports_leave_out_what_the_target_cannot_take_and_say_why(stocked: Vault) -> None:
    stocked.add_tokens(
        ADMIN,
        [
            NewToken(
                "60239001",
                "Token2",
                "C302",
                TokenKind.CLASSIC,
                bytes(range(100, 132)),
                Algorithm.SHA256,
                upn="helga@contoso.com",
            ),
            NewToken(
                "60239002",
                "Token2",
                "C202",
                TokenKind.CLASSIC,
                bytes(range(140, 204)),
                Algorithm.SHA512,
                8,
                upn="helga@contoso.com",
            ),
        ],
    )
    entra = export(stocked, ADMIN, "entra-csv", header_spelling="time interval")
    assert entra.count == 2  # the classic token and the programmable one
    assert entra.left_out_tokens == 2
    assert [p.message for p in entra.left_out] == [
        "token 60239001 uses SHA256; the Entra CSV means SHA-1 (use `oathdesk export graph-json` "
        "for SHA-256)",
        "token 60239002 uses SHA512; the Entra CSV means SHA-1 (use `oathdesk export graph-json` "
        "for SHA-256)",
        "token 60239002 shows 8 digits; Entra needs 6",
    ]
    assert {p.code for p in entra.left_out} == {Code.NOT_FOR_ENTRA_CSV}
    parsed = parse_entra_csv(entra.text.encode())
    assert (parsed.problems, parsed.form_problems) == ([], [])
    assert parsed.header_spelling == "time interval"
    assert [t.serial for t in parsed.tokens] == ["60234567", "86596120001"]

    graph = export(stocked, ADMIN, "graph-json")
    body = json.loads(graph.text)
    assert [d["serialNumber"] for d in body["value"]] == ["60234567", "60239001", "86596120001"]
    assert body["value"][1]["hashFunction"] == "hmacsha256"
    assert (graph.count, graph.left_out_tokens) == (3, 1)
    assert sorted(p.message for p in graph.left_out) == [
        "token 60239002 shows 8 digits; Entra needs 6",
        "token 60239002 uses SHA512; Graph takes SHA-1 or SHA-256",
    ]
    record = stocked.export_audit(action="tokens.exported")[-1]
    assert record["details"] == {
        "format": "graph-json",
        "serials": ["60234567", "60239001", "86596120001"],
        "left_out": 1,
    }
    # Nothing exportable at all: one line saying how many were left out and why.
    for serial in ("60234567", "60239001", "86596120001"):
        stocked.move(ADMIN, serial, TokenState.REVOKED, details={"reason": "test"})
    with pytest.raises(NotFound, match=r"no token is ready for a graph-json export \(1 left out; "):
        export(stocked, ADMIN, "graph-json")


def test_export_cli_says_what_it_left_out(tmp_path: Path, cli: RunCli) -> None:
    from oathdesk.seed import build_otpauth_uri

    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    listing = tmp_path / "uris.txt"
    listing.write_text(
        build_otpauth_uri(SECRET, account="helga@contoso.com", issuer="Contoso")
        + "\n"
        + build_otpauth_uri(
            bytes(range(1, 21)), account="olaf@contoso.com", issuer="Contoso", digits=8
        )
        + "\n"
    )
    assert cli("import", str(listing), env=env).returncode == 0
    serial = next(
        t["serial"]
        for t in json.loads(cli("token", "list", "--json", env=env).stdout)
        if t["digits"] == 8
    )
    target = tmp_path / "graph.json"
    done = cli("export", "graph-json", "-o", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        f"left out: token {serial} shows 8 digits; Entra needs 6",
        "1 token(s) ready for graph-json were left out: the format cannot take them "
        "(reasons above)",
    ]
    assert "wrote 1 token(s)" in done.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(json.loads(target.read_text())["value"]) == 1
    # An existing file is never overwritten.
    again = cli("export", "graph-json", "-o", str(target), env=env)
    assert again.returncode != 0
    assert "exists; choose a new file name" in again.stderr


def test_entra_csv_export_cli_with_either_header(tmp_path: Path, cli: RunCli) -> None:
    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    order = tmp_path / "order.csv"
    order.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f"helga@contoso.com,60234567,{encode_base32(SECRET)},30,Token2,C202\n"
    )
    assert cli("import", str(order), env=env).returncode == 0
    for spelling in ("timeinterval", "time interval"):
        target = tmp_path / f"entra-{spelling.replace(' ', '-')}.csv"
        done = cli("export", "entra-csv", "-o", str(target), "--header", spelling, env=env)
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        parsed = parse_entra_csv(target.read_bytes())
        assert parsed.ready_to_upload
        assert parsed.header_spelling == spelling
        assert [t.secret for t in parsed.tokens] == [SECRET]
        lint = cli("entra-csv", "lint", str(target))
        assert lint.returncode == 0, lint.stdout
    audit = [json.loads(line) for line in cli("audit", "export", env=env).stdout.splitlines()]
    exported = [r for r in audit if r["action"] == "tokens.exported"]
    assert [r["details"]["serials"] for r in exported] == [["60234567"], ["60234567"]]


def test_seeds_generate_count(tmp_path: Path, cli: RunCli) -> None:
    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    for _ in range(2):
        made = cli("seeds", "generate", "--count", "3", "--algorithm", "sha256", env=env)
        assert made.returncode == 0, made.stderr
        assert "created 3 programmable token(s) with new seeds, in stock" in made.stdout
    tokens = json.loads(cli("token", "list", "--json", env=env).stdout)
    assert len({t["serial"] for t in tokens}) == 6
    assert {(t["kind"], t["state"], t["algorithm"]) for t in tokens} == {
        ("programmable", "in_stock", "sha256")
    }
    both = cli("seeds", "generate", "--count", "1", "--serials", str(tmp_path), env=env)
    assert both.returncode != 0
    neither = cli("seeds", "generate", env=env)
    assert neither.returncode != 0
    assert "give either --count N or --serials FILE" in neither.stderr


def test_an_export_picks_its_tokens_from_a_big_vault_with_every_seed_right(vault: Vault) -> None:
    """1,201 tokens waiting among 3,000: the secrets are read in chunks of the IN clause, and
    each lands with its own serial (an off-by-one between chunks would swap seeds)."""
    seeds = {f"B{i:05d}": i.to_bytes(20, "big") for i in range(3000)}
    waiting = {serial for n, serial in enumerate(sorted(seeds)) if n % 5 == 0 or n == 2999}
    vault.add_tokens(
        ADMIN,
        [
            NewToken(
                serial,
                "Token2",
                "miniOTP-2-i",
                TokenKind.PROGRAMMABLE,
                seed,
                upn=f"{serial}@contoso.com",
            )
            if serial in waiting
            else NewToken(serial, "Token2", "C202", TokenKind.CLASSIC, seed)
            for serial, seed in seeds.items()
        ],
        create_missing_users=True,
    )
    listing = export(vault, ADMIN, "otpauth")
    assert listing.count == len(waiting) == 601
    parsed = parse_otpauth_list(listing.text.encode())
    assert parsed.problems == []
    assert {record.upn: record.secret for record in parsed.records} == {
        f"{serial.lower()}@contoso.com": seeds[serial] for serial in waiting
    }
    body = json.loads(export_secrets(vault, ADMIN, "graph-json")[0])["value"]
    assert len(body) == 3000
    assert all(parse_seed(d["secretKey"]).secret == seeds[d["serialNumber"]] for d in body)


def test_programmable_tokens_with_new_seeds_go_into_the_entra_csv(
    tmp_path: Path, cli: RunCli
) -> None:
    """Issue 13, item 8: a programmable token with a seed oathdesk generated is one Entra does
    not know yet, so the CSV upload must carry it (assigned, or burned and not registered)."""
    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    empty = cli("export", "entra-csv", "-o", str(tmp_path / "none.csv"), env=env)
    assert "no token is ready for an entra-csv export" in empty.stderr
    cli("user", "add", "olaf@contoso.com", env=env)
    cli("user", "add", "anna@contoso.com", env=env)
    for serial, upn in (("86596120010", "olaf@contoso.com"), ("86596120011", "anna@contoso.com")):
        added = cli(
            "token",
            "add",
            "--serial",
            serial,
            "--model",
            "miniOTP-2-i",
            "--user",
            upn,
            "--generate",
            env=env,
        )
        assert added.returncode == 0, added.stderr
    assert cli("token", "burned", "86596120011", env=env).returncode == 0
    target = tmp_path / "upload.csv"
    done = cli("export", "entra-csv", "-o", str(target), env=env)
    assert done.returncode == 0, done.stderr
    parsed = parse_entra_csv(target.read_bytes())
    assert parsed.ready_to_upload
    assert sorted((t.serial, t.upn) for t in parsed.tokens) == [
        ("86596120010", "olaf@contoso.com"),
        ("86596120011", "anna@contoso.com"),
    ]
    # Once Entra knows the seed, it is not uploaded again.
    assert cli("token", "registered", "86596120010", env=env).returncode == 0
    assert cli("token", "registered", "86596120011", env=env).returncode == 0
    again = cli("export", "entra-csv", "-o", str(tmp_path / "again.csv"), env=env)
    assert "no token is ready for an entra-csv export" in again.stderr


def test_an_entra_csv_of_many_chunks_quotes_what_needs_it_with_every_seed_right(
    vault: Vault,
) -> None:
    """Read as columns and written a chunk at a time (joined lines, or the csv module where a
    value needs quoting): each row has its own seed, and the text parses back whole."""
    seeds = {f"C{i:05d}": i.to_bytes(20, "big") for i in range(4100)}
    vault.add_tokens(
        ADMIN,
        [
            NewToken(
                serial,
                "Token2",
                'C202, rev "b"' if serial == "C04000" else "C202",
                TokenKind.CLASSIC,
                seed,
                upn=f"{serial}@contoso.com",
            )
            for serial, seed in seeds.items()
        ],
        create_missing_users=True,
    )
    result = export(vault, ADMIN, "entra-csv")
    assert result.count == len(seeds)
    assert "\r\nc04000@contoso.com,C04000," in result.text
    assert ',Token2,"C202, rev ""b"""\r\n' in result.text
    parsed = parse_entra_csv(result.text.encode())
    assert parsed.problems == []
    assert {t.serial: t.secret for t in parsed.tokens} == seeds
    assert {t.model for t in parsed.tokens} == {"C202", 'C202, rev "b"'}
    with vault.transaction() as conn:
        rows = vault.export_rows(conn, ADMIN, {TokenState.ASSIGNED}, None)
    # The driver's own values on either database; no secret, nor even a serial, in the repr.
    assert repr(rows) == f"ExportColumns({len(seeds)} tokens)"
    assert {type(value) for value in (*rows.nonces, *rows.ciphertexts)} == {bytes}
