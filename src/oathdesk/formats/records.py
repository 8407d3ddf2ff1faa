"""What every import format yields: a seed with what is known about its token and user."""

from __future__ import annotations

from dataclasses import dataclass, field

from oathdesk.formats.problems import Problem


@dataclass(frozen=True)
class SeedRecord:
    line: int
    secret: bytes = field(repr=False)
    upn: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    algorithm: str = "sha1"
    digits: int = 6
    period: int = 30


@dataclass(frozen=True)
class ParsedFile:
    format: str
    records: list[SeedRecord]
    problems: list[Problem]
