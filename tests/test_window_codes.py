"""The refused-code helper (tests/window_codes.py) over 1,000 moments, against RFC 6238 and pyotp.

It also pins why it exists: at fixed moments the old choice of a refused code ("the code one
step past the edge") occurs inside the +-2,880-step window, so the fake Graph accepted it and
``test_activation_window_edges`` failed about 0.6% of the time per case.
"""

from __future__ import annotations

import base64

import pyotp
import pytest

from tests.window_codes import (
    code_absent_from_window,
    code_outside_window,
    totp_code,
    window_codes,
)

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the fake Graph tests' seed
WINDOW = 2880  # Entra's activation window in steps: +-1 day at 30 s, +-2 days at 60 s
START = 1_796_428_800  # 2026-12-04 00:00:00 UTC
MOMENTS = 1000

# Moments (seconds) among START + k * interval, k < 1,000, at which the code of the step right
# past the window's edge also occurs inside the window (found once with this module; pyotp
# agrees, see test_the_old_choice_of_outside_code_was_inside_at_these_moments).
OLD_CHOICE_INSIDE = {
    (30, "sha1", -1): [
        1796430120, 1796430420, 1796432130, 1796433570, 1796440410, 1796441130, 1796447520,
        1796447820, 1796455530,
    ],
    (30, "sha1", 1): [1796431800, 1796434230, 1796434470, 1796443050, 1796444850],
    (60, "sha1", -1): [1796434740, 1796441580, 1796451780, 1796465220, 1796475120, 1796479380],
    (60, "sha1", 1): [1796464500, 1796467980, 1796479440, 1796480400, 1796482800, 1796486160],
    (30, "sha256", -1): [1796428980, 1796433750, 1796443350, 1796446380, 1796447880],
    (30, "sha256", 1): [1796430090, 1796436540, 1796448690, 1796449140, 1796455590, 1796456460],
}  # fmt: skip


def moments(interval: int) -> list[float]:
    """1,000 moments on consecutive steps, each at a different second inside its step."""
    return [START + k * interval + (k * 7) % interval + 0.5 for k in range(MOMENTS)]


@pytest.mark.parametrize(
    ("secret", "digest", "at", "code"),
    [
        (b"12345678901234567890", "sha1", 59, "94287082"),
        (b"12345678901234567890", "sha1", 1111111109, "07081804"),
        (b"12345678901234567890", "sha1", 20000000000, "65353130"),
        (b"12345678901234567890123456789012", "sha256", 59, "46119246"),
        (b"12345678901234567890123456789012", "sha256", 1234567890, "91819424"),
        (b"1234567890" * 6 + b"1234", "sha512", 2000000000, "38618901"),
    ],
)
def test_codes_match_rfc_6238(secret: bytes, digest: str, at: int, code: str) -> None:
    assert totp_code(secret, at // 30, digest=digest, digits=8) == code


def test_codes_match_pyotp_and_base32_seeds() -> None:
    totp = pyotp.TOTP(SECRET)
    raw = base64.b32decode(SECRET)
    for step in range(START // 30 - 50, START // 30 + 50):
        assert totp_code(SECRET, step) == totp.at(step * 30) == totp_code(raw, step)


@pytest.mark.parametrize(("interval", "digest", "side"), sorted(OLD_CHOICE_INSIDE))
def test_the_outside_code_is_absent_from_the_window_at_1000_moments(
    interval: int, digest: str, side: int
) -> None:
    old_inside: list[int] = []
    for moment in moments(interval):
        step = int(moment) // interval
        code, offset = code_outside_window(SECRET, step, WINDOW, WINDOW, side=side, digest=digest)
        inside = window_codes(SECRET, step, WINDOW, WINDOW, digest=digest)
        assert code not in inside
        assert offset * side > WINDOW
        assert code == totp_code(SECRET, step + offset, digest=digest)
        edge = totp_code(SECRET, step + side * (WINDOW + 1), digest=digest)
        if edge in inside:  # the old choice: accepted, and the test failed
            old_inside.append(step * interval)
            assert offset * side > WINDOW + 1
        else:
            assert offset == side * (WINDOW + 1)
    assert old_inside == OLD_CHOICE_INSIDE[(interval, digest, side)]


def test_the_old_choice_of_outside_code_was_inside_at_these_moments() -> None:
    """pyotp confirms each pinned moment: the edge code is also a code inside the window."""
    for (interval, digest, side), bad in OLD_CHOICE_INSIDE.items():
        totp = pyotp.TOTP(SECRET, interval=interval, digest=digest)
        for moment in bad[:2]:
            edge = totp.at(moment + side * (WINDOW + 1) * interval)
            assert any(totp.at(moment + d * interval) == edge for d in range(-WINDOW, WINDOW + 1))


def test_a_start_offset_inside_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="not past the window's edge"):
        code_outside_window(SECRET, START // 30, WINDOW, WINDOW, side=1, start=5)
    with pytest.raises(ValueError, match="not past the window's edge"):
        code_outside_window(SECRET, START // 30, WINDOW, WINDOW, side=1, start=-(WINDOW + 1))


def test_an_absent_code_is_absent_at_1000_moments() -> None:
    for moment in moments(30):
        step = int(moment) // 30
        code = code_absent_from_window(SECRET, step, WINDOW, WINDOW)
        assert len(code) == 6
        assert code not in window_codes(SECRET, step, WINDOW, WINDOW)
    # a narrow window (an operator's sign-in: +-1 step) too
    for moment in moments(30):
        step = int(moment) // 30
        assert code_absent_from_window(SECRET, step, 1, 1) not in {
            totp_code(SECRET, step + d) for d in (-1, 0, 1)
        }
