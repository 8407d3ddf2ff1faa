"""A secret from a cell or a line of a file, through ``oathdesk.seed``, never raising. Pure.

``read_secret_cell`` holds the one rule for a secret column of a table (the helpdesk's
spreadsheet, a vendor's ``serial,secret`` list): base32, hex when the column says so, and
all-digit values read as hex only when they are long enough to be a seed.
"""

from __future__ import annotations

import base64
import re

from oathdesk.errors import SeedError
from oathdesk.seed import ParsedSeed, SeedForm, parse_seed

# In any secret column, an all-digit value of at least this many digits (an even count) is a hex
# seed: base32 has only the digits 2-7, so a value with 0, 1, 8 or 9 cannot be base32, and 32
# digits of 2-7 alone would be a one in 10**23 base32 secret; serial numbers are far shorter
# (Token2: 11 to 13 digits). 32 hex digits are 16 bytes, RFC 4226's minimum seed.
HEX_SEED_MIN_DIGITS = 32
_SEPARATORS = str.maketrans("", "", " -\t")
# Plain base32 of 10 to 125 bytes in whole 8-character groups: what oathdesk.seed reads as base32
# without a question (no 0, 1, 8 or 9, so never hex), decoded directly. Vendor lists hold up to
# 100,000 of them, and the general parser costs several times more.
_PLAIN_BASE32 = re.compile(r"(?:[A-Za-z2-7]{8}){2,25}")

ALL_DIGITS_MESSAGE = (
    "the secret is all digits and too short for a hex seed, which is usually the token's serial "
    f"number (a hex seed here has {HEX_SEED_MIN_DIGITS} digits or more, or the column is headed "
    "'Secret (hex)')"
)


def read_seed(text: str) -> ParsedSeed | str:
    """The parsed seed, or the one-line reason it cannot be used (never the secret itself)."""
    try:
        return parse_seed(text)
    except SeedError as error:
        return error.message
    except ValueError:
        # parse_seed promises SeedError; a file is hostile input, so anything else that slips
        # through (e.g. digits like '²' in an otpauth parameter) is still a problem, not a crash.
        return "the secret or one of its parameters has characters that cannot be read"


def read_secret_cell(text: str, *, hex_column: bool = False) -> ParsedSeed | str:
    """The seed in a table's secret cell, or the one-line reason it cannot be used.

    ``hex_column``: the column's header says its values are hex (``Secret (hex)``)."""
    if not hex_column and _PLAIN_BASE32.fullmatch(text) and not text.isdigit():
        return ParsedSeed(base64.b32decode(text.upper()), SeedForm.BASE32)
    parsed = read_seed(_seed_text(text, hex_column))
    if isinstance(parsed, str) and _short_digits(text, hex_column):
        return ALL_DIGITS_MESSAGE
    return parsed


def _compact(text: str) -> str:
    return text.strip().translate(_SEPARATORS)


def _all_digits(text: str) -> bool:
    compact = _compact(text)
    return compact.isascii() and compact.isdigit()


def _short_digits(text: str, hex_column: bool) -> bool:
    """All digits, too few for a hex seed, in a column not headed as hex: a pasted serial."""
    return not hex_column and _all_digits(text) and len(_compact(text)) < HEX_SEED_MIN_DIGITS


def _seed_text(text: str, hex_column: bool) -> str:
    """The cell as ``oathdesk.seed`` should read it: hex marked as hex when the header says so
    or the value is all digits of a hex seed's length (see ``HEX_SEED_MIN_DIGITS``)."""
    lowered = text.strip().lower()
    if lowered.startswith(("otpauth:", "hex:", "base32:")):
        return text
    compact = _compact(text)
    if hex_column and compact:
        return "hex:" + compact
    if _all_digits(text) and len(compact) >= HEX_SEED_MIN_DIGITS:
        return "hex:" + compact  # an odd count is refused by the hex decoder, not guessed
    return text
