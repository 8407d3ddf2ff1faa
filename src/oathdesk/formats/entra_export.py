"""Which records an Entra CSV can hold, and why not the others. Pure.

The portal's CSV has no hash or digits column: Entra reads every row as SHA-1 with 6 digits. A
token with SHA-256, 8 digits or a 45-second interval would be uploaded "successfully" and then
never sign anyone in, so the export leaves it out and says why (Graph takes SHA-256:
``oathdesk export graph-json``).
"""

from __future__ import annotations

from collections.abc import Iterable

from oathdesk.formats.cells import starts_like_formula
from oathdesk.formats.entra_rules import MAX_SECRET_CHARS, check_upn
from oathdesk.formats.problems import Code, Problem
from oathdesk.formats.records import SeedRecord
from oathdesk.seed import encode_base32

INTERVALS = (30, 60)


def entra_csv_problems(records: Iterable[SeedRecord]) -> list[Problem]:
    """Why some records cannot be rows of an Entra CSV (one problem per reason, naming the
    token by its serial; never the secret)."""
    found = []
    for index, record in enumerate(records, start=1):
        where = f"token {record.serial or index}"

        def refuse(message: str, column: str, record: SeedRecord = record) -> None:
            found.append(
                Problem(
                    record.line,
                    column,
                    message,
                    fix="leave this token out of the Entra CSV",
                    code=Code.NOT_FOR_ENTRA_CSV,
                )
            )

        if record.algorithm != "sha1":
            refuse(
                f"{where} uses {record.algorithm.upper()}; the Entra CSV means SHA-1 "
                "(use `oathdesk export graph-json` for SHA-256)",
                "",
            )
        if record.digits != 6:
            refuse(f"{where} shows {record.digits} digits; Entra needs 6", "")
        if record.period not in INTERVALS:
            refuse(f"{where} has a {record.period}-second interval; Entra takes 30 or 60", "")
        for problem in check_upn(record.line, "upn", record.upn or ""):
            refuse(f"{where}: {problem.message}", "upn")
        for column, value in (
            ("serial number", record.serial or ""),
            ("manufacturer", record.manufacturer or ""),
            ("model", record.model or ""),
        ):
            if not value.strip():
                refuse(f"{where} has no {column}", column)
            elif starts_like_formula(value):
                refuse(f"{where}: the {column} starts like a spreadsheet formula", column)
        if len(encode_base32(record.secret)) > MAX_SECRET_CHARS:
            refuse(
                f"{where}: its secret is over {MAX_SECRET_CHARS} base32 characters, "
                "which Entra refuses",
                "secret key",
            )
    return found
