"""Checks across the rows of one file, shared by every import format.

They work on plain facts (line, serial, secret, user) so that rows with other problems still
take part: a duplicate is reported even when its twin has a bad UPN.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from oathdesk.formats.cells import FORMULA_FIX, formula_message, starts_like_formula
from oathdesk.formats.problems import Code, Problem
from oathdesk.upn import upn_problem

# What Excel shows for a long number in a "General" cell: 1.10000E+09, 6,02346E+7 ...
_SCIENTIFIC = re.compile(r"^\d+([.,]\d+)?[eE]\+\d+$")


@dataclass(frozen=True)
class RowFacts:
    """What the checks across rows need to know about one row."""

    line: int
    serial: str | None
    secret: bytes | str | None = field(repr=False)  # decoded when possible, else normalised text
    user: str | None
    group: Hashable = None  # serials are compared within a group (same manufacturer and model)


@dataclass(frozen=True)
class Columns:
    """How the file at hand names its columns, for the problems' ``column``."""

    serial: str = "serial number"
    seed: str = "secret key"
    user: str = "upn"


def formula_problems(line: int, column: str, what: str, value: str | None) -> list[Problem]:
    """The cell's problem if a spreadsheet would run it as a formula (see ``cells``)."""
    if not value or not starts_like_formula(value):
        return []
    return [Problem(line, column, formula_message(what), fix=FORMULA_FIX, code=Code.FORMULA_CELL)]


def user_and_field_problems(
    line: int, user: str | None, fields: Mapping[str, str | None], user_column: str = "UserId"
) -> list[Problem]:
    """A user that is not a UPN Entra takes, and fields (by column name) that start like a
    formula: what a format that names its values in elements (PSKC) checks for each key."""
    found = formula_problems(line, user_column, "user", user)
    reason = upn_problem(user) if user and not found else None
    if reason is not None:
        found.append(
            Problem(
                line,
                user_column,
                f"the user is not a valid UPN: {reason}",
                fix="ask the vendor to correct the user, or remove it and assign the token later",
                code=Code.UPN_INVALID,
            )
        )
    for column, value in fields.items():
        found += formula_problems(line, column, column.lower(), value)
    return found


def cross_row_problems(
    facts: Sequence[RowFacts], columns: Columns, *, max_per_user: int | None = None
) -> list[Problem]:
    """Duplicate serials, one secret on two tokens, users over the limit, lost leading zeros."""
    found = _duplicates(
        ((f.line, _serial_key(f.serial)) for f in facts if f.serial),
        columns.serial,
        Code.SERIAL_DUPLICATE,
        "the same serial number as line {first}",
        "each token appears once: remove one of the two rows, or correct the serial",
    )
    found += _duplicates(
        ((f.line, f.secret) for f in facts if f.secret),
        columns.seed,
        Code.SECRET_DUPLICATE,
        "the same secret as line {first}",
        "every token has its own seed: check both rows against the vendor's file",
    )
    if max_per_user is not None:
        found += _over_limit(facts, columns.user, max_per_user)
    found += lost_leading_zeros(facts, columns.serial)
    return found


def _serial_key(serial: str) -> str:
    return serial.strip().upper()


def _duplicates(
    items: Iterable[tuple[int, Hashable]], column: str, code: Code, message: str, fix: str
) -> list[Problem]:
    first_line: dict[Hashable, int] = {}
    found = []
    for line, key in items:
        if key in first_line:
            found.append(
                Problem(line, column, message.format(first=first_line[key]), fix=fix, code=code)
            )
        else:
            first_line[key] = line
    return found


def _over_limit(facts: Sequence[RowFacts], column: str, limit: int) -> list[Problem]:
    lines_by_user: dict[str, list[int]] = defaultdict(list)
    for fact in facts:
        if fact.user:
            lines_by_user[fact.user.lower()].append(fact.line)
    return [
        Problem(
            line,
            column,
            f"{user} would have more than {limit} tokens (Entra's limit is 5 OATH tokens "
            "and authenticator apps per user)",
            fix="give this token to someone else, or retire one of the user's tokens first",
            code=Code.USER_OVER_LIMIT,
        )
        for user, lines in lines_by_user.items()
        for line in lines[limit:]
    ]


def lost_leading_zeros(facts: Sequence[RowFacts], column: str) -> list[Problem]:
    """All-digit serials shorter than most of their siblings: Excel turned them into numbers.

    Siblings are the rows of the same group (manufacturer and model), whose serials normally
    all have the same length. A serial in scientific notation is Excel's doing too.
    """
    found = [
        Problem(
            f.line,
            column,
            "the serial number is in scientific notation: Excel turned it into a number "
            "and lost digits",
            fix="format the column as Text and copy the serial again from the vendor's file",
            code=Code.SERIAL_SCIENTIFIC,
        )
        for f in facts
        if f.serial and _SCIENTIFIC.match(f.serial)
    ]
    by_group: dict[Hashable, list[RowFacts]] = defaultdict(list)
    for fact in facts:
        if fact.serial and fact.serial.isascii() and fact.serial.isdigit():
            by_group[fact.group].append(fact)
    for siblings in by_group.values():
        if len(siblings) < 2:
            continue
        usual, _ = Counter(len(f.serial or "") for f in siblings).most_common(1)[0]
        found += [
            Problem(
                f.line,
                column,
                f"the serial number has {len(f.serial or '')} digits where its siblings have "
                f"{usual}: Excel probably dropped leading zeros",
                fix=f"format the column as Text and pad it with zeros to {usual} digits, or copy "
                "it again from the vendor's file",
                code=Code.SERIAL_LEADING_ZEROS,
            )
            for f in siblings
            if len(f.serial or "") < usual
        ]
    return found
