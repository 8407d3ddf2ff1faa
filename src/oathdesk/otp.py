"""The OTP engine: HOTP (RFC 4226) and TOTP (RFC 6238), written for speed. Pure, no I/O.

Speed comes from doing the HMAC key set-up once per key: the inner and outer hash states of
HMAC (key XOR ipad, key XOR opad) are computed once and copied for every counter, which is what
``hmac.digest`` would otherwise redo on each call. A 1,000-step window or a +-2,880-step drift
search is then a tight loop of C-level hash copies (see docs/benchmarks.md).

Acceptance windows are named profiles (``entra``, ``entra-activation``, ``legacy``, ``custom``),
because Entra's tolerance is not one number: every "accepted until" oathdesk shows comes from one.
"""

from __future__ import annotations

import hashlib
import struct
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from oathdesk.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

# Value types are NamedTuples, not dataclasses: importing dataclasses (and with it inspect) would
# double the start-up time of `oathdesk code`.

MIN_DIGITS = 6
MAX_DIGITS = 10
SECONDS_PER_DAY = 86_400


class Algorithm(StrEnum):
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"

    @classmethod
    def parse(cls, text: str) -> Algorithm:
        """Accept "sha1", "SHA-256", "HmacSHA512", ... in any case."""
        cleaned = text.strip().lower().replace("-", "").replace("_", "")
        cleaned = cleaned.removeprefix("hmac")
        for algorithm in cls:
            if algorithm.value == cleaned:
                return algorithm
        raise InvalidInput(f"unknown algorithm {text!r}; use sha1, sha256 or sha512")


_HASHES: dict[Algorithm, Callable[..., Any]] = {
    Algorithm.SHA1: hashlib.sha1,
    Algorithm.SHA256: hashlib.sha256,
    Algorithm.SHA512: hashlib.sha512,
}
_BLOCK_SIZES = {Algorithm.SHA1: 64, Algorithm.SHA256: 64, Algorithm.SHA512: 128}
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_PACK_COUNTER = struct.Struct(">Q").pack
_UNPACK_U32 = struct.Struct(">I").unpack_from
_MASK_31 = 0x7FFFFFFF


def check_digits(digits: int) -> int:
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise InvalidInput(f"digits must be from {MIN_DIGITS} to {MAX_DIGITS}, not {digits}")
    return digits


def check_period(period: int) -> int:
    if period < 1:
        raise InvalidInput(f"the period must be a positive number of seconds, not {period}")
    return period


def _hmac_states(key: bytes, algorithm: Algorithm) -> tuple[Any, Any]:
    """The HMAC inner and outer hash states after absorbing the padded key (RFC 2104)."""
    new_hash = _HASHES[algorithm]
    block = _BLOCK_SIZES[algorithm]
    if len(key) > block:
        key = new_hash(key).digest()
    key = key.ljust(block, b"\0")
    return new_hash(key.translate(_IPAD)), new_hash(key.translate(_OPAD))


def _code_formatter(digits: int) -> Callable[[int], str]:
    return f"{{:0{digits}d}}".format


def _truncated_values(
    key: bytes, first_counter: int, count: int, algorithm: Algorithm, digits: int
) -> list[int]:
    """The RFC 4226 dynamically truncated values, reduced to ``digits``, for a counter range."""
    check_digits(digits)
    inner, outer = _hmac_states(key, algorithm)
    copy_inner, copy_outer = inner.copy, outer.copy
    modulus = 10**digits
    mask = _MASK_31
    pack = _PACK_COUNTER
    unpack = _UNPACK_U32
    values: list[int] = []
    append = values.append
    for counter in range(first_counter, first_counter + count):
        h = copy_inner()
        h.update(pack(counter))
        o = copy_outer()
        o.update(h.digest())
        mac = o.digest()
        append((unpack(mac, mac[-1] & 0x0F)[0] & mask) % modulus)
    return values


def hotp_codes(
    key: bytes,
    first_counter: int,
    count: int,
    *,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
) -> list[str]:
    """HOTP codes for ``count`` consecutive counters starting at ``first_counter``."""
    values = _truncated_values(key, first_counter, count, algorithm, digits)
    return list(map(_code_formatter(digits), values))


