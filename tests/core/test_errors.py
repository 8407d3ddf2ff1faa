"""Operator-facing errors stay one line whatever input they quote."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oathdesk.errors import NotFound, OathdeskError


def test_control_characters_in_quoted_input_are_shown_escaped() -> None:
    error = NotFound("no user 'eve\nerror: forged line\x1b[31m'")
    assert error.message == "no user 'eve\\nerror: forged line\\x1b[31m'"
    assert str(error) == error.message


def test_a_plain_message_is_kept_as_it_is() -> None:
    assert OathdeskError("token 8659612 is now burned; next: ship it").message == (
        "token 8659612 is now burned; next: ship it"
    )


@given(st.text())
def test_every_message_is_one_printable_line(text: str) -> None:
    message = OathdeskError(f"no user {text!s}").message
    assert message.isprintable()
    assert "\n" not in message
    assert "\r" not in message
