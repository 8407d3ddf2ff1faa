"""Which format a file is in, told from its content (for ``import`` without ``--format``). Pure.

Binary wrappers that vendors and helpdesks really send (a password-protected zip, a PGP message,
an old or password-protected Excel workbook) are recognised and refused with what to do, rather
than misread as a spreadsheet.
"""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum

from oathdesk.errors import InvalidInput
from oathdesk.formats.entra_csv import looks_like_entra_csv
from oathdesk.formats.graph_csv import looks_like_graph_csv
from oathdesk.formats.otpauth_list import looks_like_otpauth_list
from oathdesk.formats.pskc import looks_like_pskc
from oathdesk.formats.serial_list import looks_like_serial_list
from oathdesk.formats.spreadsheet import find_header
from oathdesk.formats.text import decode, read_rows, sniff_delimiter
from oathdesk.formats.xlsx import XLSX_MAGIC


class FileFormat(StrEnum):
    ENTRA_CSV = "entra-csv"
    PSKC = "pskc"
    SPREADSHEET = "spreadsheet"
    OTPAUTH = "otpauth"
    GRAPH_CSV = "graph-csv"
    SERIAL_LIST = "serial-list"


FORMATS = tuple(f.value for f in FileFormat)
_HEAD_BYTES = 16 * 1024  # enough for the header and a few rows
_OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
_CHOOSE = "give --format " + "|".join(FORMATS)


class UnknownFormat(InvalidInput):
    """The file's format cannot be told (or it is a wrapper that must be opened first)."""

    code = "unknown_format"


def detect_format(data: bytes) -> FileFormat:
    """The format of ``data``; UnknownFormat (one line: what it is, what to do) otherwise."""
    if not data.strip():
        raise UnknownFormat("the file is empty")
    if data.startswith(XLSX_MAGIC):
        return _zip_format(data)
    _refuse_wrappers(data)
    text = _head_text(data)
    # PSKC in UTF-16 is still PSKC: look at the decoded text too.
    if looks_like_pskc(data) or looks_like_pskc(text.encode("utf-8", "replace")):
        return FileFormat.PSKC
    if text.lstrip().startswith("<"):
        raise UnknownFormat(
            "the file is XML but not a PSKC key container; ask the vendor for the PSKC seed file"
        )
    if "\x00" in text:
        raise UnknownFormat(
            "the file is binary, neither text nor an Excel workbook; "
            "save it as 'CSV UTF-8' or .xlsx, or " + _CHOOSE
        )
    if looks_like_otpauth_list(text):
        return FileFormat.OTPAUTH
    # Graph's column names first: its serialNumber and secretKey read like the Entra header's.
    if looks_like_graph_csv(text):
        return FileFormat.GRAPH_CSV
    if looks_like_entra_csv(text):
        return FileFormat.ENTRA_CSV
    rows, _ = read_rows(text, sniff_delimiter(text))
    if find_header([(row.line, row.cells) for row in rows if not row.is_empty]) is not None:
        return FileFormat.SPREADSHEET
    if looks_like_serial_list(text):
        return FileFormat.SERIAL_LIST
    raise UnknownFormat(
        "cannot tell the format: the first rows hold neither the Entra CSV header, Graph's "
        "(serialNumber, secretKey, timeIntervalInSeconds, ...) nor a spreadsheet header with "
        "user and secret columns, are not a serial,secret list, and the lines are not "
        "otpauth:// URIs; fix the header or " + _CHOOSE
    )


def _head_text(data: bytes) -> str:
    """The first rows as text; a partial last line is dropped."""
    text, _, _ = decode(data[:_HEAD_BYTES])
    if len(data) > _HEAD_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return text


def _zip_format(data: bytes) -> FileFormat:
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
        raise UnknownFormat("the file starts like a zip archive but is damaged") from None
    if any(entry.flag_bits & 0x1 for entry in entries):
        raise UnknownFormat(
            "the file is a password-protected zip archive (a vendor's seed delivery?); unpack it "
            "with the password sent separately (e.g. `7z x FILE`) and import the file inside"
        )
    if "xl/workbook.xml" not in {entry.filename for entry in entries}:
        raise UnknownFormat(
            "the file is a zip archive but not an Excel workbook; unpack it and import the "
            "file inside"
        )
    return FileFormat.SPREADSHEET


def _refuse_wrappers(data: bytes) -> None:
    if data.startswith(_OLE2_MAGIC):
        raise UnknownFormat(
            "the file is an old Excel .xls or a password-protected workbook; save it in Excel "
            "as .xlsx without a password (or as 'CSV UTF-8') and import that"
        )
    if data.lstrip().startswith(b"-----BEGIN PGP MESSAGE") or _is_binary_openpgp(data):
        raise UnknownFormat(
            "the file is PGP-encrypted; decrypt it first (e.g. `gpg --decrypt FILE > seeds.csv`), "
            "import the result, then destroy both"
        )
    if data.startswith(b"\x1f\x8b"):
        raise UnknownFormat("the file is gzip-compressed; unpack it (gunzip) and import the result")
    if data.startswith(b"%PDF"):
        raise UnknownFormat(
            "the file is a PDF; seeds must be imported from the vendor's CSV or PSKC file"
        )


def _is_binary_openpgp(data: bytes) -> bool:
    # The first packet of an encrypted message: a public-key or symmetric-key encrypted session
    # key, in the old (0x84/0x85/0x8c) or new (0xc1/0xc3) packet format. The first four never
    # start UTF-8 text; 0xc3 does (e.g. "é"), so its packet version byte is checked too.
    if len(data) < 3:
        return False
    return data[0] in (0x84, 0x85, 0x8C, 0xC1) or (data[0] == 0xC3 and data[2] in (4, 5, 6))
