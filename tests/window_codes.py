"""Codes that a TOTP acceptance window provably does not hold, for tests that expect a refusal.

A 6-digit code recurs by chance: the code of a step just outside a +-2,880-step window also
occurs somewhere inside the window's 5,761 steps about 0.6% of the time, so "the code one step
past the edge" is refused only usually, and a test built on it fails now and then. The helpers
here compute the window's codes and return a code none of them equals, asserting it, so a test
that expects a refusal holds at every moment.

The codes come from the standard library's HMAC (RFC 4226 truncation written out here), not from
``oathdesk.otp``: a test helper must not share the product's mistakes. Codes are kept per key in
one growing list of consecutive steps, so a loop over 1,000 neighbouring moments computes each
step once.
"""

from __future__ import annotations

import base64
import hmac
import struct
from itertools import count

__all__ = [
    "code_absent_from_window",
    "code_outside_window",
    "totp_code",
    "window_codes",
]

_PACK = struct.Struct(">Q").pack


class _StepCodes:
    """The codes of one key for a contiguous range of steps, extended on demand."""

    def __init__(self, key: bytes, digest: str, digits: int) -> None:
        self.key, self.digest, self.digits = key, digest, digits
        self.first = 0
        self.codes: list[str] = []

    def _compute(self, first: int, stop: int) -> list[str]:
        modulus = 10**self.digits
        out: list[str] = []
        for step in range(first, stop):
            mac = hmac.digest(self.key, _PACK(step), self.digest)
            offset = mac[-1] & 0x0F
            value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
            out.append(f"{value % modulus:0{self.digits}d}")
        return out

    def span(self, first: int, stop: int) -> list[str]:
        """The codes of steps ``first`` .. ``stop - 1``."""
        if not self.codes or stop < self.first or first > self.first + len(self.codes):
            # Nothing cached, or far from what is: start afresh rather than fill the gap.
            self.first, self.codes = first, self._compute(first, stop)
        if first < self.first:
            self.codes[:0] = self._compute(first, self.first)
            self.first = first
        end = self.first + len(self.codes)
        if stop > end:
            self.codes.extend(self._compute(end, stop))
        return self.codes[first - self.first : stop - self.first]


_CACHE: dict[tuple[bytes, str, int], _StepCodes] = {}


def _key(secret: bytes | str) -> bytes:
    """Raw bytes as they are; text is a base32 seed (spaces, padding and case ignored)."""
    if isinstance(secret, bytes):
        return secret
    text = secret.replace(" ", "").rstrip("=").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _codes(secret: bytes | str, digest: str, digits: int) -> _StepCodes:
    index = (_key(secret), digest, digits)
    if index not in _CACHE:
        _CACHE[index] = _StepCodes(*index)
    return _CACHE[index]


def totp_code(secret: bytes | str, step: int, *, digest: str = "sha1", digits: int = 6) -> str:
    """The code of ``step`` (RFC 6238: HOTP of the step counter)."""
    return _codes(secret, digest, digits).span(step, step + 1)[0]


def window_codes(
    secret: bytes | str,
    step: int,
    behind: int,
    ahead: int,
    *,
    digest: str = "sha1",
    digits: int = 6,
) -> set[str]:
    """Every code accepted at ``step`` by a window of ``behind`` steps back, ``ahead`` forward."""
    return set(_codes(secret, digest, digits).span(step - behind, step + ahead + 1))


def code_outside_window(
    secret: bytes | str,
    step: int,
    behind: int,
    ahead: int,
    *,
    side: int = 1,
    start: int | None = None,
    digest: str = "sha1",
    digits: int = 6,
) -> tuple[str, int]:
    """The code of the nearest step past the window's edge on ``side`` (+1 ahead, -1 behind)
    that occurs nowhere inside the window, with that step's offset from ``step``.

    The search starts right past the edge (offset ``ahead + 1`` or ``-(behind + 1)``), or at
    ``start`` (an offset outside the window), and moves away from the window: about 0.6% of the
    time at +-2,880 steps the first code also occurs inside.
    """
    if side not in (1, -1):
        raise ValueError("side is +1 (ahead) or -1 (behind)")
    inside = window_codes(secret, step, behind, ahead, digest=digest, digits=digits)
    offset = (ahead + 1 if side == 1 else -(behind + 1)) if start is None else start
    if -behind <= offset <= ahead or (offset > 0) != (side > 0):
        raise ValueError(f"start {offset} is not past the window's edge on side {side}")
    while (code := totp_code(secret, step + offset, digest=digest, digits=digits)) in inside:
        offset += side
    assert code not in inside
    return code, offset


def code_absent_from_window(
    secret: bytes | str,
    step: int,
    behind: int,
    ahead: int,
    *,
    digest: str = "sha1",
    digits: int = 6,
) -> str:
    """A well-formed code (000000, 000001, ...) that the window does not accept at ``step``."""
    inside = window_codes(secret, step, behind, ahead, digest=digest, digits=digits)
    code = next(c for c in (f"{n:0{digits}d}" for n in count()) if c not in inside)
    assert code not in inside
    return code
