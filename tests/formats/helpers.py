"""Shared helpers for the format tests: secrets in all their spellings, and the no-leak check."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from openpyxl import Workbook

from oathdesk.formats.problems import Code, Problem
from oathdesk.seed import encode_base32

ENTRA_HEADER = "upn,serial number,secret key,time interval,manufacturer,model"


def spellings(secret: bytes) -> list[str]:
    """Every way a secret could leak into a message: base32 and hex, whole and in part."""
    whole = [encode_base32(secret), secret.hex(), secret.hex().upper()]
    return whole + [text[:12] for text in whole] + [text[-12:] for text in whole]


def assert_no_secret(texts: Iterable[str], secrets: Iterable[bytes]) -> None:
    joined = "\n".join(texts)
    for secret in secrets:
        for spelling in spellings(secret):
            assert spelling not in joined, f"a secret leaked: {spelling[:4]}..."


def xlsx_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """A one-sheet workbook holding ``rows``, as the bytes of an .xlsx file."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def assert_well_formed(problems: Iterable[Problem]) -> None:
    """What every problem of the formats layer promises: a code, a fix, one printable line."""
    for problem in problems:
        assert problem.code != Code.OTHER, problem
        assert problem.fix, problem
        assert problem.line >= 0
        rendered = problem.render("f.csv")
        assert "\n" not in rendered
        assert "\r" not in rendered
        assert rendered.isprintable(), rendered


# Vendor stock files (issue 14): the Graph-style CSV of Token2's inventory and community scripts.
GRAPH_COLUMNS = (
    "serialNumber",
    "secretKey",
    "timeIntervalInSeconds",
    "manufacturer",
    "model",
    "hashFunction",
)


@dataclass(frozen=True)
class StockToken:
    """One row of a vendor's stock file; the secret never appears in repr."""

    serial: str
    secret: bytes = field(repr=False)
    period: int = 30
    algorithm: str = "sha1"  # sha1 or sha256, Graph's hmacsha1/hmacsha256
    manufacturer: str = "Token2"
    model: str = "C202"


def stock_tokens(rows: int, *, rng_seed: int = 14) -> list[StockToken]:
    """``rows`` tokens with unique 10-digit serials and 20-byte seeds from a seeded RNG: the same
    tokens every run. Most are SHA-1 30 s, as vendors sell them; some are 60 s or SHA-256."""
    rng = random.Random(rng_seed)
    return [
        StockToken(
            serial=str(6_000_000_000 + number),
            secret=rng.randbytes(20),
            period=60 if rng.random() < 0.1 else 30,
            algorithm="sha256" if rng.random() < 0.1 else "sha1",
        )
        for number in range(rows)
    ]


def graph_style_csv(
    rows: int | Sequence[StockToken],
    *,
    rng_seed: int = 14,
    columns: Sequence[str] = GRAPH_COLUMNS,
    header: Sequence[str] | None = None,
) -> str:
    """A Graph-style stock CSV (``serialNumber,secretKey,timeIntervalInSeconds,manufacturer,
    model,hashFunction``) of ``rows`` tokens (a count: ``stock_tokens(rows, rng_seed=...)``, or
    the tokens themselves). ``columns`` picks their order (leave hashFunction out and the file
    means SHA-1); ``header`` spells the header row (any case) when given. CRLF, as Excel saves.

    For the issue-14 acceptance test: ``graph_style_csv(1000)`` is 1,000 stock tokens, and
    ``stock_tokens(1000)`` the same tokens with their seeds, to compute their codes."""
    tokens = stock_tokens(rows, rng_seed=rng_seed) if isinstance(rows, int) else rows
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header if header is not None else columns)
    for token in tokens:
        values = {
            "serialNumber": token.serial,
            "secretKey": encode_base32(token.secret),
            "timeIntervalInSeconds": str(token.period),
            "manufacturer": token.manufacturer,
            "model": token.model,
            "hashFunction": "hmac" + token.algorithm,
        }
        writer.writerow([values[name] for name in columns])
    return buffer.getvalue()
