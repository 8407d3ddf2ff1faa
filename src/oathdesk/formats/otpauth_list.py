"""A text file of ``otpauth://totp/...`` URIs, one per line; blank lines and # comments skipped.

The account in each URI's label must be the user's UPN (``otpauth://totp/Microsoft:name@contoso.com
?secret=...``). Pure.
"""

from __future__ import annotations

from oathdesk.formats.checks import Columns, RowFacts, cross_row_problems
from oathdesk.formats.problems import Code, Problem, one_line
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.seed_cell import read_seed
from oathdesk.formats.text import decode
from oathdesk.seed import build_otpauth_uri
from oathdesk.upn import is_valid_upn

FORMAT = "otpauth"
_NO_COLUMNS = Columns(serial="", seed="", user="")


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that are neither blank nor comments."""
    # Split on line ends only: str.splitlines() also splits on form feeds and the like, which
    # would make line numbers disagree with the operator's editor.
    numbered = enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1)
    return [
        (number, line.strip())
        for number, line in numbered
        if line.strip() and not line.strip().startswith("#")
    ]


def looks_like_otpauth_list(text: str) -> bool:
    lines = _lines(text)
    return bool(lines) and all(line.lower().startswith("otpauth") for _, line in lines)


def parse_otpauth_list(data: bytes) -> ParsedFile:
    """Records and every problem; never raises."""
    # URIs are ASCII; a guessed code page only touches comments, so it is worth a warning.
    text, _, warnings = decode(data)
    problems: list[Problem] = []
    records = []
    facts = []
    for number, line in _lines(text):
        if not line.lower().startswith("otpauth://"):
            problems.append(
                Problem(
                    number,
                    "",
                    "the line is not an otpauth:// URI",
                    fix="put one otpauth://totp/... URI per line, or start the line with # to "
                    "skip it",
                    code=Code.URI_INVALID,
                )
            )
            continue
        seed = read_seed(line)
        if isinstance(seed, str):
            problems.append(
                Problem(
                    number,
                    "",
                    seed,
                    fix="copy the URI again from its QR code",
                    code=Code.URI_INVALID,
                )
            )
            continue
        account = seed.account if seed.account and is_valid_upn(seed.account) else None
        facts.append(RowFacts(number, None, seed.secret, account))
        if account is None:
            problems.append(
                Problem(
                    number,
                    "",
                    "the URI's account is not a UPN",
                    fix="label it otpauth://totp/Issuer:name@contoso.com?...",
                    code=Code.UPN_INVALID,
                )
            )
            continue
        records.append(
            SeedRecord(
                number,
                seed.secret,
                upn=account.lower(),
                algorithm=seed.algorithm or "sha1",
                digits=seed.digits or 6,
                period=seed.period or 30,
            )
        )
    problems += cross_row_problems(facts, _NO_COLUMNS)
    if not problems and not records:
        problems.append(
            Problem(
                0,
                "",
                "the file holds no otpauth:// URIs",
                fix="put one otpauth://totp/... URI per line",
                code=Code.EMPTY_FILE,
            )
        )
    return ParsedFile.checked(FORMAT, records, problems, warnings, _NO_COLUMNS)


def write_otpauth_list(records: list[SeedRecord], *, issuer: str = "Microsoft") -> str:
    """One otpauth URI per token (for burning tools and authenticator apps that take a URI),
    each after a comment naming its serial; ``parse_otpauth_list`` reads it back."""
    lines = [
        "# oathdesk otpauth list: every line below holds a token seed. Burn the tokens, then "
        "shred this file.",
    ]
    for record in records:
        lines.append(f"# serial {one_line(record.serial or 'none')}")
        lines.append(
            build_otpauth_uri(
                record.secret,
                account=record.upn or record.serial or "token",
                issuer=issuer,
                algorithm=record.algorithm,
                digits=record.digits,
                period=record.period,
            )
        )
    return "\n".join(lines) + "\n"
