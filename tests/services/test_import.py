"""`oathdesk import` with real files: Entra CSV, spreadsheets (CSV and XLSX), otpauth lists;
all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from oathdesk.seed import build_otpauth_uri, encode_base32
from oathdesk.vault.config import VaultLocation
from tests.conftest import RunCli, assert_one_line_error
from tests.formats.helpers import StockToken, graph_style_csv
from tests.vault_fixtures import cli_env

S1, S2, S3 = bytes([1]) * 20, bytes([2]) * 20, bytes(range(200, 220))


@pytest.fixture
def env(location: VaultLocation, cli: RunCli) -> dict[str, str]:
    environment = cli_env(location)
    assert cli("init", env=environment).returncode == 0
    return environment


def vault_contents(cli: RunCli, env: dict[str, str]) -> tuple[str, str, str]:
    return (
        cli("token", "list", "--json", env=env).stdout,
        cli("user", "list", "--json", env=env).stdout,
        cli("audit", "export", env=env).stdout,
    )


def test_entra_csv_import(env: dict[str, str], cli: RunCli, tmp_path: Path) -> None:
    data = (
        "upn,serial number,secret key,timeinterval,manufacturer,model\r\n"
        f"helga@contoso.com,60234567,{encode_base32(S1)},30,Token2,C202\r\n"
        f"olaf@contoso.com,60234568,{encode_base32(S2)},60,Token2,C203\r\n"
    )
    source = tmp_path / "token2-order.csv"
    source.write_bytes(b"\xef\xbb\xbf" + data.encode())
    dry = cli("import", str(source), "--dry-run", env=env)
    assert "no problems" in dry.stdout
    assert json.loads(cli("token", "list", "--json", env=env).stdout) == []
    done = cli("import", str(source), env=env)
    assert done.returncode == 0, done.stderr
    assert "imported 2 classic token(s) from token2-order.csv (entra-csv): 2 assigned to 2 " in (
        done.stdout
    )
    assert f"now destroy {source} and every copy" in done.stdout
    assert f"shred -u {source}" in done.stdout
    tokens = json.loads(cli("token", "list", "--json", env=env).stdout)
    assert [(t["serial"], t["kind"], t["state"], t["upn"], t["period"]) for t in tokens] == [
        ("60234567", "classic", "assigned", "helga@contoso.com", 30),
        ("60234568", "classic", "assigned", "olaf@contoso.com", 60),
    ]
    assert cli("audit", "verify", env=env).returncode == 0


@pytest.mark.slow
def test_failed_import_leaves_the_vault_as_it_was(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    cli("user", "add", "helga@contoso.com", env=env)
    cli(
        "token",
        "add",
        "--serial",
        "60234567",
        "--user",
        "helga@contoso.com",
        env=env,
        input=encode_base32(S3),
    )
    before = vault_contents(cli, env)
    broken = tmp_path / "broken.csv"
    broken.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f"anna@contoso.com,60234569,{encode_base32(S1)},30,Token2,C202\n"
        f"bad-upn,60234570,{S2.hex()},45,Token2,C202\n"
    )
    refused = cli("import", str(broken), env=env)
    assert_one_line_error(refused)
    assert "nothing was imported" in refused.stderr
    assert "broken.csv:3: column 'secret key'" in refused.stdout
    assert "broken.csv:3: column 'time interval'" in refused.stdout
    assert "broken.csv:3: column 'upn'" in refused.stdout
    clash = tmp_path / "clash.csv"
    clash.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f"anna@contoso.com,60234571,{encode_base32(S1)},30,Token2,C202\n"
        f"anna@contoso.com,60234567,{encode_base32(S2)},30,Token2,C202\n"
    )
    conflict = cli("import", str(clash), env=env)
    assert_one_line_error(conflict)
    assert "clash.csv:3: column 'serial number': a token with serial 60234567 is already" in (
        conflict.stdout
    )
    assert vault_contents(cli, env) == before
    # One seed on two tokens across the vault: the row's line and the other token's serial,
    # never the seed (in any spelling), and nothing imported.
    twin = tmp_path / "twin.csv"
    twin.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f"anna@contoso.com,60234572,{encode_base32(S1)},30,Token2,C202\n"
        f"anna@contoso.com,60234573,{encode_base32(S3)},30,Token2,C202\n"
    )
    refused_twin = cli("import", str(twin), env=env)
    assert_one_line_error(refused_twin)
    assert refused_twin.stdout.splitlines() == [
        "twin.csv:3: column 'secret key': this secret is already on token 60234567 in the "
        "vault; every token has its own seed; check the row against the vendor's file; if the "
        "token was re-issued, retire token 60234567 first"
    ]
    shown = refused_twin.stdout + refused_twin.stderr
    for spelling in (encode_base32(S3), S3.hex(), encode_base32(S3).lower()):
        assert spelling not in shown
    assert vault_contents(cli, env) == before


def test_spreadsheets_csv_and_xlsx(env: dict[str, str], cli: RunCli, tmp_path: Path) -> None:
    sheet = tmp_path / "mfa-secrets.csv"
    grouped = " ".join(encode_base32(S1)[i : i + 4] for i in range(0, 32, 4))
    sheet.write_text(f"User;Secret key\nhelga@contoso.com;{grouped}\n")
    assert cli("import", str(sheet), env=env).returncode == 0
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["UPN", "Serial", "Seed"])
    ws.append(["olaf@contoso.com", "86596120001", encode_base32(S2).lower()])
    ws.append(["anna@contoso.com", None, S3.hex()])
    xlsx = tmp_path / "tokens.xlsx"
    book.save(xlsx)
    done = cli("import", str(xlsx), env=env)
    assert done.returncode == 0, done.stderr
    assert "1 token(s) had no serial" in done.stdout
    tokens = {t["upn"]: t for t in json.loads(cli("token", "list", "--json", env=env).stdout)}
    assert tokens["olaf@contoso.com"]["serial"] == "86596120001"
    assert tokens["anna@contoso.com"]["serial"].startswith("unknown-")
    assert tokens["helga@contoso.com"]["kind"] == "programmable"


def test_otpauth_list(env: dict[str, str], cli: RunCli, tmp_path: Path) -> None:
    listing = tmp_path / "uris.txt"
    listing.write_text(
        "# exported from the old tool\n"
        + build_otpauth_uri(S1, account="helga@contoso.com", issuer="Microsoft")
        + "\n\n"
        + build_otpauth_uri(S2, account="not a upn", issuer="Microsoft")
        + "\n"
    )
    refused = cli("import", str(listing), env=env)
    assert "uris.txt:4: the URI's account is not a UPN" in refused.stdout
    listing.write_text(
        build_otpauth_uri(S1, account="helga@contoso.com", issuer="Microsoft", period=60) + "\n"
    )
    assert cli("import", str(listing), env=env).returncode == 0
    token = json.loads(cli("token", "list", "--json", env=env).stdout)[0]
    assert token["period"] == 60


def test_progress_is_reported_for_big_files(tmp_path: Path) -> None:
    import base64
    import os

    from oathdesk.services.importer import import_seeds
    from oathdesk.vault.keys import MasterKey
    from oathdesk.vault.vault import Vault
    from tests.vault_fixtures import ADMIN

    path = tmp_path / "v.sqlite3"
    vault = Vault.create(
        VaultLocation(f"sqlite:///{path}", tmp_path / "k", path), MasterKey.generate(), ADMIN
    )
    rows = "".join(
        f"u{i % 2000}@contoso.com,{80000000 + i},{base64.b32encode(os.urandom(20)).decode()},"
        "30,Token2,C202\n"
        for i in range(6000)
    )
    data = ("upn,serial number,secret key,time interval,manufacturer,model\n" + rows).encode()
    calls: list[tuple[int, int]] = []
    result = import_seeds(
        vault, ADMIN, data, progress=lambda done, total: calls.append((done, total))
    )
    assert result.imported == 6000
    assert calls[0] == (1000, 6000)
    assert calls[-1] == (6000, 6000)


def test_warnings_are_shown_and_do_not_stop_an_import(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    old_template = tmp_path / "old.csv"
    old_template.write_text(
        "upn,serial number,secret key,timeinterval,manufacturer,model,Enabled\n"
        f"helga@contoso.com,60234567,{encode_base32(S1)},30,Token2,C202,true\n"
    )
    dry = cli("import", str(old_template), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "warning: old.csv:1:" in dry.stdout
    assert "Enabled" in dry.stdout
    done = cli("import", str(old_template), env=env)
    assert done.returncode == 0, done.stderr
    assert "warning: old.csv:1:" in done.stdout
    assert "imported 1 classic token(s)" in done.stdout


def test_unknown_formats_are_refused_with_what_to_do(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    pdf = tmp_path / "seeds.pdf"
    pdf.write_bytes(b"%PDF-1.7 ...")
    refused = cli("import", str(pdf), env=env)
    assert_one_line_error(refused)
    assert "the file is a PDF" in refused.stderr


def _import_on_a_terminal(path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """`oathdesk import PATH` with stderr on a pseudo-terminal (where the bar is drawn) and
    stdout on a pipe; returns the exit status, stdout and what the terminal received."""
    import os
    import pty
    import select
    import subprocess

    from tests.conftest import OATHDESK

    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    process = subprocess.Popen(
        [str(OATHDESK), "import", str(path)],
        env={**full_env, **env, "TERM": "xterm", "COLUMNS": "100"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    terminal = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            terminal += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    return process.wait(), stdout, terminal.decode(errors="replace")


def test_a_progress_bar_on_the_terminal_for_big_files(env: dict[str, str], tmp_path: Path) -> None:
    import base64
    import os

    header = "upn,serial number,secret key,time interval,manufacturer,model\n"
    big = tmp_path / "big.csv"
    big.write_text(
        header
        + "".join(
            f"u{i % 2000}@contoso.com,{80000000 + i},"
            f"{base64.b32encode(os.urandom(20)).decode()},30,Token2,C202\n"
            for i in range(6000)
        )
    )
    status, stdout, terminal = _import_on_a_terminal(big, env)
    assert status == 0, terminal
    assert "encrypting and storing" in terminal
    assert "100%" in terminal
    assert "\x1b" not in stdout  # the summary on stdout stays plain text
    assert stdout.startswith("imported 6000 classic token(s) from big.csv (entra-csv): 6000 ")
    small = tmp_path / "small.csv"
    small.write_text(header + f"helga@contoso.com,70000001,{encode_base32(S1)},30,Token2,C202\n")
    status, stdout, terminal = _import_on_a_terminal(small, env)
    assert status == 0, terminal
    assert "encrypting" not in terminal


def test_no_progress_bar_is_built_where_no_one_sees_it(env: dict[str, str], tmp_path: Path) -> None:
    """A big import with stderr on a pipe (a script, a timer, a CI log) neither draws a bar nor
    loads rich to draw nothing: ``-X importtime`` lists every module the process imports."""
    import base64
    import os
    import subprocess
    import sys

    big = tmp_path / "big.csv"
    big.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        + "".join(
            f"u{i}@contoso.com,{80000000 + i},{base64.b32encode(os.urandom(20)).decode()},30,"
            "Token2,C202\n"
            for i in range(6000)
        )
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "oathdesk", "import", str(big)],
        env={**full_env, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("imported 6000 classic token(s)")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "oathdesk.vault.vault" in imported  # the listing is whole
    assert not {name for name in imported if name.startswith("rich")}
    assert "encrypting" not in done.stderr


def test_users_over_the_limit_with_what_the_vault_holds(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    assert cli("settings", "set", "max_tokens_per_user", "2", env=env).returncode == 0
    cli("user", "add", "helga@contoso.com", env=env)
    added = cli(
        "token", "add", "--serial", "70000001", "--user", "helga@contoso.com",
        env=env, input=encode_base32(S3),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    before = vault_contents(cli, env)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "User,Serial,Secret\n"
        f"helga@contoso.com,70000002,{encode_base32(S1)}\n"
        f"helga@contoso.com,70000003,{encode_base32(S2)}\n"
    )
    refused = cli("import", str(sheet), "--dry-run", env=env)
    assert_one_line_error(refused)
    assert refused.stdout.splitlines() == [
        "sheet.csv:3: column 'User': helga@contoso.com would have more than 2 tokens (Entra's "
        "limit); give this token to someone else, or retire one of the user's tokens first"
    ]
    assert vault_contents(cli, env) == before


def test_formula_cells_and_bad_upns_are_refused_everywhere_they_enter(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    """Issue 13, item 5: the import, `user add` and `token add` refuse what a spreadsheet
    would run as a formula and UPNs outside Entra's rules; nothing is stored."""
    before = vault_contents(cli, env)
    order = tmp_path / "order.csv"
    order.write_text(
        "upn,serial number,secret key,time interval,manufacturer,model\n"
        f'helga@contoso.com,60234567,{encode_base32(S1)},30,"=HYPERLINK(""x"")",C202\n'
        f"-olaf@contoso.com,60234568,{encode_base32(S2)},30,Token2,C202\n"
        f"anna@contoso.com,@SUM(1+1),{encode_base32(S3)},30,Token2,+cmd|' /C calc'!A0\n"
    )
    refused = cli("import", str(order), env=env)
    assert_one_line_error(refused)
    assert refused.stdout.splitlines() == [
        f"order.csv:2: column 'manufacturer': {line}" for line in [_formula("manufacturer")]
    ] + [
        f"order.csv:3: column 'upn': {_formula('upn')}",
        f"order.csv:4: column 'model': {_formula('model')}",
        f"order.csv:4: column 'serial number': {_formula('serial number')}",
    ]
    lint = cli("entra-csv", "lint", str(order), env=env)
    assert lint.returncode == 1
    assert "ready to upload" not in lint.stdout
    for upn in ("-helga@contoso.com", "a+b@contoso.com", "helga.@contoso.com"):
        bad_user = cli("user", "add", "--", upn, env=env)
        assert_one_line_error(bad_user)
        assert "not a valid UPN" in bad_user.stderr
    for option, value in (("--serial", "@SUM(1+1)"), ("--model", "=1+1")):
        args = {"--serial": "60234599", "--model": "C202", option: value}
        bad_token = cli(
            "token",
            "add",
            *[part for pair in args.items() for part in pair],
            env=env,
            input=S3.hex(),
        )
        assert_one_line_error(bad_token)
        assert "runs as a formula" in bad_token.stderr
    assert vault_contents(cli, env) == before


