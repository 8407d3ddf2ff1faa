"""Spreadsheet formula injection: what oathdesk writes must open as text, never run.

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@``
as a formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``, DDE), and a leading tab or carriage
return can hide such a start from a quick look. Every field oathdesk writes to a CSV or XLSX goes
through ``safe_cell``, which puts an apostrophe in front: spreadsheets then show the text as it
is and run nothing.

None of the values oathdesk writes legitimately starts with those characters: UPNs, serial
numbers, base32 secrets, intervals, manufacturers and models do not, and the only legitimate
start with ``-`` would be a negative number, which these files never hold. So the apostrophe
changes only values that were hostile or broken anyway, and a linter will point them out.

For XLSX written with openpyxl: a string starting with ``=`` is stored as a formula unless it
goes through ``safe_cell`` first.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """``value``, with an apostrophe in front if a spreadsheet would take it for a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def safe_row(values: Iterable[str]) -> list[str]:
    return [safe_cell(value) for value in values]
