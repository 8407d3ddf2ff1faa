"""The OTP engine against RFC vectors and two independent oracles (pyotp, oathtool)."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.errors import InvalidInput
from oathdesk.otp import (
    Algorithm,
    acceptance_profile,
    hotp,
    hotp_codes,
    longest_valid_code,
    measure_drift,
    step_at,
    timed_codes,
    totp,
    totp_codes,
    verify_totp,
)
from tests.window_codes import code_outside_window, window_codes

RFC4226_KEY = b"12345678901234567890"
# RFC 4226 Appendix D: HOTP values for counters 0..9.
RFC4226_CODES = [
    "755224", "287082", "359152", "969429", "338314",
    "254676", "287922", "162583", "399871", "520489",
]  # fmt: skip

# RFC 6238 Appendix B: the seeds are the ASCII string repeated to the hash's size.
RFC6238_KEYS = {
    Algorithm.SHA1: b"12345678901234567890",
    Algorithm.SHA256: b"12345678901234567890123456789012",
    Algorithm.SHA512: b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


def test_rfc4226_appendix_d() -> None:
    assert [hotp(RFC4226_KEY, counter) for counter in range(10)] == RFC4226_CODES
    assert hotp_codes(RFC4226_KEY, 0, 10) == RFC4226_CODES


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238_VECTORS)
def test_rfc6238_appendix_b(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in zip(Algorithm, (sha1, sha256, sha512), strict=True):
        assert totp(RFC6238_KEYS[algorithm], at, algorithm=algorithm, digits=8) == expected


algorithms = st.sampled_from(list(Algorithm))
keys = st.binary(min_size=1, max_size=200)
instants = st.integers(min_value=0, max_value=2**34)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None)
@given(
    key=st.binary(min_size=14, max_size=200),  # pyotp refuses secrets under 112 bits
    at=instants,
    algorithm=algorithms,
    digits=st.integers(6, 8),
    period=st.sampled_from([15, 30, 60, 90]),
)
def test_agrees_with_pyotp(
    key: bytes, at: int, algorithm: Algorithm, digits: int, period: int
) -> None:
    oracle = pyotp.TOTP(
        base64.b32encode(key).decode(), digits=digits, interval=period, digest=algorithm.value
    )
    assert totp(key, at, algorithm=algorithm, digits=digits, period=period) == oracle.at(at)


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(min_size=10, max_size=64),
    at=st.integers(min_value=100_000, max_value=2**32),
    algorithm=algorithms,
    digits=st.integers(6, 8),
    period=st.sampled_from([30, 60]),
)
def test_windows_agree_with_oathtool(
    key: bytes, at: int, algorithm: Algorithm, digits: int, period: int
) -> None:
    """oathtool prints a window of codes; one call checks 21 of ours."""
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = subprocess.run(
        ["oathtool", f"--totp={algorithm.value}", f"--digits={digits}",
         f"--time-step-size={period}s", f"--now={stamp}", "--window=20", "-"],
        input=key.hex(), capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert out == totp_codes(
        key, at, behind=0, ahead=20, algorithm=algorithm, digits=digits, period=period
    )


@given(digits=st.integers(6, 10), key=keys, counter=st.integers(0, 2**63 - 1))
def test_codes_are_zero_padded_digit_strings(digits: int, key: bytes, counter: int) -> None:
    code = hotp(key, counter, digits=digits)
    assert len(code) == digits
    assert code.isdigit()


def test_ten_digit_codes_keep_31_bits() -> None:
    # With 10 digits the modulus exceeds 2**31, so the code is the truncated value itself.
    assert hotp(RFC4226_KEY, 0, digits=10) == "1284755224"


def test_step_and_t0() -> None:
    assert step_at(59) == 1
    assert step_at(60, period=60) == 1
    assert step_at(100, period=30, t0=40) == 2
    assert totp(RFC4226_KEY, 59 + 40, digits=8, t0=40) == "94287082"


@pytest.mark.parametrize("offset", [-2, -1, 0, 1, 2])
def test_verify_returns_the_matched_offset(offset: int) -> None:
    at = 1_700_000_000
    code = totp(RFC4226_KEY, at + offset * 30)
    assert verify_totp(RFC4226_KEY, code, at) == offset


def moments(first: int = 1_700_000_000, count: int = 1000) -> list[float]:
    """``count`` moments on consecutive 30 s steps, each at another second of its step."""
    return [first + 30 * k + (k * 7) % 30 + 0.25 for k in range(count)]


def test_verify_rejects_outside_window_and_junk() -> None:
    for at in moments():
        step = step_at(at)
        # The code of step +3 recurs inside +-2 steps now and then: take the nearest that doesn't.
        code, offset = code_outside_window(RFC4226_KEY, step, 2, 2, side=1)
        assert verify_totp(RFC4226_KEY, code, at) is None
        assert verify_totp(RFC4226_KEY, code, at, ahead=offset) is not None
    at = 1_700_000_000
    assert verify_totp(RFC4226_KEY, totp(RFC4226_KEY, at + 90), at, ahead=3) == 3
    assert verify_totp(RFC4226_KEY, "12345", at) is None
    assert verify_totp(RFC4226_KEY, "abcdef", at) is None
    spaced = totp(RFC4226_KEY, at)
    assert verify_totp(RFC4226_KEY, f"{spaced[:3]} {spaced[3:]}", at) == 0


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=10, max_size=40), offset=st.integers(-2880, 2880))
def test_drift_search_finds_the_offset(key: bytes, offset: int) -> None:
    at = 1_800_000_000
    code = totp(key, at + offset * 30)
    following = totp(key, at + (offset + 1) * 30)
    found = measure_drift(key, code, at, next_code=following)
    assert found is not None
    assert found.step_offset == offset
    assert found.drift_seconds == offset * 30
    assert found.confirmed_by_next_code


@pytest.mark.slow
def test_drift_search_bounds_and_sign() -> None:
    for at in moments(1_800_000_000):
        step = step_at(at)
        behind = totp(RFC4226_KEY, at - 600)
        # +-40 steps keeps 1,000 moments quick; the default (one day) is the far check's bound.
        found = measure_drift(RFC4226_KEY, behind, at, max_steps=40)
        assert found is not None
        if behind not in window_codes(RFC4226_KEY, step, 19, 19):  # else a nearer match wins
            assert found.drift_seconds == -600
        assert not found.confirmed_by_next_code
        # Beyond the bound: step +120 or, when its code recurs within +-100 steps, the next one
        # that does not (a code past the edge is inside the window now and then, by chance).
        far, offset = code_outside_window(RFC4226_KEY, step, 100, 100, side=1, start=120)
        assert offset >= 120
        assert measure_drift(RFC4226_KEY, far, at, max_steps=100) is None
    at = 1_800_000_000
    far, offset = code_outside_window(RFC4226_KEY, step_at(at), 2880, 2880, side=1, start=3000)
    assert measure_drift(RFC4226_KEY, far, at, max_steps=2880) is None


def test_next_code_resolves_an_ambiguous_match() -> None:
    """Find a 6-digit code that recurs within a day, then disambiguate it with the next code."""
    at = 1_800_000_000
    key = b"ambiguity-search-key"
    codes = totp_codes(key, at, behind=2880, ahead=2881)
    seen: dict[str, int] = {}
    pair = None
    for index, code in enumerate(codes[:-1]):
        if code in seen:
            pair = (seen[code] - 2880, index - 2880)
        seen.setdefault(code, index)
    assert pair is not None, "a day of codes always holds a repeat for this key"
    far = max(pair, key=abs)
    code = codes[far + 2880]
    following = codes[far + 2881]
    found = measure_drift(key, code, at, next_code=following)
    assert found is not None
    assert found.step_offset == far


def test_profiles() -> None:
    assert acceptance_profile("entra") == acceptance_profile("ENTRA")
    assert (acceptance_profile("entra").behind, acceptance_profile("entra").ahead) == (2, 2)
    assert acceptance_profile("entra-activation").behind == 2880
    assert acceptance_profile("entra-activation", period=60).ahead == 2880  # two days
    assert acceptance_profile("legacy").ahead == 15
    assert acceptance_profile("custom", behind=1, ahead=4).ahead == 4
    with pytest.raises(InvalidInput, match="custom profile needs"):
        acceptance_profile("custom")
    with pytest.raises(InvalidInput, match="unknown acceptance profile"):
        acceptance_profile("lenient")


@pytest.mark.parametrize(("name", "steps"), [("entra", 2), ("legacy", 15)])
def test_longest_valid_code(name: str, steps: int) -> None:
    profile = acceptance_profile(name)
    for at in moments(1_800_000_000):
        step = step_at(at)
        best = longest_valid_code(RFC4226_KEY, at, profile=profile)
        assert best.step_offset == steps
        assert best.code == totp(RFC4226_KEY, at + steps * 30)
        # Accepted now (server step s: code step - ahead <= s) ...
        assert verify_totp(RFC4226_KEY, best.code, at, behind=steps, ahead=steps) is not None
        # ... until the end of step now + 2N, and not a second longer.
        until = (step + 2 * steps + 1) * 30
        assert best.accepted_until == datetime.fromtimestamp(until, UTC)
        assert verify_totp(RFC4226_KEY, best.code, until - 1, behind=steps, ahead=steps) is not None
        # Refused then, unless the same digits are by chance another code of that window.
        later = window_codes(RFC4226_KEY, step + 2 * steps + 1, steps, steps)
        refused = verify_totp(RFC4226_KEY, best.code, until, behind=steps, ahead=steps) is None
        assert refused is (best.code not in later)
        assert best.code not in repr(best)


def test_timed_codes_show_and_accept_times() -> None:
    at = 1_800_000_000
    items = timed_codes(RFC4226_KEY, at, past=1, future=1, profile=acceptance_profile("entra"))
    assert [item.step_offset for item in items] == [-1, 0, 1]
    current = items[1]
    assert current.shown_from == datetime.fromtimestamp(at, UTC)
    assert current.shown_until == datetime.fromtimestamp(at + 30, UTC)
    assert current.accepted_from == datetime.fromtimestamp(at - 60, UTC)
    assert current.accepted_until == datetime.fromtimestamp(at + 90, UTC)


def test_algorithm_parse() -> None:
    assert Algorithm.parse("SHA-256") is Algorithm.SHA256
    assert Algorithm.parse("HmacSHA512") is Algorithm.SHA512
    with pytest.raises(InvalidInput, match="use sha1, sha256 or sha512"):
        Algorithm.parse("md5")
