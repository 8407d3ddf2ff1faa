"""The vault's value types: who acts, its settings, users and tokens (never with a secret shown).

Plain frozen dataclasses, so services and interfaces can pass them around without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from oathdesk.errors import InvalidInput
from oathdesk.otp import Algorithm
from oathdesk.vault.lifecycle import TokenKind, TokenState


@dataclass(frozen=True)
class Actor:
    """Who is acting: an operator name (``local:<os user>`` for the CLI on the host) and role."""

    name: str
    role: str = "admin"


@dataclass(frozen=True)
class VaultSettings:
    """The vault's policy, one typed row in the ``settings`` table."""

    acceptance_profile: str = "entra"
    retention_days: int = 14
    undelivered_warning_days: int = 30
    max_tokens_per_user: int = 5
    reveal_limit_per_user: int = 3
    reveal_limit_per_operator: int = 30
    four_eyes: bool = False

    def changed(self, changes: dict[str, Any]) -> VaultSettings:
        """A copy with ``changes`` applied, each checked for type and range."""
        known = {f.name: f for f in fields(self)}
        values = {name: getattr(self, name) for name in known}
        for name, value in changes.items():
            if name not in known:
                raise InvalidInput(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
            values[name] = _checked_setting(name, getattr(self, name), value)
        return VaultSettings(**values)


# Whole-number settings that make no sense at 0 (0 retention days means "purge at delivery").
_AT_LEAST_ONE = frozenset({"max_tokens_per_user", "undelivered_warning_days"})


def _checked_setting(name: str, current: object, value: object) -> object:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise InvalidInput(f"setting {name} is yes or no (true/false)")
        return value
    if isinstance(current, int):
        least = 1 if name in _AT_LEAST_ONE else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(f"setting {name} is a whole number of at least {least}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"setting {name} needs a name, e.g. {current}")
    return value.strip()


@dataclass(frozen=True)
class User:
    upn: str
    display_name: str
    phone: str
    notes: str
    created_at: datetime


@dataclass(frozen=True)
class Token:
    """A token as stored, without its secret. ``*_at`` record when each state was reached."""

    id: str
    serial: str
    manufacturer: str
    model: str
    kind: TokenKind
    algorithm: Algorithm
    digits: int
    period: int
    state: TokenState
    upn: str | None
    carrier: str
    tracking: str
    drift_seconds: int | None
    drift_measured_at: datetime | None
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None
    burned_at: datetime | None
    registered_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    purged_at: datetime | None
    closed_at: datetime | None  # lost, revoked or retired
    has_secret: bool
    version: int

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in data.items()
        }


# The columns of ``tokens`` a Token is made of, in the order ``token_of_columns`` takes them
# (the owner's UPN and whether the vault holds the secret come from other tables).
TOKEN_COLUMNS = (
    "id",
    "serial",
    "manufacturer",
    "model",
    "kind",
    "algorithm",
    "digits",
    "period",
    "state",
    "carrier",
    "tracking",
    "drift_seconds",
    "drift_measured_at",
    "created_at",
    "updated_at",
    "assigned_at",
    "burned_at",
    "registered_at",
    "shipped_at",
    "delivered_at",
    "purged_at",
    "closed_at",
    "version",
)
_TOKEN_FIELDS = tuple(f.name for f in fields(Token))
_KINDS = {member.value: member for member in TokenKind}
_ALGORITHMS = {member.value: member for member in Algorithm}
_STATES = {member.value: member for member in TokenState}

# What turns a stored time into an aware datetime: ``aware`` for the driver's datetimes,
# ``utc_moment`` for those and SQLite's text as well.
Moment = Callable[[Any], datetime | None]


def token_of_columns(
    columns: Sequence[Any], upn: str | None, has_secret: bool, moment: Moment
) -> Token:
    """The Token of a row of ``TOKEN_COLUMNS`` (the vault's reads and the quick read path
    both build theirs here). A page of 100 tokens built them at 33 µs each, most of a drift
    page's vault time: so the enums come from a dict, and the fields go into the new object's
    ``__dict__`` at once, where the frozen dataclass's ``__init__`` sets its 25 fields one
    ``object.__setattr__`` at a time (three times slower). Same object, same equality."""
    (
        id_,
        serial,
        manufacturer,
        model,
        kind,
        algorithm,
        digits,
        period,
        state,
        carrier,
        tracking,
        drift_seconds,
        drift_measured_at,
        created_at,
        updated_at,
        assigned_at,
        burned_at,
        registered_at,
        shipped_at,
        delivered_at,
        purged_at,
        closed_at,
        version,
    ) = columns
    token: Token = object.__new__(Token)
    token.__dict__.update(
        zip(
            _TOKEN_FIELDS,
            (
                id_,
                serial,
                manufacturer,
                model,
                _KINDS.get(kind) or TokenKind(kind),  # the constructor names a bad value
                _ALGORITHMS.get(algorithm) or Algorithm(algorithm),
                digits,
                period,
                _STATES.get(state) or TokenState(state),
                upn,
                carrier,
                tracking,
                drift_seconds,
                moment(drift_measured_at),
                moment(created_at) or utc_now(),
                moment(updated_at) or utc_now(),
                moment(assigned_at),
                moment(burned_at),
                moment(registered_at),
                moment(shipped_at),
                moment(delivered_at),
                moment(purged_at),
                moment(closed_at),
                bool(has_secret),
                version,
            ),
            strict=True,
        )
    )
    return token


@dataclass(frozen=True)
class NewToken:
    """One token to add (a bulk import is a list of these). The secret never shows in a repr."""

    serial: str
    manufacturer: str
    model: str
    kind: TokenKind
    secret: bytes | None = field(repr=False, default=None)
    algorithm: Algorithm = Algorithm.SHA1
    digits: int = 6
    period: int = 30
    upn: str | None = None


@dataclass(frozen=True)
class TokenColumns:
    """Many tokens to add as columns (a bulk import): row i of every list is one token, as a
    ``NewToken`` would hold it. Lists of plain values cost a tenth of 100,000 objects to build
    and read; the secrets never show in a repr."""

    serials: list[str]
    manufacturers: list[str]
    models: list[str]
    kinds: list[TokenKind]
    secrets: list[bytes | None] = field(repr=False)
    algorithms: list[Algorithm]
    digits: list[int]
    periods: list[int]
    upns: list[str | None]

    def __len__(self) -> int:
        return len(self.serials)

    def __repr__(self) -> str:
        return f"TokenColumns({len(self.serials)} tokens)"

    @classmethod
    def of(cls, items: Sequence[NewToken]) -> TokenColumns:
        return cls(
            [item.serial for item in items],
            [item.manufacturer for item in items],
            [item.model for item in items],
            [item.kind for item in items],
            [item.secret for item in items],
            [item.algorithm for item in items],
            [item.digits for item in items],
            [item.period for item in items],
            [item.upn for item in items],
        )

    def with_upns(self, upns: list[str | None]) -> TokenColumns:
        return replace(self, upns=upns)


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything oathdesk stores is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


_UTC_OFFSET = "+00:00"


def utc_moment(stored: datetime | str | None) -> datetime | None:
    """A stored time as an aware datetime: a driver's datetime (``aware``), or SQLite's text
    read as is (SQLAlchemy's DateTime stores ISO text in UTC without a zone). Text with the
    zone appended is parsed in one C call, a fifth of parsing it and then setting the zone."""
    if stored is None:
        return None
    if isinstance(stored, str):
        if stored[-6:-5] in ("+", "-") and stored[-3:-2] == ":":  # a zone of its own
            return aware(datetime.fromisoformat(stored))
        return datetime.fromisoformat(stored + _UTC_OFFSET)
    return aware(stored)
