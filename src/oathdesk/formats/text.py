"""The text files spreadsheets save: decoding them and splitting them into rows.

Excel saves "CSV UTF-8" (with a byte-order mark), "CSV" in the Windows code page of its locale
(with ``;`` as the separator where the decimal mark is a comma), and "Unicode text" (UTF-16 LE
with a byte-order mark, tab-separated). All of them are read; what was found is reported so that
a linter can say how the file should have been saved.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

from oathdesk.formats.problems import Code, Problem

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def decode(data: bytes) -> tuple[str, str, list[Problem]]:
    """(text, encoding name, problems); never raises.

    The encoding name is ``utf-8``, ``utf-8-sig`` (UTF-8 with a byte-order mark), ``utf-16`` or
    ``cp1252`` (the guess for anything else; a problem says so).
    """
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data[3:], "utf-8", "utf-8-sig")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(data, "utf-16", "utf-16")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return (
            data.decode("cp1252", errors="replace"),
            "cp1252",
            [
                Problem(
                    0,
                    "",
                    f"the file is not UTF-8 (from line {line} on; Excel's 'CSV' in a Windows code "
                    "page?), so accented letters may be read wrongly",
                    fix="re-save it as 'CSV UTF-8 (comma delimited)'",
                    code=Code.ENCODING,
                )
            ],
        )
    return text, "utf-8", _nul_problems(text)


def _strict(data: bytes, codec: str, name: str) -> tuple[str, str, list[Problem]]:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        label = "UTF-16" if codec == "utf-16" else "UTF-8"
        return (
            data.decode(codec, errors="replace"),
            name,
            [
                Problem(
                    0,
                    "",
                    f"the file starts with a {label} byte-order mark but is not valid {label}; "
                    "it is damaged or was cut short",
                    fix="export it again from the source",
                    code=Code.ENCODING,
                )
            ],
        )
    return text, name, _nul_problems(text)


def _nul_problems(text: str) -> list[Problem]:
    if "\x00" not in text:
        return []
    line = text[: text.index("\x00")].count("\n") + 1
    return [
        Problem(
            line,
            "",
            "the file contains NUL bytes, so it is not a text file (UTF-16 without a byte-order "
            "mark, or a binary file?)",
            fix="re-save it as 'CSV UTF-8 (comma delimited)'",
            code=Code.ENCODING,
        )
    ]


def sniff_delimiter(text: str, sample_lines: int = 10) -> str:
    """',' normally; ';' where a European Excel saved the file; tab for 'Unicode text'.

    The separator found on the most of the first lines wins (then the most frequent one): a
    title row above a table has none, and a value may hold a comma.
    """
    sample = [line for line in text.splitlines()[: sample_lines * 3] if line.strip()]
    sample = sample[:sample_lines]
    scores = {
        delimiter: (
            sum(delimiter in line for line in sample),
            sum(line.count(delimiter) for line in sample),
        )
        for delimiter in DELIMITERS
    }
    best = max(DELIMITERS, key=lambda d: scores[d])
    return best if scores[best][0] else ","


@dataclass(frozen=True)
class Row:
    """One record of a delimited file.

    ``cells`` are stripped of surrounding blanks and of the empty cells Excel adds at the end
    of a row; what was removed is kept so that a linter can report it. An empty ``cells`` is
    an empty line (or one made only of separators).
    """

    line: int  # where the record starts
    cells: tuple[str, ...]
    padded_columns: tuple[int, ...] = ()  # indexes of cells that had blanks around them
    trailing_empty: int = 0  # empty cells removed from the end
    multiline_columns: tuple[int, ...] = ()  # indexes of cells holding a line break

    @property
    def is_empty(self) -> bool:
        return not self.cells


def read_rows(text: str, delimiter: str) -> tuple[list[Row], list[Problem]]:
    """Every record of ``text``, empty ones included, and the problems of the CSV syntax."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    result: list[Row] = []
    while True:
        start = reader.line_num + 1
        try:
            raw = next(reader)
        except StopIteration:
            return result, []
        except csv.Error:
            # Only a value of over 128 KiB gets here (an unclosed quote swallowing the file).
            return result, [
                Problem(
                    start,
                    "",
                    'a value is far too long; a quote (") opened here is probably never closed',
                    fix='close the quote, or remove the stray " character',
                    code=Code.MULTILINE_VALUE,
                )
            ]
        result.append(_row(start, raw))


def _row(line: int, raw: list[str]) -> Row:
    cells = [cell.strip() for cell in raw]
    padded = tuple(i for i, (cell, kept) in enumerate(zip(raw, cells, strict=True)) if cell != kept)
    trailing = 0
    while cells and cells[-1] == "":
        cells.pop()
        trailing += 1
    if not cells:
        trailing = 0  # an empty line is reported as such, not as empty columns
    multiline = tuple(i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell)
    return Row(
        line,
        tuple(cells),
        tuple(i for i in padded if i < len(cells)),
        trailing,
        multiline,
    )
