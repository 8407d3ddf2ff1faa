"""Graph's bulk body and the printable QR sheet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import segno

from oathdesk.errors import InvalidInput
from oathdesk.formats.graph_json import graph_delta_body, graph_problems
from oathdesk.formats.problems import Code
from oathdesk.formats.qr_sheet import qr_sheet
from oathdesk.formats.records import SeedRecord
from oathdesk.seed import encode_base32

S1, S2 = bytes(range(20)), bytes(range(20, 52))
HELGA = SeedRecord(2, S1, "helga@contoso.com", "60234567", "Token2", "C202")
OLAF = SeedRecord(3, S2, "olaf@contoso.com", "60234568", None, "C203", "sha256", 6, 60)
USER_ID = "0cadbf92-0000-4000-8000-000000000001"


def test_graph_delta_body() -> None:
    body = json.loads(graph_delta_body([HELGA, OLAF], user_ids={"olaf@contoso.com": USER_ID}))
    assert body["@context"] == "#$delta"
    assert body["value"] == [
        {
            "@contentId": "1",
            "serialNumber": "60234567",
            "manufacturer": "Token2",
            "model": "C202",
            "secretKey": encode_base32(S1),
            "timeIntervalInSeconds": 30,
            "hashFunction": "hmacsha1",
            "displayName": "Token2 60234567",
        },
        {
            "@contentId": "2",
            "serialNumber": "60234568",
            "manufacturer": "Token2",
            "model": "C203",
            "secretKey": encode_base32(S2),
            "timeIntervalInSeconds": 60,
            "hashFunction": "hmacsha256",
            "displayName": "Token2 60234568",
            "assignTo": {"id": USER_ID},
        },
    ]


@pytest.mark.parametrize(
    ("record", "column"),
    [
        (SeedRecord(5, S1, serial="1", model="M", algorithm="sha512"), "hashFunction"),
        (SeedRecord(5, S1, serial="1", model="M", period=45), "timeIntervalInSeconds"),
        (SeedRecord(5, S1, serial="1", model="M", digits=8), ""),
        (SeedRecord(5, S1, serial=None, model="M"), "serialNumber"),
        (SeedRecord(5, S1, serial="1", model=None), "model"),
    ],
)
def test_what_graph_cannot_take_is_refused(record: SeedRecord, column: str) -> None:
    assert [(p.line, p.column, p.code) for p in graph_problems([HELGA, record])] == [
        (5, column, Code.NOT_FOR_GRAPH)
    ]
    with pytest.raises(InvalidInput, match="1 problem"):
        graph_delta_body([HELGA, record])


def test_qr_sheet_holds_each_token_and_escapes_everything(tmp_path: Path) -> None:
    evil = SeedRecord(
        4, S2, "o'brien@contoso.com", '<script>alert("x")</script>', "Tok&en", "<b>C</b>"
    )
    sheet = qr_sheet([HELGA, evil], title="Batch <1>")
    (tmp_path / "sheet.html").write_text(sheet)
    assert sheet.count("<svg") == 2
    assert "<script" not in sheet
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in sheet
    assert "o&#x27;brien@contoso.com" in sheet
    assert "Tok&amp;en &lt;b&gt;C&lt;/b&gt;" in sheet
    assert "Batch &lt;1&gt;" in sheet
    assert "default-src 'none'" in sheet  # the page may load nothing
    assert "Contains secrets" in sheet
    # the QR code is the otpauth URI of the token, built here by hand
    expected = (
        "otpauth://totp/Microsoft:helga@contoso.com?secret="
        f"{encode_base32(S1)}&issuer=Microsoft&algorithm=SHA1&digits=6&period=30"
    )
    assert segno.make(expected, error="m").svg_inline(scale=3, border=2) in sheet


def test_what_an_entra_csv_cannot_hold() -> None:
    from oathdesk.formats.entra_export import entra_csv_problems

    good = SeedRecord(0, S1, "helga@contoso.com", "60234567", "Token2", "C202")
    assert entra_csv_problems([good]) == []
    bad = [
        SeedRecord(0, S1, "helga@contoso.com", "1", "Token2", "C202", period=45),
        SeedRecord(0, S1, "guest#EXT#@contoso.com", "2", "Token2", "C202"),
        SeedRecord(0, S1, None, "3", "Token2", "C202"),
        SeedRecord(0, S1, "helga@contoso.com", "4", "=HYPERLINK(1)", "C202"),
        SeedRecord(0, S1, "helga@contoso.com", "5", "Token2", " "),
        SeedRecord(0, bytes(81), "helga@contoso.com", "6", "Token2", "C202"),
    ]
    problems = entra_csv_problems(bad)
    assert [(p.column, p.message) for p in problems] == [
        ("", "token 1 has a 45-second interval; Entra takes 30 or 60"),
        (
            "upn",
            "token 2: this is a guest account (#EXT#); Entra gives hardware tokens to members only",
        ),
        ("upn", "token 3: the UPN is empty"),
        ("manufacturer", "token 4: the manufacturer starts like a spreadsheet formula"),
        ("model", "token 5 has no model"),
        ("secret key", "token 6: its secret is over 128 base32 characters, which Entra refuses"),
    ]
    assert {p.code for p in problems} == {Code.NOT_FOR_ENTRA_CSV}
