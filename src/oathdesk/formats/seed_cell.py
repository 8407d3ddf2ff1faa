"""A secret from a cell or a line of a file, through ``oathdesk.seed``, never raising. Pure."""

from __future__ import annotations

from oathdesk.errors import SeedError
from oathdesk.seed import ParsedSeed, parse_seed


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
