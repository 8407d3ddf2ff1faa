"""Telling the format from the content, and the wrappers that must be opened first."""

from __future__ import annotations

import codecs
import gzip
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from oathdesk.formats.detect import FileFormat, UnknownFormat, detect_format
from oathdesk.formats.reader import read_seed_file
from oathdesk.seed import build_otpauth_uri, encode_base32
from tests.formats.helpers import ENTRA_HEADER
from tests.formats.test_pskc import make_pskc

SECRET = encode_base32(bytes(range(20)))


def workbook(tmp_path: Path) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["User", "Secret"])
    sheet.append(["helga@contoso.com", SECRET])
    book.save(tmp_path / "w.xlsx")
    return (tmp_path / "w.xlsx").read_bytes()


ENTRA = f"{ENTRA_HEADER}\nhelga@contoso.com,1,{SECRET},30,Token2,C202\n"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("entra", ENTRA.encode(), FileFormat.ENTRA_CSV),
        (
            "entra-utf16",
            codecs.BOM_UTF16_LE + ENTRA.replace(",", "\t").encode("utf-16-le"),
            FileFormat.ENTRA_CSV,
        ),
        (
            "entra-timeinterval-semicolons",
            ENTRA.replace("time interval", "timeinterval").replace(",", ";").encode(),
            FileFormat.ENTRA_CSV,
        ),
        ("entra-without-header", ENTRA.split("\n", 1)[1].encode(), FileFormat.ENTRA_CSV),
        ("pskc", make_pskc("pbkdf2"), FileFormat.PSKC),
        (
            "pskc-utf16",
            make_pskc().decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
            FileFormat.PSKC,
        ),
        (
            "otpauth",
            ("# list\n" + build_otpauth_uri(bytes(20), account="a@b.cd") + "\n").encode(),
            FileFormat.OTPAUTH,
        ),
        (
            "spreadsheet-csv",
            f"Title\nUPN;Serial;Secret\nhelga@contoso.com;1;{SECRET}\n".encode(),
            FileFormat.SPREADSHEET,
        ),
    ],
)
def test_formats_are_told_from_the_content(name: str, data: bytes, expected: FileFormat) -> None:
    assert detect_format(data) is expected


def test_an_xlsx_is_a_spreadsheet(tmp_path: Path) -> None:
    assert detect_format(workbook(tmp_path)) is FileFormat.SPREADSHEET


def zip_of(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "x")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b" \n\n", "empty"),
        (zip_of("tokens.csv"), "not an Excel workbook"),
        (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(100), ".xls or a password-protected workbook"),
        (b"-----BEGIN PGP MESSAGE-----\n\nhQEMA...\n", "PGP-encrypted"),
        (bytes([0x85, 0x01, 0x0C, 0x03]) + bytes(50), "PGP-encrypted"),
        (gzip.compress(ENTRA.encode()), "gzip"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"<?xml version='1.0'?><html/>", "XML but not a PSKC"),
        (b"\x00\x01\x02binary\x00", "binary"),
        (b"name,phone\nHelga,123\n", "cannot tell the format"),
    ],
)
def test_what_cannot_be_told_is_one_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(UnknownFormat) as caught:
        detect_format(data)
    assert words in caught.value.message
    assert "\n" not in caught.value.message


def test_read_seed_file_dispatches(tmp_path: Path) -> None:
    entra = read_seed_file(ENTRA.encode())
    assert (entra.format, [r.upn for r in entra.records]) == ("entra-csv", ["helga@contoso.com"])
    assert entra.records[0].algorithm == "sha1"
    sheet = read_seed_file(workbook(tmp_path))
    assert (sheet.format, len(sheet.records)) == ("spreadsheet", 1)
    forced = read_seed_file(ENTRA.encode(), "spreadsheet")  # --format wins over detection
    assert forced.format == "spreadsheet"
    pskc = read_seed_file(make_pskc("psk"), psk=bytes(range(16)))
    assert (pskc.format, len(pskc.records)) == ("pskc", 2)
    with pytest.raises(UnknownFormat, match="unknown format 'csv'"):
        read_seed_file(ENTRA.encode(), "csv")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_told_or_refused_in_one_line(data: bytes) -> None:
    refused = None
    try:
        detected = detect_format(data)
    except UnknownFormat as error:
        refused = error.message
    if refused is not None:
        assert "\n" not in refused
        return
    assert detected in FileFormat
    read_seed_file(data, detected)  # and the chosen reader copes with it


SAMPLES = [
    ENTRA.encode(),
    make_pskc("psk"),
    (
        "\n".join(build_otpauth_uri(bytes([i]) * 20, account=f"u{i}@c.com") for i in range(3))
    ).encode(),
    f"User;Serial;Secret;Interval\nhelga@contoso.com;1;{SECRET};30\n".encode(),
]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from([*b',;\t"\n\r\x00=@<&\xb2\xc2', 0xFF])),
        min_size=1,
        max_size=4,
    ),
)
def test_damaged_files_of_every_format_are_told_or_refused(
    sample: bytes, edits: list[tuple[float, int]]
) -> None:
    data = bytearray(sample)
    for where, byte in edits:
        data.insert(int(where * len(data)), byte)
    refused = None
    try:
        detected = detect_format(bytes(data))
    except UnknownFormat as error:
        refused = error.message
    if refused is None:
        result = read_seed_file(bytes(data), detected, psk=bytes(range(16)))
        assert result.records or result.problems
