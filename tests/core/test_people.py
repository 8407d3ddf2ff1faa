"""What is on file about a user, checked: phone numbers kept in E.164, one-line refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.errors import InvalidInput
from oathdesk.people import check_display_name, check_notes, normalize_phone, phone_text


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (212) 555-0100", "+12125550100"),
        ("0041 79 000 00 00", "+41790000000"),  # the international prefix, as dialled
        ("  +41790000000 ", "+41790000000"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_a_phone_number_is_kept_in_e164(typed: str, stored: str) -> None:
    assert normalize_phone(typed) == stored
    assert normalize_phone(stored) == stored  # stable


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("020 7946 0958", "no country code"),
        ("call me maybe", "no country code"),
        ("+44 1", "not one"),
        ("+44 20 7946 0958 ext. 12", "extension"),
        ("+41 79 000 00 00 00 00 00", "too few or too many digits"),
        ("+41 79\n000 00 00", "not one"),
        ("+" + "1" * 80, "not one"),
    ],
)
def test_a_bad_phone_number_is_refused_in_one_line(typed: str, said: str) -> None:
    with pytest.raises(InvalidInput, match=said) as refused:
        normalize_phone(typed)
    message = refused.value.message
    assert "\n" not in message
    assert "+44 20 7946 0958" in message  # says how to write it


def test_phone_text_groups_the_stored_number() -> None:
    assert phone_text("+442079460958") == "+44 20 7946 0958"
    assert phone_text("") == ""
    assert phone_text("555-0100") == "555-0100"  # kept before numbers were checked: as stored


def test_display_name_and_notes() -> None:
    assert check_display_name("  Helga Braun ") == "Helga Braun"
    with pytest.raises(InvalidInput, match="one line"):
        check_display_name("Helga\nBraun")
    with pytest.raises(InvalidInput, match="longer than 256"):
        check_display_name("x" * 257)
    assert check_notes(" on leave until May\r\nback desk 3 ") == "on leave until May\nback desk 3"
    with pytest.raises(InvalidInput, match="longer than 2000"):
        check_notes("x" * 2001)
    with pytest.raises(InvalidInput, match="control characters"):
        check_notes("bell\x07")


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=80) | st.from_regex(r"\A(\+|00)[0-9 ()\-./x]{0,30}\Z"))
def test_any_text_is_a_number_in_e164_or_one_clear_refusal(typed: str) -> None:
    message = ""
    try:
        stored = normalize_phone(typed)
    except InvalidInput as refused:
        message = refused.message
    if message:
        assert "\n" not in message
        assert "+44 20 7946 0958" in message
        return
    assert stored == "" or (stored.startswith("+") and stored[1:].isdigit())
    assert normalize_phone(stored) == stored
    assert normalize_phone(phone_text(stored)) == stored
