"""One builder of a Token from its stored columns (models.token_of_columns), for the vault's reads
and the quick read path alike: the same Token as the dataclass's own constructor makes, from a
driver's datetimes or SQLite's text; stored times read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from oathdesk.otp import Algorithm
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import TOKEN_COLUMNS, Token, token_of_columns, utc_moment

CREATED = datetime(2026, 3, 1, 8, 30, 5, 123456, tzinfo=UTC)
MEASURED = datetime(2026, 4, 2, 23, 59, 59, 1, tzinfo=UTC)


def _stored(moment: datetime | None, form: str) -> Any:
    """A time as a database hands it back: aware, naive (SQLite through SQLAlchemy), or text."""
    if moment is None:
        return None
    naive = moment.replace(tzinfo=None)
    return {"aware": moment, "naive": naive, "text": naive.isoformat(sep=" ")}[form]


@pytest.mark.parametrize("form", ["aware", "naive", "text"])
def test_a_token_from_its_columns_equals_the_constructors(form: str) -> None:
    values = {
        "id": "t-1",
        "serial": "S0001",
        "manufacturer": "Token2",
        "model": "C202",
        "kind": "programmable",
        "algorithm": "sha256",
        "digits": 8,
        "period": 60,
        "state": "assigned",
        "carrier": "DHL",
        "tracking": "JD0001",
        "drift_seconds": -12,
        "drift_measured_at": _stored(MEASURED, form),
        "created_at": _stored(CREATED, form),
        "updated_at": _stored(MEASURED, form),
        "assigned_at": _stored(CREATED, form),
        "burned_at": None,
        "registered_at": None,
        "shipped_at": None,
        "delivered_at": None,
        "purged_at": None,
        "closed_at": None,
        "version": 3,
    }
    built = token_of_columns(
        tuple(values[name] for name in TOKEN_COLUMNS), "ada@contoso.com", True, utc_moment
    )
    expected = Token(
        id="t-1",
        serial="S0001",
        manufacturer="Token2",
        model="C202",
        kind=TokenKind.PROGRAMMABLE,
        algorithm=Algorithm.SHA256,
        digits=8,
        period=60,
        state=TokenState.ASSIGNED,
        upn="ada@contoso.com",
        carrier="DHL",
        tracking="JD0001",
        drift_seconds=-12,
        drift_measured_at=MEASURED,
        created_at=CREATED,
        updated_at=MEASURED,
        assigned_at=CREATED,
        burned_at=None,
        registered_at=None,
        shipped_at=None,
        delivered_at=None,
        purged_at=None,
        closed_at=None,
        has_secret=True,
        version=3,
    )
    assert built == expected
    assert repr(built) == repr(expected)
    assert built.created_at.tzinfo is UTC
    assert built.kind is TokenKind.PROGRAMMABLE
    assert built.has_secret is True
    with pytest.raises(AttributeError):
        built.serial = "other"  # type: ignore[misc]  # still frozen


def test_an_unknown_stored_value_is_refused_by_name() -> None:
    columns = ["x"] * len(TOKEN_COLUMNS)
    with pytest.raises(ValueError, match="'x' is not a valid TokenKind"):
        token_of_columns(columns, None, False, utc_moment)


def test_stored_text_is_read_as_utc_unless_it_names_its_zone() -> None:
    assert utc_moment("2026-03-01 08:30:05.123456") == CREATED
    assert utc_moment("2026-03-01 08:30:05") == CREATED.replace(microsecond=0)
    east = timezone(timedelta(hours=2))
    assert utc_moment("2026-03-01 10:30:05.123456+02:00") == CREATED
    assert utc_moment("2026-03-01 10:30:05.123456+02:00").tzinfo == east  # type: ignore[union-attr]
    assert utc_moment(None) is None
    assert utc_moment(datetime(2026, 3, 1, 8, 30, 5, 123456)) == CREATED
