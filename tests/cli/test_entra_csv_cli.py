"""`oathdesk entra-csv lint` through the real console script: no vault, exit codes, one line
per problem, and the corrected copy."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

from oathdesk.seed import encode_base32
from tests.conftest import RunCli, assert_one_line_error
from tests.formats.helpers import ENTRA_HEADER, assert_no_secret

SEEDS = [bytes(range(i, i + 20)) for i in (0, 20, 40, 60)]
GOOD = (
    f"{ENTRA_HEADER}\r\n"
    f"helga@contoso.com,1100000001,{encode_base32(SEEDS[0])},30,Token2,C202\r\n"
    f"olaf@contoso.com,1100000002,{encode_base32(SEEDS[1])},60,Token2,C202\r\n"
)
BROKEN = (
    f"{ENTRA_HEADER}\n"
    f"helga@contoso.com,1100000001,{encode_base32(SEEDS[0])},30,Token2,C202\n"
    f"x,1100000002,{SEEDS[1].hex()},45,Token2,C202\n"  # 3: upn, hex, interval
    f"olaf@contoso.com,1100000001,{encode_base32(SEEDS[2])},30,Token2,C202\n"  # 4: duplicate
)
LINE = re.compile(r"^broken\.csv:\d+(: column '[a-z ]+')?: .+; .+$")


def test_a_good_file_is_ready_to_upload(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_bytes(GOOD.encode())
    # no OATHDESK_VAULT, no vault anywhere: lint needs none
    result = cli("entra-csv", "lint", str(path), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "good.csv: 2 token(s), ready to upload\n"


def test_every_problem_is_one_complete_line(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN)
    result = cli("entra-csv", "lint", str(path))
    assert result.returncode == 1
    assert_one_line_error(result)
    assert result.stderr.startswith("error: 4 problem(s) in broken.csv; fix them and lint again")
    assert "--fix NEW.csv" in result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":", 2)[1] for line in lines] == ["3", "3", "3", "4"]
    assert all(LINE.match(line) for line in lines), lines
    assert "broken.csv:3: column 'secret key': the secret key looks like hex" in result.stdout
    assert "broken.csv:3: column 'time interval': the time interval must be 30 or 60" in (
        result.stdout
    )
    assert "broken.csv:3: column 'upn': not a valid UPN" in result.stdout
    assert "broken.csv:4: column 'serial number': the same serial number as line 2" in (
        result.stdout
    )
    assert_no_secret([result.stdout, result.stderr], SEEDS)


def test_what_the_portal_may_refuse_fails_the_lint(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "excel.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + GOOD.replace(",", "\t").encode("utf-16-le"))
    result = cli("entra-csv", "lint", str(path))
    assert result.returncode == 1
    assert_one_line_error(result)
    assert "excel.txt: the values are separated by tabs; the portal expects commas" in (
        result.stdout
    )
    assert "excel.txt: the file is UTF-16" in result.stdout


def test_json_report(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN)
    result = cli("entra-csv", "lint", str(path), "--json")
    assert result.returncode == 1
    assert_one_line_error(result)
    report = json.loads(result.stdout)
    assert (report["ok"], report["tokens"], report["delimiter"]) == (False, 1, ",")
    assert [(p["line"], p["column"], p["code"]) for p in report["problems"]] == [
        (3, "secret key", "secret-hex"),
        (3, "time interval", "interval-invalid"),
        (3, "upn", "upn-invalid"),
        (4, "serial number", "serial-duplicate"),
    ]
    assert all(p["fix"] for p in report["problems"])
    good = tmp_path / "good.csv"
    good.write_bytes(codecs.BOM_UTF8 + GOOD.encode())
    ok = json.loads(cli("entra-csv", "lint", str(good), "--json").stdout)
    assert (ok["ok"], ok["encoding"], ok["problems"]) == (True, "utf-8-sig", [])
    assert [w["code"] for w in ok["warnings"]] == ["byte-order-mark"]


def test_fix_writes_a_private_corrected_copy(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "vendor.csv"
    hex_rows = GOOD.replace(encode_base32(SEEDS[1]), SEEDS[1].hex()).replace(",", ";")
    path.write_text(hex_rows)
    fixed = tmp_path / "upload.csv"
    result = cli("entra-csv", "lint", str(path), "--fix", str(fixed))
    assert result.returncode == 0, result
    assert result.stderr == ""
    assert (fixed.stat().st_mode & 0o777) == 0o600
    assert result.stdout.splitlines() == [
        f"wrote {fixed} (mode 0600; it holds seeds: delete it after the upload): "
        "semicolons replaced by commas; converted 1 hex secret(s) to base32",
        "upload.csv: 2 token(s), ready to upload",
    ]
    assert fixed.read_bytes() == GOOD.encode()
    assert_no_secret([result.stdout], SEEDS)
    # the old option name still works, and an existing file is never overwritten
    again = cli("entra-csv", "lint", str(path), "--fix-hex", str(fixed))
    assert again.returncode == 2
    assert_one_line_error(again)
    assert "exists; choose a new file name" in again.stderr
    assert fixed.read_bytes() == GOOD.encode()


def test_files_that_cannot_be_linted(cli: RunCli, tmp_path: Path) -> None:
    missing = cli("entra-csv", "lint", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2
    assert_one_line_error(missing)
    not_entra = tmp_path / "sheet.csv"
    not_entra.write_text("User,Secret\nhelga@contoso.com,JBSWY3DPEHPK3PXP\n")
    refused = cli("entra-csv", "lint", str(not_entra))
    assert refused.returncode == 1
    assert_one_line_error(refused)
    assert "sheet.csv:1: the first row is not the Entra OATH CSV header" in refused.stdout
    unfixable = cli("entra-csv", "lint", str(not_entra), "--fix", str(tmp_path / "out.csv"))
    assert unfixable.returncode == 2
    assert_one_line_error(unfixable)
    assert not (tmp_path / "out.csv").exists()
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty.csv: the file is empty" in cli("entra-csv", "lint", str(empty)).stdout


def test_a_hostile_file_cannot_forge_output_lines(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "evil.csv"
    path.write_text(
        f"{ENTRA_HEADER}\n"
        '"helga@contoso.com\nevil.csv: ready to upload\x1b[2J",1,2,3,4,5\n'
        '"\x1b[1Aanna@contoso.com",1,2,3,4,5\n'
    )
    result = cli("entra-csv", "lint", str(path))
    assert result.returncode == 1
    assert "ready to upload" not in result.stdout
    assert "\x1b" not in result.stdout + result.stderr
    assert all(line.startswith(("evil.csv:2", "evil.csv:4")) for line in result.stdout.splitlines())
