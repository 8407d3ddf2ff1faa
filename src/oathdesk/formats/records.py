"""What every import format yields: a seed with what is known about its token and user."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from oathdesk.formats.checks import Columns
from oathdesk.formats.problems import Problem, sort_problems


class SeedRecord(NamedTuple):
    """One seed from a file. ``line`` is where it was (the XML line of the key for PSKC).

    The secret is the decoded seed and never appears in repr. Immutable like the dataclasses
    around it, but a named tuple: an import makes one per row, and a tuple is built in a
    third of the time a frozen dataclass's field-by-field ``__init__`` takes.
    """

    line: int
    secret: bytes
    upn: str | None = None  # lower case, valid when given
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    algorithm: str = "sha1"  # sha1, sha256 or sha512
    digits: int = 6
    period: int = 30
    display_name: str = ""  # checked (people.check_display_name), when the file has the column
    phone: str = ""  # E.164 (people.normalize_phone), when the file has the column

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={value!r}"
            for name, value in zip(self._fields, self, strict=True)
            if name != "secret"
        )
        return f"SeedRecord({shown})"


@dataclass(frozen=True)
class SkippedKey:
    """A key the file holds but the import leaves out on request (a PSKC HOTP key with
    ``skip_hotp``), reported by its serial (or the key's id when it has none)."""

    line: int
    serial: str


@dataclass(frozen=True)
class ParsedFile:
    """The records without problems, every problem, and warnings that do not stop an import.

    ``columns``: how the file names its serial, seed and user columns, for problems found later
    (e.g. by the vault) to name them the way the file does."""

    format: str
    records: list[SeedRecord]
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)
    columns: Columns = field(default_factory=Columns)
    skipped: list[SkippedKey] = field(default_factory=list)

    @classmethod
    def checked(
        cls,
        format: str,
        records: Iterable[SeedRecord],
        problems: list[Problem],
        warnings: list[Problem] | None = None,
        columns: Columns | None = None,
        skipped: list[SkippedKey] | None = None,
    ) -> ParsedFile:
        """A parse result that keeps only the records on lines without a problem, and the
        problems in line order."""
        bad_lines = {p.line for p in problems}
        return cls(
            format,
            [r for r in records if r.line not in bad_lines],
            sort_problems(problems),
            warnings or [],
            columns or Columns(),
            skipped or [],
        )

    @property
    def ok(self) -> bool:
        return not self.problems
