"""One entry point for every import format: bytes in, records and problems out. Pure."""

from __future__ import annotations

from itertools import repeat

from oathdesk.formats.detect import FORMATS, FileFormat, UnknownFormat, detect_format
from oathdesk.formats.entra_bulk import CleanRows
from oathdesk.formats.entra_csv import (
    DEFAULT_MAX_PER_USER,
    ENTRA_COLUMNS,
    parse_entra_csv,
    read_clean_entra_csv,
)
from oathdesk.formats.graph_csv import parse_graph_csv
from oathdesk.formats.limits import MAX_ROWS, RefusalKind, check_lines
from oathdesk.formats.otpauth_list import parse_otpauth_list
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.pskc import parse_pskc
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.serial_list import parse_serial_list
from oathdesk.formats.spreadsheet import parse_spreadsheet
from oathdesk.formats.xlsx import XLSX_MAGIC


def read_seed_file(
    data: bytes,
    file_format: str | None = None,
    *,
    max_per_user: int = DEFAULT_MAX_PER_USER,
    password: str | None = None,
    psk: bytes | None = None,
    skip_hotp: bool = False,
) -> ParsedFile:
    """Records and problems of ``data`` in ``file_format`` (detected when None).

    Raises UnknownFormat (an InvalidInput) when the format is unknown or cannot be told; every
    other finding is a problem in the result. An Entra CSV's form problems (separator, encoding,
    blanks) do not stop an import and are left out; its warnings are kept. An empty UPN is
    a token in stock (no user). ``skip_hotp``: a PSKC file's HOTP keys are left out and listed
    in ``skipped`` rather than reported as problems.
    """
    chosen = FileFormat(file_format) if file_format in FORMATS else None
    if file_format is not None and chosen is None:
        raise UnknownFormat(f"unknown format {file_format!r}; use one of {', '.join(FORMATS)}")
    chosen = chosen or detect_format(data)
    # Text formats are bounded here, before a reader keeps a row (and its problems) per line;
    # PSKC and XLSX bound their XML themselves (formats.limits).
    is_text = chosen is not FileFormat.PSKC and not data.startswith(XLSX_MAGIC)
    refusal = check_lines(data) if is_text else None
    if refusal is not None:
        problem = Problem(
            refusal.line,
            "",
            refusal.message,
            fix=f"split the file into parts of at most {MAX_ROWS:,} lines and import each"
            if refusal.kind is RefusalKind.TOO_MANY
            else "check that this is the seed file (no row of one is that long) and remove or "
            "shorten that line",
            code=Code.TOO_LARGE,
        )
        return ParsedFile(chosen.value, [], [problem])
    if chosen is FileFormat.ENTRA_CSV:
        clean = read_clean_entra_csv(data, max_per_user=max_per_user)
        if clean is not None:
            return _clean_entra(chosen.value, *clean)
        entra = parse_entra_csv(data, max_per_user=max_per_user, bulk=False)
        records = [
            SeedRecord(
                t.line,
                t.secret,
                t.upn or None,
                t.serial,
                t.manufacturer,
                t.model,
                "sha1",
                6,
                t.period,
            )
            for t in entra.tokens
        ]
        return ParsedFile(chosen.value, records, entra.problems, entra.warnings, ENTRA_COLUMNS)
    if chosen is FileFormat.PSKC:
        return parse_pskc(data, password=password, psk=psk, skip_hotp=skip_hotp)
    if chosen is FileFormat.GRAPH_CSV:
        return parse_graph_csv(data)
    if chosen is FileFormat.SERIAL_LIST:
        return parse_serial_list(data)
    if chosen is FileFormat.OTPAUTH:
        return parse_otpauth_list(data)
    return parse_spreadsheet(data)


def _clean_entra(format_name: str, clean: CleanRows, warnings: list[Problem]) -> ParsedFile:
    """The records of a clean Entra CSV, built from its columns in one pass (row i is line
    i + 2): the same records as through ``parse_entra_csv``'s tokens, one object per row less."""
    records = list(
        map(
            SeedRecord,
            range(2, len(clean.serials) + 2),
            clean.secrets,
            clean.upns,
            clean.serials,
            clean.manufacturers,
            clean.models,
            repeat("sha1"),
            repeat(6),
            clean.periods,
        )
    )
    return ParsedFile(format_name, records, [], warnings, ENTRA_COLUMNS)
