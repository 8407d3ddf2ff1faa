"""The shortcut for the usual UPN (one regular expression) accepts nothing the full rules
refuse: an import checks 100,000 UPNs with it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.upn import MAX_PLAIN_UPN_CHARS, PLAIN_UPN, full_upn_problem, upn_problem

# The characters the rules care about, with the ones they refuse, so that near misses are tried.
_ALPHABET = "aZ09._-'!#^~@+% \t\u00e9"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_the_shortcut_agrees_with_the_full_rules(text: str) -> None:
    assert upn_problem(text) == full_upn_problem(text)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.from_regex(PLAIN_UPN, fullmatch=True))
def test_whatever_the_shortcut_accepts_the_full_rules_accept(text: str) -> None:
    if len(text) <= MAX_PLAIN_UPN_CHARS:
        assert full_upn_problem(text) is None


def test_usual_and_refused_upns() -> None:
    assert upn_problem("helga.braun@contoso.com") is None
    assert upn_problem(" helga@contoso.com ") is None  # blanks around it are ignored
    for refused in ("-helga@contoso.com", "helga.@contoso.com", "helga@contoso", "h@x..com", ""):
        assert upn_problem(refused) is not None
    assert upn_problem("a" * 65 + "@contoso.com") is not None
