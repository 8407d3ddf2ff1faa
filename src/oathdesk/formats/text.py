"""Decoding the text files spreadsheets save: UTF-8 (with or without BOM), UTF-16 from Excel's
"Unicode text", and the legacy Windows code page, saying which one was found."""

from __future__ import annotations

import codecs
import csv
import io

from oathdesk.formats.problems import Problem


def decode(data: bytes) -> tuple[str, str, list[Problem]]:
    """(text, encoding name, problems)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig", []
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "utf-16", []
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        text = data.decode("cp1252", errors="replace")
        return (
            text,
            "cp1252",
            [
                Problem(
                    line,
                    "",
                    "the file is not UTF-8 (saved by Excel as "
                    "'CSV' in a Windows code page?); re-save it as 'CSV UTF-8'",
                )
            ],
        )


def sniff_delimiter(text: str) -> str:
    """',' normally; ';' where a European Excel saved the file; tab for 'Unicode text'."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: first.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) for every non-blank row; cells stripped of surrounding blanks."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    result = []
    for cells in reader:
        cleaned = [cell.strip() for cell in cells]
        while cleaned and cleaned[-1] == "":
            cleaned.pop()  # trailing empty columns are Excel's, not data
        if cleaned:
            result.append((reader.line_num, cleaned))
    return result
