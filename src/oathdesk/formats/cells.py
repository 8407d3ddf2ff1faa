"""Spreadsheet formula injection: a cell that starts with = + - @ (or tab/CR) is a formula to
Excel and LibreOffice. Every field oathdesk writes to CSV or XLSX goes through ``safe_cell``."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    # A leading apostrophe makes spreadsheets show the text as it is, and run nothing.
    return "'" + value if value.startswith(FORMULA_STARTS) else value
