"""One entry point for every import format: bytes in, records and problems out. Pure."""

from __future__ import annotations

from oathdesk.formats.detect import FORMATS, FileFormat, UnknownFormat, detect_format
from oathdesk.formats.entra_csv import DEFAULT_MAX_PER_USER, ENTRA_COLUMNS, parse_entra_csv
from oathdesk.formats.otpauth_list import parse_otpauth_list
from oathdesk.formats.pskc import parse_pskc
from oathdesk.formats.records import ParsedFile, SeedRecord
from oathdesk.formats.spreadsheet import parse_spreadsheet


def read_seed_file(
    data: bytes,
    file_format: str | None = None,
    *,
    max_per_user: int = DEFAULT_MAX_PER_USER,
    password: str | None = None,
    psk: bytes | None = None,
) -> ParsedFile:
    """Records and problems of ``data`` in ``file_format`` (detected when None).

    Raises UnknownFormat (an InvalidInput) when the format is unknown or cannot be told; every
    other finding is a problem in the result. An Entra CSV's form problems (separator, encoding,
    blanks) do not stop an import and are left out; its warnings are kept.
    """
    chosen = FileFormat(file_format) if file_format in FORMATS else None
    if file_format is not None and chosen is None:
        raise UnknownFormat(f"unknown format {file_format!r}; use one of {', '.join(FORMATS)}")
    chosen = chosen or detect_format(data)
    if chosen is FileFormat.ENTRA_CSV:
        entra = parse_entra_csv(data, max_per_user=max_per_user)
        records = [
            SeedRecord(
                t.line, t.secret, t.upn, t.serial, t.manufacturer, t.model, "sha1", 6, t.period
            )
            for t in entra.tokens
        ]
        return ParsedFile(chosen.value, records, entra.problems, entra.warnings, ENTRA_COLUMNS)
    if chosen is FileFormat.PSKC:
        return parse_pskc(data, password=password, psk=psk)
    if chosen is FileFormat.OTPAUTH:
        return parse_otpauth_list(data)
    return parse_spreadsheet(data)
