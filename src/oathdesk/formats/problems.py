"""A problem found in an input file: where, what is wrong, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based line in the file (0 when it concerns the whole file)
    column: str  # the column's name, or "" for the whole row/file
    message: str  # what is wrong and how to fix it; never contains a secret

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        column = f": column '{self.column}'" if self.column else ""
        return f"{where}{column}: {self.message}"


def sort_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column))
