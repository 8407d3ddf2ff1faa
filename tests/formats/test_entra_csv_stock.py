"""An Entra CSV without UPNs is vendor stock: the import takes it, the lint says the portal won't.

The portal's CSV upload (docs: "the file should include the UPN ...") assigns each token to the
user on its row; unassigned tokens, for self-service, exist only in Graph's inventory, and
tokens uploaded by CSV "aren't compatible" with it. So an empty UPN is a form problem: the
import reads past it (a token in stock), the lint fails and says how such tokens reach Entra.
"""

from __future__ import annotations

import json
from pathlib import Path

from oathdesk.formats.entra_csv import parse_entra_csv
from oathdesk.formats.problems import Code
from oathdesk.formats.reader import read_seed_file
from oathdesk.seed import encode_base32
from tests.conftest import RunCli, assert_one_line_error
from tests.formats.helpers import ENTRA_HEADER, assert_no_secret, assert_well_formed

SEEDS = [bytes([n]) * 20 for n in range(1, 4)]
ROWS = [
    f",1100000001,{encode_base32(SEEDS[0])},30,Token2,C202",
    f"helga@contoso.com,1100000002,{encode_base32(SEEDS[1])},60,Token2,C202",
    f",1100000003,{encode_base32(SEEDS[2])},60,Token2,C202",
]
MIXED = (ENTRA_HEADER + "\n" + "\n".join(ROWS) + "\n").encode()


def test_empty_upns_are_stock_for_the_import_and_a_form_problem_for_the_lint() -> None:
    result = parse_entra_csv(MIXED)
    assert result.ok, result.problems
    assert [(t.line, t.upn) for t in result.tokens] == [(2, ""), (3, "helga@contoso.com"), (4, "")]
    assert not result.ready_to_upload
    form = [(p.line, p.column, p.code) for p in result.form_problems]
    assert form == [(2, "upn", Code.UPN_EMPTY), (4, "upn", Code.UPN_EMPTY)]
    rendered = result.form_problems[0].render("stock.csv")
    assert "entra push --stock" in rendered
    assert_well_formed(result.form_problems)
    assert_no_secret([rendered], SEEDS)


def test_the_import_reads_empty_upns_as_tokens_without_a_user() -> None:
    parsed = read_seed_file(MIXED)
    assert parsed.format == "entra-csv"
    assert parsed.ok
    assert [(r.serial, r.upn, r.period) for r in parsed.records] == [
        ("1100000001", None, 30),
        ("1100000002", "helga@contoso.com", 60),
        ("1100000003", None, 60),
    ]


def test_a_file_with_no_upn_at_all_is_stock_too() -> None:
    data = (ENTRA_HEADER + "\n" + "\n".join([ROWS[0], ROWS[2]]) + "\n").encode()
    parsed = read_seed_file(data)
    assert parsed.ok
    assert [r.upn for r in parsed.records] == [None, None]


def test_blanks_are_not_a_upn_and_a_bad_upn_is_still_refused() -> None:
    data = (ENTRA_HEADER + "\n" + ROWS[0].replace(",", "  ,", 1) + "\n").encode()
    result = parse_entra_csv(data)
    assert result.ok
    assert result.tokens[0].upn == ""
    bad = parse_entra_csv((ENTRA_HEADER + "\n" + "not a upn" + ROWS[0] + "\n").encode())
    assert [p.code for p in bad.problems] == [Code.UPN_INVALID]


def test_the_linter_fails_a_stock_file_and_says_which_way_such_tokens_take(
    cli: RunCli, tmp_path: Path
) -> None:
    path = tmp_path / "stock.csv"
    path.write_bytes(MIXED)
    linted = cli("entra-csv", "lint", str(path))
    assert linted.returncode == 1
    assert_one_line_error(linted)
    lines = linted.stdout.splitlines()
    assert [line.split(": column")[0] for line in lines] == ["stock.csv:2", "stock.csv:4"]
    assert all("entra push --stock" in line for line in lines)
    report = json.loads(cli("entra-csv", "lint", str(path), "--json").stdout)
    assert report["ok"] is False
    assert [(p["line"], p["code"]) for p in report["problems"]] == [
        (2, "upn-empty"),
        (4, "upn-empty"),
    ]
    assert report["tokens"] == 3
    # --fix cannot invent a user: the copy still fails on the same rows.
    fixed = cli("entra-csv", "lint", str(path), "--fix", str(tmp_path / "fixed.csv"))
    assert fixed.returncode == 1
    assert "upn-empty" in json.dumps(
        json.loads(cli("entra-csv", "lint", str(tmp_path / "fixed.csv"), "--json").stdout)
    )