def hotp(
    key: bytes, counter: int, *, algorithm: Algorithm = Algorithm.SHA1, digits: int = 6
) -> str:
    """One HOTP code (RFC 4226), zero-padded to ``digits``."""
    return hotp_codes(key, counter, 1, algorithm=algorithm, digits=digits)[0]


def step_at(at: float, *, period: int = 30, t0: int = 0) -> int:
    """The TOTP time step (RFC 6238 "T") that contains the instant ``at`` (Unix seconds)."""
    return int((at - t0) // check_period(period))


def step_start(step: int, *, period: int = 30, t0: int = 0) -> int:
    """Unix seconds at which ``step`` begins."""
    return t0 + step * period


def totp(
    key: bytes,
    at: float,
    *,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
    period: int = 30,
    t0: int = 0,
) -> str:
    """The TOTP code (RFC 6238) shown at instant ``at``."""
    return hotp(key, step_at(at, period=period, t0=t0), algorithm=algorithm, digits=digits)


def totp_codes(
    key: bytes,
    at: float,
    *,
    behind: int,
    ahead: int,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
    period: int = 30,
    t0: int = 0,
) -> list[str]:
    """Codes for steps ``-behind .. +ahead`` around instant ``at``; index ``behind`` is now."""
    if behind < 0 or ahead < 0:
        raise InvalidInput("window sizes must not be negative")
    now = step_at(at, period=period, t0=t0)
    return hotp_codes(key, now - behind, behind + ahead + 1, algorithm=algorithm, digits=digits)


def _code_value(code: str, digits: int) -> int | None:
    """The integer a code stands for, or None if it cannot be a code of this length."""
    # Users read codes out as "123 456"; tokens never show anything but digits.
    cleaned = code.replace(" ", "").replace("-", "").strip()
    if len(cleaned) != digits or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return int(cleaned)


def _matching_offsets(values: Sequence[int], wanted: int, first_offset: int) -> list[int]:
    """Offsets of every candidate equal to ``wanted``, without stopping at the first.

    The values are below 2**31, so each comparison is between single machine-word integers and
    takes the same time whatever they hold; the scan never exits early, so the time taken does
    not reveal where (or whether) the code matched.
    """
    return [first_offset + index for index, value in enumerate(values) if value == wanted]


def verify_totp(
    key: bytes,
    code: str,
    at: float,
    *,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
    period: int = 30,
    t0: int = 0,
    behind: int = 2,
    ahead: int = 2,
) -> int | None:
    """The step offset (0 = the step at ``at``) at which ``code`` is valid, or None.

    When a code occurs more than once in the window (a collision, about 1 in 10**digits per
    step), the offset nearest to now wins.
    """
    wanted = _code_value(code, digits)
    if wanted is None:
        return None
    if behind < 0 or ahead < 0:
        raise InvalidInput("window sizes must not be negative")
    now = step_at(at, period=period, t0=t0)
    values = _truncated_values(key, now - behind, behind + ahead + 1, algorithm, digits)
    matches = _matching_offsets(values, wanted, -behind)
    return min(matches, key=abs) if matches else None


class DriftMeasurement(NamedTuple):
    """Where a token's clock is, measured from a code (and ideally the next one) it showed.

    ``drift_seconds`` is positive when the token runs ahead of the reference clock. It is a
    multiple of the period: a code only tells which step the token was in.
    """

    step_offset: int
    drift_seconds: int
    confirmed_by_next_code: bool


def measure_drift(
    key: bytes,
    code: str,
    at: float,
    *,
    next_code: str | None = None,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
    period: int = 30,
    t0: int = 0,
    max_steps: int | None = None,
) -> DriftMeasurement | None:
    """Search +-``max_steps`` (default one day) for ``code``; None if it is nowhere.

    A 6-digit code recurs by chance about once per 10**6 steps, so over +-2,880 steps a single
    code is ambiguous a few times in a thousand. With ``next_code`` (the code the token shows
    one step later) only an offset where both match counts.
    """
    if max_steps is None:
        max_steps = SECONDS_PER_DAY // check_period(period)
    wanted = _code_value(code, digits)
    if wanted is None:
        return None
    now = step_at(at, period=period, t0=t0)
    values = _truncated_values(key, now - max_steps, 2 * max_steps + 2, algorithm, digits)
    matches = _matching_offsets(values[:-1], wanted, -max_steps)
    confirmed = False
    if next_code is not None:
        wanted_next = _code_value(next_code, digits)
        matches = [
            offset
            for offset in matches
            if wanted_next is not None and values[offset + max_steps + 1] == wanted_next
        ]
        confirmed = True
    if not matches:
        return None
    offset = min(matches, key=abs)
    return DriftMeasurement(offset, offset * period, confirmed)


class AcceptanceProfile(NamedTuple):
    """How many steps behind and ahead of its own clock a server accepts a code."""

    name: str
    behind: int
    ahead: int

    def describe(self, period: int) -> str:
        return f"{self.name} (-{self.behind * period} s / +{self.ahead * period} s)"


PROFILE_NAMES = ("entra", "entra-activation", "legacy", "custom")
PROFILE_HELP = {
    "entra": "Entra sign-in, +-2 steps (documented 2025)",
    "entra-activation": "Entra token activation, +-1 day (+-2 days for 60 s tokens)",
    "legacy": "+-15 steps, the ~10-minute window the Token2 guides describe",
    "custom": "your own --behind/--ahead steps",
}


def acceptance_profile(
    name: str,
    *,
    period: int = 30,
    behind: int | None = None,
    ahead: int | None = None,
) -> AcceptanceProfile:
    """The named acceptance window, in steps of ``period`` seconds."""
    key = name.strip().lower()
    check_period(period)
    if key == "entra":
        return AcceptanceProfile(key, 2, 2)
    if key == "entra-activation":
        days = 1 if period <= 30 else 2
        steps = days * SECONDS_PER_DAY // period
        return AcceptanceProfile(key, steps, steps)
    if key == "legacy":
        return AcceptanceProfile(key, 15, 15)
    if key == "custom":
        if behind is None or ahead is None or behind < 0 or ahead < 0:
            raise InvalidInput("the custom profile needs --behind N and --ahead N (steps, >= 0)")
        return AcceptanceProfile(key, behind, ahead)
    raise InvalidInput(
        f"unknown acceptance profile {name!r}; use one of {', '.join(PROFILE_NAMES)}"
    )


def _utc(seconds: float) -> datetime:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


class TimedCode(NamedTuple):
    """A code with when the token shows it and until when the server accepts it."""

    step_offset: int
    code: str
    shown_from: datetime
    shown_until: datetime
    accepted_from: datetime
    accepted_until: datetime

    def __repr__(self) -> str:
        # A code is short-lived but still a credential: keep it out of logs by default.
        return f"TimedCode(step_offset={self.step_offset}, accepted_until={self.accepted_until})"


def timed_codes(
    key: bytes,
    at: float,
    *,
    past: int,
    future: int,
    profile: AcceptanceProfile,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
    period: int = 30,
    t0: int = 0,
) -> list[TimedCode]:
    """Codes for steps -past..+future with their display and acceptance times under ``profile``.

    A code for step k is accepted while the server's step s satisfies k - ahead <= s <= k + behind,
    i.e. from the start of step k - ahead until the end of step k + behind.
    """
    now = step_at(at, period=period, t0=t0)
    codes = totp_codes(
        key,
        at,
        behind=past,
        ahead=future,
        algorithm=algorithm,
        digits=digits,
        period=period,
        t0=t0,
    )
    result = []
    for index, code in enumerate(codes):
        offset = index - past
        step = now + offset
        start = step_start(step, period=period, t0=t0)
        result.append(
            TimedCode(
                step_offset=offset,
                code=code,
                shown_from=_utc(start),
                shown_until=_utc(start + period),
                accepted_from=_utc(start - profile.ahead * period),
                accepted_until=_utc(start + (profile.behind + 1) * period),
            )
        )
    return result


def longest_valid_code(
    key: bytes,
    at: float,
    *,
    profile: AcceptanceProfile,
    algorithm: Algorithm = Algorithm.SHA1,
    digits: int = 6,
    period: int = 30,
    t0: int = 0,
) -> TimedCode:
    """The code to hand out now that stays accepted the longest, e.g. for an email.

    The server accepts, right now, codes up to ``profile.ahead`` steps in the future; the
    furthest of them stays accepted until ``profile.behind`` steps after its own step ends.
    """
    return timed_codes(
        key,
        at,
        past=0,
        future=profile.ahead,
        profile=profile,
        algorithm=algorithm,
        digits=digits,
        period=period,
        t0=t0,
    )[-1]
