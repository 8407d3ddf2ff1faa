"""What `code`, `codes` and `check` need, resolved from their options. No click: `oathdesk code`'s
fast path (cli/fastcode.py) and the click commands share this, so they behave identically."""

from __future__ import annotations

import time
from typing import NamedTuple

from oathdesk.otp import Algorithm, check_digits, check_period
from oathdesk.seed import parse_seed
from oathdesk.timeparse import parse_instant


class CodeRequest(NamedTuple):
    key: bytes
    at: float
    algorithm: Algorithm
    digits: int
    period: int

    def __repr__(self) -> str:
        return f"CodeRequest(key=<hidden>, at={self.at}, algorithm={self.algorithm.value})"


def resolve_code_request(
    secret_text: str,
    *,
    at: str | None,
    algorithm: str | None,
    digits: int | None,
    period: int | None,
) -> CodeRequest:
    """Options given on the command line win over those carried by an otpauth URI."""
    seed = parse_seed(secret_text)
    chosen_algorithm = Algorithm.parse(algorithm or seed.algorithm or "sha1")
    return CodeRequest(
        key=seed.secret,
        at=time.time() if at is None else parse_instant(at),
        algorithm=chosen_algorithm,
        digits=check_digits(digits if digits is not None else seed.digits or 6),
        period=check_period(period if period is not None else seed.period or 30),
    )
