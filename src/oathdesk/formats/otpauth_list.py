"""A text file of otpauth:// URIs, one per line (blank lines and # comments skipped). Pure."""

from __future__ import annotations

from oathdesk.errors import SeedError
from oathdesk.formats.problems import Problem
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.text import decode
from oathdesk.seed import parse_seed
from oathdesk.upn import is_valid_upn


def looks_like_otpauth_list(text: str) -> bool:
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    return bool(lines) and all(line.lower().startswith("otpauth") for line in lines)


def parse_otpauth_list(data: bytes) -> ParsedFile:
    text, _, problems = decode(data)
    records = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            seed = parse_seed(line)
        except SeedError as error:
            problems.append(Problem(number, "", error.message))
            continue
        account = seed.account if seed.account and is_valid_upn(seed.account) else None
        if account is None:
            problems.append(
                Problem(
                    number,
                    "",
                    "the URI's account is not a UPN; label it "
                    "otpauth://totp/Issuer:name@contoso.com?...",
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
    return ParsedFile("otpauth", records, problems)
