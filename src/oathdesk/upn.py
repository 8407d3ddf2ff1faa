"""User principal names as Entra accepts them. Pure.

Entra's username policy ("Password policies and account restrictions in Microsoft Entra ID"):
the part before ``@`` holds only A-Z, a-z, 0-9 and ``' . - _ ! # ^ ~``, at most 64 characters,
and no dot right before the ``@``; at most 48 characters after it and 113 in all. oathdesk also
refuses what Entra's older rules and RFC 5322 refuse and a directory would never hold (a dot
first or two in a row, a domain that is not dotted labels of letters, digits and inner hyphens)
and a UPN starting with ``-``: Entra's characters allow it, but a spreadsheet runs such a cell as
a formula, and a UPN that an export would have to escape is not the UPN that was stored.
"""

from __future__ import annotations

import re

from oathdesk.errors import InvalidInput

MAX_UPN_CHARS = 113
MAX_NAME_CHARS = 64
MAX_DOMAIN_CHARS = 48
_NAME = re.compile(r"[A-Za-z0-9'._!#^~-]+")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_LOOKS_LIKE = "a UPN looks like name@contoso.com"
# The usual UPN, accepted in one regular-expression match (an import checks 100,000 of them):
# narrower than the rules below, so whatever it accepts they accept too (tests/core/test_upn.py).
PLAIN_UPN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
MAX_PLAIN_UPN_CHARS = MAX_DOMAIN_CHARS  # within every one of the length limits


def upn_problem(text: str) -> str | None:
    """Why ``text`` (blanks around it ignored) is not a UPN Entra takes, in one line that never
    quotes it; None when it is one."""
    if len(text) <= MAX_PLAIN_UPN_CHARS and PLAIN_UPN.fullmatch(text) is not None:
        return None
    return full_upn_problem(text)


def full_upn_problem(text: str) -> str | None:
    """``upn_problem`` without the shortcut for the usual UPN."""
    upn = text.strip()
    if not upn:
        return "the UPN is empty"
    name, at, domain = upn.rpartition("@")
    if not at or not name or "@" in name:
        return f"a UPN has exactly one @ between the name and the domain; {_LOOKS_LIKE}"
    if _NAME.fullmatch(name) is None:
        return (
            "the name before @ may hold only the letters A-Z, digits and ' . - _ ! # ^ ~ "
            "(Entra's rule: no spaces, accents, + or %)"
        )
    if name.startswith("-"):
        return "the UPN starts with '-', which a spreadsheet runs as a formula"
    if name.startswith(".") or name.endswith(".") or ".." in name:
        return "a dot may not start or end the name before @, nor follow another dot"
    if len(name) > MAX_NAME_CHARS or len(domain) > MAX_DOMAIN_CHARS or len(upn) > MAX_UPN_CHARS:
        return (
            f"the UPN is too long: Entra takes {MAX_NAME_CHARS} characters before @, "
            f"{MAX_DOMAIN_CHARS} after it and {MAX_UPN_CHARS} in all"
        )
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return (
            "the domain after @ must be like contoso.com: dotted names of letters, digits "
            "and inner hyphens"
        )
    return None


def is_valid_upn(text: str) -> bool:
    return upn_problem(text) is None


def validate_upn(upn: str) -> str:
    """The canonical (lower-case) UPN, or InvalidInput saying what is wrong with it."""
    problem = upn_problem(upn)
    if problem is not None:
        raise InvalidInput(f"{upn.strip()[:120]!r} is not a valid UPN: {problem}")
    return upn.strip().lower()
