"""A problem found in an input file: where it is, what is wrong, and how to fix it.

Problems are data, not exceptions: a parser collects every one of them so that the operator fixes
a file in one pass. Messages never contain a secret, and anything taken from the file that ends up
in a message goes through ``one_line`` so that a hostile file cannot add lines or terminal escape
sequences to what the CLI prints.
"""

# The codes name secrets and passwords without holding any: bandit's S105 does not apply here.
# ruff: noqa: S105

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Code(StrEnum):
    """Stable identifiers of problems, for scripts (``--json``) and the REST API."""

    OTHER = "other"
    # the file as a whole
    EMPTY_FILE = "empty-file"
    ENCODING = "encoding"
    SEPARATOR = "separator"
    BYTE_ORDER_MARK = "byte-order-mark"
    UNREADABLE = "unreadable"
    # the header
    HEADER_MISSING = "header-missing"
    HEADER_UNKNOWN = "header-unknown"
    HEADER_COLUMN = "header-column"
    HEADER_IN_ONE_CELL = "header-in-one-cell"
    OLD_ENABLED_COLUMN = "old-enabled-column"
    # the shape of a row
    ONE_COLUMN_ROW = "one-column-row"
    COLUMN_COUNT = "column-count"
    EMPTY_LINE = "empty-line"
    BLANKS = "blanks"
    TRAILING_COLUMNS = "trailing-columns"
    MULTILINE_VALUE = "multiline-value"
    # values
    UPN_INVALID = "upn-invalid"
    NAME_INVALID = "name-invalid"  # a display name the user edit would refuse
    PHONE_INVALID = "phone-invalid"  # a phone number on file without country code, ...
    USER_ON_FILE_DIFFERS = "user-on-file-differs"  # an import's name/phone for an existing user
    UPN_EMPTY = "upn-empty"  # a token without a user: stock for the import, not for the portal
    SERIAL_EMPTY = "serial-empty"
    SERIAL_LEADING_ZEROS = "serial-leading-zeros"
    SERIAL_SCIENTIFIC = "serial-scientific"
    SERIAL_DUPLICATE = "serial-duplicate"
    SECRET_EMPTY = "secret-empty"
    SECRET_TOO_LONG = "secret-too-long"
    SECRET_HEX = "secret-hex"
    SECRET_MAYBE_HEX = "secret-maybe-hex"
    SECRET_NOT_BASE32 = "secret-not-base32"
    SECRET_SEPARATORS = "secret-separators"
    SECRET_INVALID = "secret-invalid"
    SECRET_DUPLICATE = "secret-duplicate"
    INTERVAL_INVALID = "interval-invalid"
    VALUE_EMPTY = "value-empty"
    FORMULA_CELL = "formula-cell"
    ENABLED_INVALID = "enabled-invalid"
    USER_OVER_LIMIT = "user-over-limit"
    # vendor seed files and other formats
    UNSAFE_XML = "unsafe-xml"
    NOT_PSKC = "not-pskc"
    ENCRYPTED = "encrypted"
    WRONG_PASSWORD = "wrong-password"
    ENCRYPTION_UNSUPPORTED = "encryption-unsupported"
    PROTECTION_INVALID = "protection-invalid"
    MAC_MISMATCH = "mac-mismatch"
    VALUE_INVALID = "value-invalid"
    TOO_LARGE = "too-large"
    NOT_TOTP = "not-totp"
    HASH_UNSUPPORTED = "hash-unsupported"
    NOT_SPREADSHEET = "not-spreadsheet"
    URI_INVALID = "uri-invalid"
    NOT_FOR_GRAPH = "not-for-graph"
    NOT_FOR_ENTRA_CSV = "not-for-entra-csv"
    # clashes with what the vault already holds (import)
    SERIAL_IN_VAULT = "serial-in-vault"
    SECRET_IN_VAULT = "secret-in-vault"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file.

    ``line`` is 1-based (0 when the problem concerns the whole file); ``column`` is the column's
    name as the file's header spells it, or "" for a whole row or file. ``message`` says what is
    wrong, ``fix`` what to do about it; neither ever contains a secret.
    """

    line: int
    column: str
    message: str
    fix: str = field(default="", kw_only=True)
    code: str = field(default=Code.OTHER, kw_only=True)

    def render(self, filename: str) -> str:
        """One complete line: ``FILE:LINE: column 'NAME': message; fix``."""
        where = f"{one_line(filename)}:{self.line}" if self.line else one_line(filename)
        column = f": column '{one_line(self.column)}'" if self.column else ""
        text = f"{self.message}; {self.fix}" if self.fix else self.message
        return f"{where}{column}: {one_line(text, limit=1000)}"

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "column": self.column,
            "code": str(self.code),
            "message": self.message,
            "fix": self.fix,
        }


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """File order: by line, then column; whole-file problems (line 0) first."""
    return sorted(problems, key=lambda p: (p.line, p.column, p.code))


def one_line(text: str, limit: int = 200) -> str:
    """``text`` made safe to print on one line: control characters escaped, length limited."""
    shown = "".join(
        char if char.isprintable() else (f"\\x{ord(char):02x}" if ord(char) < 256 else "?")
        for char in text
    )
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
