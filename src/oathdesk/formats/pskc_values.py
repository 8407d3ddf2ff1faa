"""Where a PSKC file holds a value python-pskc cannot convert, by element and line. Pure.

python-pskc converts numbers, booleans, dates and base64 as it builds its objects, and a bad one
ends the whole parse with a bare ValueError ("invalid literal for int() ...") that names neither
the element nor the line. This pass reads the same values with the same conversions, with expat
(which knows the line), so that the operator is told which value to look at. The value itself is
never repeated: a bad <PlainValue> may be most of a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from xml.parsers import expat

# Elements whose text python-pskc reads as an integer (findint) ...
_INT_ELEMENTS = frozenset({"NumberOfTransactions", "PBEIterationCount", "IterationCount"})
_INT_ELEMENTS |= {"KeyLength"}
# ... as base64 (findbin) ...
_BASE64_ELEMENTS = frozenset({"CipherValue", "ValueMAC", "ValueDigest", "IV", "PBESalt"})
_BASE64_ELEMENTS |= {"Specified", "X509Certificate"}
# ... as a date (findtime) ...
_DATE_ELEMENTS = frozenset({"StartDate", "ExpiryDate", "Expiry"})
# ... and the attributes it reads as integers (getint) and booleans (getbool), by element.
_INT_ATTRIBUTES = {
    "ChallengeFormat": ("Min", "min", "Max", "max"),
    "ResponseFormat": ("Length", "length"),
    "PINPolicy": ("MaxFailedAttempts", "MinLength", "MaxLength"),
}
_BOOL_ATTRIBUTES = {
    "ChallengeFormat": ("CheckDigits", "CheckDigit"),
    "ResponseFormat": ("CheckDigits", "CheckDigit"),
    "Usage": ("OTP", "CR", "Integrity", "Encrypt", "Unlock"),
}
# <PlainValue> and the legacy <Value> are base64 in a Secret, and integers (or base64 of one)
# in a Counter, Time, TimeInterval or TimeDrift.
_INTEGER_DATA = frozenset({"Counter", "Time", "TimeInterval", "TimeDrift"})


@dataclass(frozen=True)
class BadValue:
    line: int
    name: str  # the element's or attribute's name, as the file spells it
    message: str


def find_bad_value(data: bytes) -> BadValue | None:
    """The first value python-pskc would fail to convert, or None.

    Only called on XML already checked by ``limits.check_xml`` (no DTD, bounded depth).
    """
    parser = expat.ParserCreate(namespace_separator="}")
    stack: list[str] = []
    texts: list[list[str]] = []
    found: list[BadValue] = []

    def local(name: str) -> str:
        return name.rsplit("}", 1)[-1]

    def start(name: str, attributes: dict[str, str]) -> None:
        element = local(name)
        line = parser.CurrentLineNumber
        for attribute in _INT_ATTRIBUTES.get(element, ()):
            value = attributes.get(attribute)
            if value and not _converts(int, value):
                found.append(_attribute(line, attribute, element, "a whole number"))
        for attribute in _BOOL_ATTRIBUTES.get(element, ()):
            value = attributes.get(attribute)
            if value and value.lower() not in ("1", "true", "0", "false"):
                found.append(_attribute(line, attribute, element, "true or false"))
        stack.append(element)
        texts.append([])

    def characters(text: str) -> None:
        if texts:
            texts[-1].append(text)

    def end(_name: str) -> None:
        element = stack.pop()
        text = "".join(texts.pop()).strip()
        parent = stack[-1] if stack else ""
        what = _expected(element, parent)
        if text and what is not None and not what[1](text):
            found.append(
                BadValue(parser.CurrentLineNumber, element, f"<{element}> must be {what[0]}")
            )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except Exception:  # cannot happen after check_xml; nothing to point at then
        return None
    return min(found, key=lambda bad: bad.line) if found else None


def _expected(element: str, parent: str) -> tuple[str, Callable[[str], bool]] | None:
    if element in _INT_ELEMENTS:
        return "a whole number", lambda text: _converts(int, text)
    if element in _BASE64_ELEMENTS:
        return "base64", lambda text: _converts(base64.b64decode, text)
    if element in _DATE_ELEMENTS:
        return "a date and time (ISO 8601)", _is_date
    if element in ("PlainValue", "Value"):
        if parent in _INTEGER_DATA:
            return "a whole number", _is_plain_int
        return "base64", lambda text: _converts(base64.b64decode, text)
    return None


def _attribute(line: int, attribute: str, element: str, what: str) -> BadValue:
    return BadValue(line, attribute, f"the {attribute} attribute of <{element}> must be {what}")


def _converts(convert: Callable[[str], object], text: str) -> bool:
    try:
        convert(text)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        return False
    return True


def _is_plain_int(text: str) -> bool:
    # python-pskc's plain2int: a decimal integer, else base64 of one.
    return _converts(int, text) or _converts(base64.b64decode, text)


def _is_date(text: str) -> bool:
    import dateutil.parser  # type: ignore[import-untyped]  # python-pskc's own date parser

    try:
        dateutil.parser.parse(text)
    except (ValueError, OverflowError):  # ParserError is a ValueError
        return False
    return True
