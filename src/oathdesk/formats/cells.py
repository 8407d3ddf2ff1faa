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

What comes in is held to the same rule, more strictly (``starts_like_formula``): the importers,
the linter and the vault refuse such a value with its line and column instead of storing it, so
no export ever has to change a value to make it safe. A spreadsheet skips blanks before the
start and folds full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20) to their ASCII twins, so the rule
looks past them too; a value that already carries the apostrophe escape was changed by some tool
and is refused as well.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The characters that start a formula once blanks are skipped and the character is folded
# (NFKC); U+2212 MINUS SIGN does not fold to '-' but spreadsheets in some locales read it so.
FORMULA_CHARS = ("=", "+", "-", "@")
_FOLDED_STARTS = frozenset((*FORMULA_CHARS, "\u2212"))
_CONTROL_STARTS = ("\t", "\r", "\n")


def _skip_blanks(text: str) -> str:
    """``text`` without leading whitespace (any Unicode space) and invisible format characters
    (zero-width space, byte-order mark), which a reader of the cell does not see."""
    index = 0
    while index < len(text) and (
        text[index].isspace() or unicodedata.category(text[index]) == "Cf"
    ):
        index += 1
    return text[index:]


def starts_like_formula(value: str) -> bool:
    """Whether a spreadsheet could run ``value`` as a formula (or it was escaped as one).

    True for a leading tab, CR or LF, and for ``=``, ``+``, ``-``, ``@`` (or a full-width or
    other compatibility form of them, or U+2212) as the first visible character, also behind
    an apostrophe.
    """
    if value.startswith(_CONTROL_STARTS):
        return True
    head = _skip_blanks(value)
    if head.startswith("'"):
        head = _skip_blanks(head[1:])
    if not head:
        return False
    return unicodedata.normalize("NFKC", head[0])[:1] in _FOLDED_STARTS


def formula_message(what: str) -> str:
    """The one-line reason an importer gives for such a cell (never quoting it)."""
    return (
        f"the {what} starts with =, +, -, @, a tab or a line break (perhaps behind blanks), "
        "which a spreadsheet runs as a formula"
    )


FORMULA_FIX = (
    "remove the leading character(s); no legitimate UPN, serial number, secret, manufacturer "
    "or model starts with them (if the file came from outside, check it was not tampered with)"
)


def safe_cell(value: str) -> str:
    """``value``, with an apostrophe in front if a spreadsheet would take it for a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def safe_row(values: Iterable[str]) -> list[str]:
    return [safe_cell(value) for value in values]
