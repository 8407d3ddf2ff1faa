"""What is on file about a user: display name, phone number and notes, checked. Pure.

The phone number is the one a "callback" verification must dial. It is kept in E.164
(``+4930123456``), so the number an operator dials is the same whichever way it was typed
(spaces, dashes, brackets). The country code is required: a helpdesk serves callers in
several countries, and a number without one could be dialled in the wrong one. Google's
``phonenumbers`` decides what is a possible number for its country, so oathdesk keeps no list
of its own.
"""

from __future__ import annotations

import phonenumbers

from oathdesk.errors import InvalidInput

MAX_DISPLAY_NAME = 256  # users.display_name
MAX_NOTES = 2000
# More than any number and its formatting needs; parsing stops at this, whatever is sent.
MAX_PHONE_INPUT = 64
_FORMAT = "write it in international form with its country code, like +44 20 7946 0958"


def normalize_phone(text: str) -> str:
    """``text`` as E.164, or "" for no number; InvalidInput (one line, saying how) otherwise."""
    typed = text.strip()
    if not typed:
        return ""
    if len(typed) > MAX_PHONE_INPUT or not typed.isprintable():
        raise InvalidInput(f"the phone number is not one; {_FORMAT}")
    if not typed.startswith(("+", "00")):
        raise InvalidInput(f"the phone number has no country code; {_FORMAT}")
    if typed.startswith("00"):
        typed = "+" + typed[2:]
    try:
        number = phonenumbers.parse(typed, None)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"the phone number is not one; {_FORMAT}") from None
    if number.extension:
        raise InvalidInput(f"the phone number has an extension; put it in the notes and {_FORMAT}")
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(
            f"the phone number has too few or too many digits for its country; {_FORMAT}"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_text(e164: str) -> str:
    """The stored number as people read it (``+44 20 7946 0958``); as stored if it does not
    parse (a number kept before oathdesk checked them)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def check_display_name(text: str) -> str:
    """A display name: one line, at most MAX_DISPLAY_NAME characters, blanks around it dropped."""
    name = text.strip()
    if not name.isprintable():
        raise InvalidInput("the display name must be one line of text; remove the line breaks")
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidInput(
            f"the display name is longer than {MAX_DISPLAY_NAME} characters; shorten it"
        )
    return name


def check_notes(text: str) -> str:
    """Notes: free text over several lines, at most MAX_NOTES characters."""
    notes = text.strip().replace("\r\n", "\n")
    if len(notes) > MAX_NOTES:
        raise InvalidInput(f"the notes are longer than {MAX_NOTES} characters; shorten them")
    if any(not (char.isprintable() or char in "\n\t") for char in notes):
        raise InvalidInput("the notes hold control characters; keep to text, tabs and line breaks")
    return notes