def _formula(what: str) -> str:
    from oathdesk.formats.cells import FORMULA_FIX, formula_message

    return f"{formula_message(what)}; {FORMULA_FIX}"


def test_import_help_names_the_kind_each_format_really_gets(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    """Issue 13, item 7: `import --help` said every non-Entra format defaults to programmable,
    while PSKC files (vendors' factory-seeded tokens) were imported as classic."""
    import io
    import re

    import pskc

    from oathdesk.formats.pskc import TOTP_URN

    container = pskc.PSKC()
    key = container.add_key(id="k", serial="60230001", secret=S1, algorithm=TOTP_URN)
    key.manufacturer, key.model, key.time_interval, key.response_length = "Token2", "C202", 30, 6
    buffer = io.BytesIO()
    container.write(buffer)
    files = {
        "entra-csv": (
            "order.csv",
            "upn,serial number,secret key,time interval,manufacturer,model\n"
            f"helga@contoso.com,60230002,{encode_base32(S2)},30,Token2,C202\n".encode(),
        ),
        "pskc": ("vendor.pskc", buffer.getvalue()),
        "spreadsheet": ("sheet.csv", f"User,Secret\nolaf@contoso.com,{S3.hex()}\n".encode()),
        "otpauth": (
            "uris.txt",
            (build_otpauth_uri(bytes(range(60, 80)), account="anna@contoso.com") + "\n").encode(),
        ),
        "graph-csv": (
            "stock.csv",
            graph_style_csv([StockToken("60230003", bytes(range(80, 100)))]).encode(),
        ),
        "serial-list": (
            "serials.txt",
            f"60230004,{encode_base32(bytes(range(100, 120)))}\n".encode(),
        ),
    }
    help_text = " ".join(cli("import", "--help").stdout.split())
    claimed = {}
    for kind, formats in re.findall(
        r"(classic|programmable)(?: \([^)]*\))? for ([a-z, -]+?) \(", help_text
    ):
        for name in formats.split(", "):
            claimed[name] = kind
    assert set(claimed) == set(files)
    for file_format, (name, data) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        done = cli("import", str(path), env=env)
        assert done.returncode == 0, done.stderr
        assert f"imported 1 {claimed[file_format]} token(s) from {name} ({file_format})" in (
            done.stdout
        )


def _stock_files() -> dict[str, tuple[str, bytes, list[tuple[str, str, int]]]]:
    """Each vendor stock format: (file name, content, [(serial, algorithm, period)] expected)."""
    graph = [
        StockToken("61000001", bytes(range(1, 21)), 30, "sha1"),
        StockToken("61000002", bytes(range(2, 22)), 60, "sha256"),
    ]
    entra = (
        "upn,serial number,secret key,time interval,manufacturer,model\r\n"
        f",62000001,{encode_base32(bytes(range(3, 23)))},30,Token2,C202\r\n"
        f",62000002,{encode_base32(bytes(range(4, 24)))},60,Token2,C202\r\n"
    )
    # A hex seed written all in digits: read as hex by the spreadsheet's rule (40 digits).
    serials = (
        f"Serial;Secret\r\n63000001;{encode_base32(bytes(range(5, 25)))}\r\n63000002;{'3' * 40}\r\n"
    )
    return {
        "graph-csv": (
            "inventory.csv",
            graph_style_csv(
                graph,
                columns=[
                    "model",
                    "hashFunction",
                    "secretKey",
                    "manufacturer",
                    "timeIntervalInSeconds",
                    "serialNumber",
                ],
            ).encode(),
            [("61000001", "SHA1", 30), ("61000002", "SHA256", 60)],
        ),
        "entra-csv": (
            "order.csv",
            entra.encode(),
            [("62000001", "SHA1", 30), ("62000002", "SHA1", 60)],
        ),
        "serial-list": (
            "serials.csv",
            serials.encode(),
            [("63000001", "SHA1", 30), ("63000002", "SHA1", 30)],
        ),
    }


@pytest.mark.parametrize("file_format", ["graph-csv", "entra-csv", "serial-list"])
def test_vendor_stock_files_import_as_classic_tokens_in_stock(
    file_format: str, env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    """Issue 14: stock files (no user) are detected, imported as classic tokens in stock with
    the algorithm and period of each row, in one audited import; nobody is created."""
    name, data, expected = _stock_files()[file_format]
    path = tmp_path / name
    path.write_bytes(data)
    done = cli("import", str(path), env=env)
    assert done.returncode == 0, done.stderr
    assert (
        f"imported 2 classic token(s) from {name} ({file_format}): 0 assigned to 0 user(s), "
        "2 in stock" in done.stdout
    )
    tokens = json.loads(cli("token", "list", "--json", env=env).stdout)
    got = [(t["serial"], str(t["algorithm"]).upper(), t["period"]) for t in tokens]
    assert got == expected
    assert {(t["kind"], t["state"], t["upn"]) for t in tokens} == {("classic", "in_stock", None)}
    users = cli("user", "list", "--json", env=env)
    assert users.returncode == 0, users.stderr
    assert json.loads(users.stdout) == []
    assert cli("audit", "verify", env=env).returncode == 0


def _mixed_pskc() -> bytes:
    from tests.formats.test_pskc_hotp_mix import MIXED, mixed_pskc

    return mixed_pskc(MIXED)


def test_pskc_with_hotp_keys_is_refused_naming_skip_hotp_and_imports_totp_with_it(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    path = tmp_path / "vendor.pskc"
    path.write_bytes(_mixed_pskc())
    before = vault_contents(cli, env)
    for extra in ((), ("--dry-run",)):
        refused = cli("import", str(path), *extra, env=env)
        assert_one_line_error(refused)
        assert "--skip-hotp" in refused.stderr
        assert "2 HOTP (counter-based) key(s) (70000002, 70000004)" in refused.stderr
    assert vault_contents(cli, env) == before
    done = cli("import", str(path), "--skip-hotp", env=env)
    assert done.returncode == 0, done.stderr
    assert (
        "skipped 2 HOTP (counter-based) key(s), which Entra cannot use: 70000002, 70000004"
        in done.stdout
    )
    assert "imported 2 classic token(s)" in done.stdout
    tokens = json.loads(cli("token", "list", "--json", env=env).stdout)
    assert [(t["serial"], t["state"]) for t in tokens] == [
        ("70000001", "in_stock"),
        ("70000003", "in_stock"),
    ]


def test_a_pskc_file_of_hotp_keys_only_is_refused_even_with_skip_hotp(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    from oathdesk.formats.pskc import HOTP_URN
    from tests.formats.test_pskc_hotp_mix import mixed_pskc

    path = tmp_path / "hotp.pskc"
    path.write_bytes(mixed_pskc({f"7100000{n}": (HOTP_URN, bytes([n]) * 20) for n in range(1, 8)}))
    refused = cli("import", str(path), "--skip-hotp", env=env)
    assert_one_line_error(refused)
    assert "only 7 HOTP" in refused.stderr
    assert "71000001, 71000002, 71000003, 71000004, 71000005 and 2 more" in refused.stderr
    assert "ask the vendor for TOTP seeds" in refused.stderr


def test_a_spreadsheets_names_and_phones_go_to_new_users_only(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    """New users get the file's display name and phone on file; a user already in the vault
    keeps theirs, and a difference is a warning saying how to change it (issue 16)."""
    added = cli("user", "add", "olaf@contoso.com", "--phone", "+41790000000", env=env)
    assert added.returncode == 0
    sheet = tmp_path / "people.csv"
    sheet.write_text(
        "User,Display name,Mobile,Secret\n"
        f"helga@contoso.com,Helga Braun,+44 20 7946 0958,{encode_base32(S1)}\n"
        f"anna@contoso.com,Anna Berg,,{encode_base32(S3)}\n"
        f"olaf@contoso.com,Olaf B,+44 20 7946 0959,{encode_base32(S2)}\n"
    )
    done = cli("import", str(sheet), env=env)
    assert done.returncode == 0, done.stderr
    users = {u["upn"]: u for u in json.loads(cli("user", "list", "--json", env=env).stdout)}
    assert (users["helga@contoso.com"]["display_name"], users["helga@contoso.com"]["phone"]) == (
        "Helga Braun",
        "+442079460958",
    )
    assert (users["anna@contoso.com"]["display_name"], users["anna@contoso.com"]["phone"]) == (
        "Anna Berg",
        "",
    )
    assert (users["olaf@contoso.com"]["display_name"], users["olaf@contoso.com"]["phone"]) == (
        "",
        "+41790000000",
    )
    said = done.stdout + done.stderr
    (warning,) = [line for line in said.splitlines() if "olaf@contoso.com" in line]
    assert "oathdesk user edit olaf@contoso.com" in warning
