"""Import seeds into the vault from what admins and helpdesks really have: the Entra CSV, the
helpdesk's spreadsheet (CSV/XLSX) and lists of otpauth URIs. All or nothing, in one transaction;
every problem in the file is reported at once, with its line."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from oathdesk.errors import InvalidInput
from oathdesk.formats.entra_csv import looks_like_entra_csv, parse_entra_csv
from oathdesk.formats.otpauth_list import looks_like_otpauth_list, parse_otpauth_list
from oathdesk.formats.problems import Problem
from oathdesk.formats.pskc import looks_like_pskc, parse_pskc
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.spreadsheet import XLSX_MAGIC, parse_spreadsheet
from oathdesk.formats.text import decode
from oathdesk.otp import Algorithm
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.roles import Permission, require
from oathdesk.vault.vault import Actor, NewToken, Vault

FORMATS = ("entra-csv", "spreadsheet", "otpauth", "pskc")


@dataclass(frozen=True)
class ImportResult:
    format: str
    problems: list[Problem]
    imported: int
    placeholder_serials: int
    dry_run: bool


def detect_format(data: bytes) -> str:
    if data.startswith(XLSX_MAGIC):
        return "spreadsheet"
    if looks_like_pskc(data):
        return "pskc"
    text, _, _ = decode(data)
    if looks_like_entra_csv(text):
        return "entra-csv"
    if looks_like_otpauth_list(text):
        return "otpauth"
    return "spreadsheet"


def parse_file(
    data: bytes,
    file_format: str | None,
    *,
    max_per_user: int,
    password: str | None = None,
    psk: bytes | None = None,
) -> ParsedFile:
    chosen = file_format or detect_format(data)
    if chosen == "pskc":
        return parse_pskc(data, password=password, psk=psk)
    if chosen == "entra-csv":
        entra = parse_entra_csv(data, max_per_user=max_per_user)
        records = [
            SeedRecord(
                t.line, t.secret, t.upn, t.serial, t.manufacturer, t.model, "sha1", 6, t.period
            )
            for t in entra.tokens
        ]
        return ParsedFile(chosen, records, entra.problems)
    if chosen == "otpauth":
        return parse_otpauth_list(data)
    if chosen == "spreadsheet":
        return parse_spreadsheet(data)
    raise InvalidInput(f"unknown format {chosen!r}; use one of {', '.join(FORMATS)}")


def _vault_conflicts(vault: Vault, records: list[SeedRecord]) -> list[Problem]:
    """Clashes with what the vault already holds, all of them, each with its line."""
    problems = []
    present = vault.existing_serials(r.serial for r in records if r.serial)
    for record in records:
        if record.serial in present:
            problems.append(
                Problem(
                    record.line,
                    "serial number",
                    f"a token with serial {record.serial} is already in the vault; remove the row",
                )
            )
    limit = vault.settings().max_tokens_per_user
    counts = vault.token_counts(r.upn for r in records if r.upn)
    for record in records:
        if record.upn:
            counts[record.upn] += 1
            if counts[record.upn] == limit + 1:
                problems.append(
                    Problem(
                        record.line,
                        "upn",
                        f"{record.upn} would have more than {limit} tokens (Entra's limit)",
                    )
                )
    return sorted(problems, key=lambda p: (p.line, p.column))


def import_seeds(
    vault: Vault,
    actor: Actor,
    data: bytes,
    *,
    file_format: str | None = None,
    kind: TokenKind | None = None,
    dry_run: bool = False,
    source: str = "",
    password: str | None = None,
    psk: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    require(actor.name, actor.role, Permission.MANAGE_TOKENS)
    parsed = parse_file(
        data,
        file_format,
        max_per_user=vault.settings().max_tokens_per_user,
        password=password,
        psk=psk,
    )
    seen = {(p.line, p.column) for p in parsed.problems}
    problems = parsed.problems + [
        p for p in _vault_conflicts(vault, parsed.records) if (p.line, p.column) not in seen
    ]
    if problems or dry_run:
        return ImportResult(parsed.format, problems, 0, 0, dry_run)
    default_kind = kind or (
        TokenKind.CLASSIC if parsed.format in ("entra-csv", "pskc") else TokenKind.PROGRAMMABLE
    )
    placeholders = 0
    tokens = []
    for record in parsed.records:
        serial = record.serial
        if not serial:
            # The spreadsheet did not record the serial; the token keeps a placeholder until
            # it is re-enrolled, and the summary says how many.
            serial = f"unknown-{uuid.uuid4().hex[:10]}"
            placeholders += 1
        tokens.append(
            NewToken(
                serial=serial,
                manufacturer=record.manufacturer or "Token2",
                model=record.model or default_kind.value,
                kind=default_kind,
                secret=record.secret,
                algorithm=Algorithm.parse(record.algorithm),
                digits=record.digits,
                period=record.period,
                upn=record.upn,
            )
        )
    count = vault.add_tokens(
        actor,
        tokens,
        source=source or f"import:{parsed.format}",
        create_missing_users=True,
        progress=progress,
    )
    return ImportResult(parsed.format, [], count, placeholders, False)
