"""User principal names as Entra accepts them. Pure."""

from __future__ import annotations

import re

from oathdesk.errors import InvalidInput

UPN_RE = re.compile(r"^[A-Za-z0-9._%+'\-]{1,113}@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")


def is_valid_upn(text: str) -> bool:
    return UPN_RE.match(text.strip()) is not None


def validate_upn(upn: str) -> str:
    """The canonical (lower-case) UPN, or InvalidInput saying what one looks like."""
    cleaned = upn.strip()
    if not is_valid_upn(cleaned):
        raise InvalidInput(f"{upn!r} is not a valid UPN; it looks like name@contoso.com")
    return cleaned.lower()
