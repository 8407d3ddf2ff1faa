"""Rows of an Excel workbook (XLSX), read from bytes with openpyxl (read-only, cached values).

The archive is looked at before openpyxl opens it: a zip that is not a workbook (the vendor's
password-protected zip), an encrypted entry, or one that would unpack to hundreds of megabytes (a
zip bomb) is refused with a problem. openpyxl parses the XML inside with defusedxml when it is
installed, as it is here; before that every XML part is streamed through ``limits.check_xml``
(depth, elements, attributes), and reading stops past ``limits.MAX_ROWS`` rows, so a crafted
workbook (a sheet of a million rows, millions of shared strings) costs seconds, not minutes.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from typing import Any

from oathdesk.formats.limits import MAX_ROWS, RecordBound, RefusalKind, check_xml
from oathdesk.formats.problems import Code, Problem

XLSX_MAGIC = b"PK\x03\x04"
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_RATIO = 200  # real workbooks compress about 5-20 times; checked for big ones only
_BIG = 16 * 1024 * 1024
# Elements and attributes of one XML part: a sheet of MAX_ROWS rows of six cells takes some
# 5,000,000; more (a crafted sheet or shared-strings table) is refused before openpyxl reads it.
MAX_PART_NODES = 6_000_000
# A sheet's rows that hold a value (<v>, or <is> for an inline string): over MAX_ROWS is refused
# in the bounds pass, as openpyxl would take half a minute to read them all first. Any sheet of
# the workbook, not only the one imported: a bound is on the file, as the node bound is.
SHEET_ROWS = RecordBound("row", frozenset({"v", "is"}), MAX_ROWS)

Table = list[tuple[int, tuple[str, ...]]]


def read_xlsx_rows(data: bytes) -> tuple[Table, list[Problem]]:
    """(line, cells) of every non-empty row of the first sheet that has any, and problems."""
    refused = _archive_problem(data)
    if refused is not None:
        return [], [refused]
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds on a damaged file; all mean the same here
        return [], [_problem("the workbook cannot be read (damaged?)", "save it again in Excel")]
    try:
        for sheet in workbook.worksheets:
            table = _sheet_rows(sheet)
            if len(table) > MAX_ROWS:  # the bounds pass counts <v> and <is>; this, any value
                return [], [_too_many_rows("the sheet")]
            if table:
                return table, []
        return [], []
    except Exception:
        return [], [_problem("the workbook cannot be read (damaged?)", "save it again in Excel")]
    finally:
        workbook.close()


def _sheet_rows(sheet: Any) -> Table:
    table: Table = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if len(table) > MAX_ROWS:
            break  # enough to refuse the sheet; the rest is not read
        cells = [cell_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            table.append((number, tuple(cells)))
    return table


def cell_text(value: object) -> str:
    """What a person sees in the cell: whole numbers without '.0', dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value).strip()


def _archive_problem(data: bytes) -> Problem | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError):
        return _problem("the file starts like a zip archive but is damaged", "download it again")
    names = {entry.filename for entry in entries}
    if any(entry.flag_bits & 0x1 for entry in entries):
        return _problem(
            "the file is a password-protected zip archive (a vendor's seed delivery?)",
            "unpack it with the password the vendor sent separately (e.g. `7z x FILE`), then "
            "import the file inside",
        )
    if "xl/workbook.xml" not in names:
        return _problem(
            "the file is a zip archive but not an Excel workbook",
            "unpack it and import the file inside",
        )
    unpacked = sum(entry.file_size for entry in entries)
    packed = sum(entry.compress_size for entry in entries) or 1
    if unpacked > MAX_UNPACKED_BYTES or (unpacked > _BIG and unpacked / packed > MAX_RATIO):
        return _problem(
            f"the workbook would unpack to {unpacked // (1024 * 1024)} MiB (a zip bomb?); "
            "it was not opened",
            "save the table as 'CSV UTF-8' and import that",
        )
    return _xml_problem(archive, entries)


def _xml_problem(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> Problem | None:
    """A problem when an XML part of the workbook is malformed, has a DTD, or is out of bounds;
    each part is streamed, never held whole."""
    for entry in entries:
        if not entry.filename.endswith((".xml", ".rels")):
            continue
        try:
            # Every part, not only xl/worksheets/: the workbook's relationships may put a sheet
            # anywhere, and no other part has rows.
            with archive.open(entry) as part:
                refusal = check_xml(part, max_nodes=MAX_PART_NODES, records=SHEET_ROWS)
        except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError, EOFError):
            return _problem(
                "the file starts like a zip archive but is damaged", "download it again"
            )
        if refusal is None:
            continue
        if refusal.kind is RefusalKind.TOO_MANY_RECORDS:
            return _too_many_rows(f"the workbook's sheet {entry.filename[:80]}")
        if refusal.kind in (RefusalKind.TOO_DEEP, RefusalKind.TOO_MANY):
            return Problem(
                0,
                "",
                f"the workbook's {entry.filename[:80]}: {refusal.message}, far more than a "
                "workbook needs (a crafted file?), so it was not opened",
                fix="save the table as 'CSV UTF-8' and import that",
                code=Code.TOO_LARGE,
            )
        if refusal.kind is RefusalKind.UNSAFE:
            return Problem(
                0,
                "",
                f"the workbook's {entry.filename[:80]} declares a DTD or entities (an XML bomb or "
                "external entity?), so it was not opened",
                fix="save the table as 'CSV UTF-8' and import that",
                code=Code.UNSAFE_XML,
            )
        return _problem("the workbook cannot be read (damaged?)", "save it again in Excel")
    return None


def _too_many_rows(sheet: str) -> Problem:
    return Problem(
        0,
        "",
        f"{sheet} has over {MAX_ROWS:,} rows, more than one import reads",
        fix=f"split it into workbooks of at most {MAX_ROWS:,} rows and import each",
        code=Code.TOO_LARGE,
    )


def _problem(message: str, fix: str) -> Problem:
    return Problem(0, "", message, fix=fix, code=Code.NOT_SPREADSHEET)
