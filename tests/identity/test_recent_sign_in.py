"""An approval's fresh sign-in: ``auth_time`` present and within max_age (plus the clock leeway
the other time checks allow), checked over many moments and ages (whole seconds, as Entra
writes them, so the bounds are exact)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oathdesk.identity.errors import SsoRefused
from oathdesk.identity.tokens import LEEWAY_SECONDS, IdentityClaims, check_recent_sign_in

MAX_AGE = 300


def claims(auth_time: float | None) -> IdentityClaims:
    return IdentityClaims(
        tid="t",
        oid="o",
        upn="u",
        name="n",
        app_roles=frozenset(),
        role="admin",
        auth_time=auth_time,
    )


@given(
    now=st.integers(10**9, 4 * 10**9), age=st.integers(-LEEWAY_SECONDS, MAX_AGE + LEEWAY_SECONDS)
)
def test_a_sign_in_within_max_age_is_fresh(now: int, age: int) -> None:
    check_recent_sign_in(claims(now - age), max_age=MAX_AGE, now=now)


@given(
    now=st.integers(10**9, 4 * 10**9),
    age=st.one_of(
        st.integers(MAX_AGE + LEEWAY_SECONDS + 1, 10**7),
        st.integers(-(10**7), -LEEWAY_SECONDS - 1),
    ),
)
def test_an_old_or_future_sign_in_is_refused_in_one_line(now: int, age: int) -> None:
    with pytest.raises(SsoRefused) as refused:
        check_recent_sign_in(claims(now - age), max_age=MAX_AGE, now=now)
    assert refused.value.reason == "auth_time"
    assert "within the last 5 minutes" in refused.value.message
    assert "\n" not in refused.value.message


def test_a_token_without_auth_time_is_refused_saying_what_to_configure() -> None:
    with pytest.raises(SsoRefused) as refused:
        check_recent_sign_in(claims(None), max_age=MAX_AGE, now=1.7e9)
    assert refused.value.reason == "auth_time"
    assert "optional claim" in refused.value.message
