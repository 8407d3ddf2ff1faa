"""The Entra "OATH tokens" CSV: read it as Excel really saves it, lint it, and write it.

``upn,serial number,secret key,time interval,manufacturer,model`` (``timeinterval`` in older
docs and Token2's tools; an old portal template had a 7th ``Enabled`` column). Secrets are base32
only, at most 128 characters; intervals are 30 or 60; CSV tokens are SHA-1.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from oathdesk.formats.cells import safe_cell
from oathdesk.formats.problems import Problem, sort_problems
from oathdesk.formats.text import decode, rows, sniff_delimiter
from oathdesk.seed import encode_base32
from oathdesk.upn import is_valid_upn

COLUMNS = ("upn", "serial number", "secret key", "time interval", "manufacturer", "model")
HEADER_ALIASES = {"timeinterval": "time interval"}
MAX_SECRET_CHARS = 128
MIN_SECRET_CHARS = 16  # 80 bits
BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
HEX = frozenset("0123456789abcdefABCDEF")
DEFAULT_MAX_PER_USER = 5


@dataclass(frozen=True)
class EntraToken:
    line: int
    upn: str
    serial: str
    secret: bytes = field(repr=False)
    period: int
    manufacturer: str
    model: str
    enabled: bool = True


@dataclass(frozen=True)
class EntraCsv:
    tokens: list[EntraToken]
    problems: list[Problem]
    encoding: str
    delimiter: str
    header_spelling: str  # "time interval" or "timeinterval"

    @property
    def ok(self) -> bool:
        return not self.problems


def looks_like_entra_csv(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "").lower()
    return "upn" in first and "serial" in first and "secret" in first


def _header(cells: list[str]) -> tuple[list[str], str] | None:
    names = [HEADER_ALIASES.get(c.lower().strip(), c.lower().strip()) for c in cells]
    if names[:6] != list(COLUMNS):
        return None
    spelling = "timeinterval" if cells[3].lower().strip() == "timeinterval" else "time interval"
    extra = names[6:]
    if extra and extra != ["enabled"]:
        return None
    return names, spelling


def _secret_problem(secret: str) -> str | None:
    if not secret:
        return "the secret key is empty; fill it in from the vendor's seed file"
    if len(secret) > MAX_SECRET_CHARS:
        return (
            f"the secret key has {len(secret)} characters; Entra accepts at most {MAX_SECRET_CHARS}"
        )
    if any(c not in BASE32 for c in secret.upper()):
        if all(c in HEX for c in secret):
            return (
                "the secret key looks like hex, which Entra rejects; convert it to base32 "
                "(`oathdesk entra-csv lint --fix-hex FILE` writes a converted copy)"
            )
        if any(c in "0189" for c in secret):
            return "the secret key has 0, 1, 8 or 9, which base32 does not use; check the source"
        return "the secret key has characters that are not base32 (A-Z, 2-7); check the source"
    if len(secret) < MIN_SECRET_CHARS:
        return f"the secret key has only {len(secret)} characters (under 80 bits); part is missing"
    return None


def _decode_base32(secret: str) -> bytes:
    import base64

    body = secret.upper().rstrip("=")
    return base64.b32decode(body + "=" * (-len(body) % 8))


def parse_entra_csv(data: bytes, *, max_per_user: int = DEFAULT_MAX_PER_USER) -> EntraCsv:
    """Every token that is valid, and every problem, with its line and column."""
    text, encoding, problems = decode(data)
    delimiter = sniff_delimiter(text)
    table = rows(text, delimiter)
    if not table:
        return EntraCsv(
            [],
            [Problem(0, "", "the file is empty; it needs the header row and one row per token")],
            encoding,
            delimiter,
            "time interval",
        )
    header_line, header_cells = table[0]
    parsed_header = _header(header_cells)
    if parsed_header is None:
        problems.append(
            Problem(
                header_line,
                "",
                "the first row must be the header: " + ",".join(COLUMNS) + " (optionally ,Enabled)",
            )
        )
        return EntraCsv([], problems, encoding, delimiter, "time interval")
    names, spelling = parsed_header
    tokens: list[EntraToken] = []
    facts: list[_RowFacts] = []
    for line, cells in table[1:]:
        row_problems = _check_row(line, cells, names)
        problems += row_problems
        values = dict(zip(names, cells, strict=False))
        if len(cells) >= len(COLUMNS):
            facts.append(
                _RowFacts(
                    line,
                    values["upn"].lower(),
                    values["serial number"],
                    values["secret key"].replace(" ", "").upper().rstrip("="),
                )
            )
        if row_problems:
            continue
        enabled = values.get("enabled", "true").lower() not in ("false", "0", "no")
        tokens.append(
            EntraToken(
                line,
                values["upn"].lower(),
                values["serial number"],
                _decode_base32(values["secret key"]),
                int(values["time interval"]),
                values["manufacturer"],
                values["model"],
                enabled,
            )
        )
    problems += _cross_row_problems(facts, max_per_user)
    bad_lines = {p.line for p in problems}
    valid = [t for t in tokens if t.line not in bad_lines]
    return EntraCsv(valid, sort_problems(problems), encoding, delimiter, spelling)


def _check_row(line: int, cells: list[str], names: list[str]) -> list[Problem]:
    required = 6
    if len(cells) == 1 and len(names) > 1:
        return [
            Problem(
                line,
                "",
                "the whole row is in one column (Excel saved it with another "
                "separator or quotes?); the portal answers 'user not found'",
            )
        ]
    if not required <= len(cells) <= len(names):
        return [Problem(line, "", f"the row has {len(cells)} columns; the header has {len(names)}")]
    values = dict(zip(names, cells, strict=False))
    found: list[Problem] = []
    if not is_valid_upn(values["upn"]):
        found.append(Problem(line, "upn", "not a valid UPN; it looks like name@contoso.com"))
    if not values["serial number"]:
        found.append(Problem(line, "serial number", "the serial number is empty"))
    secret_problem = _secret_problem(values["secret key"].replace(" ", ""))
    if secret_problem:
        found.append(Problem(line, "secret key", secret_problem))
    if values["time interval"] not in ("30", "60"):
        found.append(Problem(line, "time interval", "must be 30 or 60 (seconds)"))
    for column in ("manufacturer", "model"):
        if not values[column]:
            found.append(Problem(line, column, f"the {column} is empty"))
    if values.get("enabled", "true").lower() not in ("true", "false", "1", "0", "yes", "no"):
        found.append(Problem(line, "enabled", "must be true or false"))
    return found


@dataclass(frozen=True)
class _RowFacts:
    """What the checks across rows need from every row, valid or not."""

    line: int
    upn: str
    serial: str
    secret: str = field(repr=False)


def _cross_row_problems(tokens: list[_RowFacts], max_per_user: int) -> list[Problem]:
    found: list[Problem] = []
    first_by_serial: dict[str, int] = {}
    first_by_secret: dict[str, int] = {}
    per_user: dict[str, list[int]] = defaultdict(list)
    for token in tokens:
        if token.serial in first_by_serial:
            found.append(
                Problem(
                    token.line,
                    "serial number",
                    f"duplicate of line {first_by_serial[token.serial]}; each token appears once",
                )
            )
        first_by_serial.setdefault(token.serial, token.line)
        if token.secret and token.secret in first_by_secret:
            found.append(
                Problem(
                    token.line,
                    "secret key",
                    f"the same secret as line "
                    f"{first_by_secret[token.secret]}; every token has its own seed",
                )
            )
        first_by_secret.setdefault(token.secret, token.line)
        per_user[token.upn].append(token.line)
    for upn, lines in per_user.items():
        for line in lines[max_per_user:]:
            found.append(
                Problem(
                    line, "upn", f"{upn} would have more than {max_per_user} tokens (Entra's limit)"
                )
            )
    found += _lost_leading_zeros(tokens)
    return found


def _lost_leading_zeros(tokens: list[_RowFacts]) -> list[Problem]:
    """All-digit serials shorter than their siblings: Excel turned them into numbers."""
    digit_serials = [t for t in tokens if t.serial.isdigit()]
    if len(digit_serials) < 2:
        return []
    usual_length, _ = Counter(len(t.serial) for t in digit_serials).most_common(1)[0]
    return [
        Problem(
            t.line,
            "serial number",
            f"{len(t.serial)} digits where the others have "
            f"{usual_length}: Excel probably dropped leading zeros; format the column as text",
        )
        for t in digit_serials
        if len(t.serial) < usual_length
    ]


def write_entra_csv(tokens: Iterable[EntraToken], *, header_spelling: str = "time interval") -> str:
    """The CSV to upload, with formula-injection protection on every field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = list(COLUMNS)
    header[3] = header_spelling
    writer.writerow(header)
    for token in tokens:
        writer.writerow(
            [
                safe_cell(value)
                for value in (
                    token.upn,
                    token.serial,
                    encode_base32(token.secret),
                    str(token.period),
                    token.manufacturer,
                    token.model,
                )
            ]
        )
    return buffer.getvalue()


def convert_hex_secrets(data: bytes) -> tuple[str, int]:
    """A copy of the CSV with hex secret keys converted to base32, and how many were converted."""
    text, _, _ = decode(data)
    delimiter = sniff_delimiter(text)
    table = rows(text, delimiter)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=",", lineterminator="\r\n")
    converted = 0
    for index, (_, cells) in enumerate(table):
        secret = cells[2].replace(" ", "") if len(cells) > 2 else ""
        is_hex = secret and all(c in HEX for c in secret) and len(secret) % 2 == 0
        if index and is_hex and any(c not in BASE32 for c in secret.upper()):
            cells = [*cells[:2], encode_base32(bytes.fromhex(secret)), *cells[3:]]
            converted += 1
        writer.writerow([safe_cell(cell) if index else cell for cell in cells])
    return buffer.getvalue(), converted
