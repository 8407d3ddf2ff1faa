"""The protocol above the APDUs, without PC/SC: T=0 chaining, identification, errors, codes.

The simulated token answers directly here (the end-to-end tests put it behind pcscd).
"""

from __future__ import annotations

import base64
import time

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oathdesk.nfc import apdu
from oathdesk.nfc.errors import (
    NotProgrammable,
    TokenLocked,
    TokenRefused,
    TokenRemoved,
    WrongDevice,
)
from oathdesk.nfc.sm4 import pad_always, unpad
from oathdesk.nfc.token import TokenSession
from oathdesk.nfc.transport import exchange
from oathdesk.services.burn import code_matches
from tests.nfc.simulated_token import SimulatedToken

SEED = bytes(range(1, 21))
B32 = base64.b32encode(SEED).decode()


class DirectLink:
    """The simulated token without a reader; counts the raw exchanges."""

    def __init__(self, token: SimulatedToken) -> None:
        self.token = token
        self.raw_exchanges = 0

    def raw(self, command: bytes) -> tuple[bytes, int]:
        self.raw_exchanges += 1
        response = self.token.answer(command)
        if response is None:
            raise TokenRemoved("gone")
        return apdu.split_status(response)

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        return exchange(self.raw, command)


def _program(token: SimulatedToken, seed: bytes = SEED) -> TokenSession:
    session = TokenSession(DirectLink(token))
    session.identify()
    session.authenticate()
    session.write_config(int(time.time()), hash_name="sha1", period=30)
    session.write_seed(seed)
    return session


@given(st.binary(min_size=0, max_size=80))
def test_unpad_undoes_pad(data: bytes) -> None:
    assert unpad(pad_always(data)) == data


def test_unpad_refuses_unpadded_data() -> None:
    with pytest.raises(ValueError, match="method 2"):
        unpad(bytes(16))
    with pytest.raises(ValueError, match="method 2"):
        unpad(b"abc\x01")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("80CA0000", "80CA000008"),  # case 1: Le added
        ("80CA000000", "80CA000008"),  # case 2: Le replaced
        ("804B08000100", "804B0800010008"),  # case 3: Le added after the data
        ("00A4040002AAAA00", "00A4040002AAAA08"),  # case 4: Le replaced
    ],
)
def test_with_le(command: str, expected: str) -> None:
    assert apdu.with_le(bytes.fromhex(command), 8).hex().upper() == expected


def test_with_le_refuses_malformed_commands() -> None:
    with pytest.raises(ValueError, match="4 header bytes"):
        apdu.with_le(b"\x80\xca", 8)
    with pytest.raises(ValueError, match="Lc byte"):
        apdu.with_le(bytes.fromhex("80CA000005AABB"), 8)


def test_select_get_response_and_status_text() -> None:
    assert apdu.select_aid(apdu.FIDO_AID).hex().upper() == "00A4040008A0000006472F000100"
    assert apdu.select_aid(apdu.YKOATH_AID).hex().upper() == "00A4040007A000000527210100"
    assert apdu.get_response(0x17).hex() == "00c0000017"
    assert apdu.describe_status(0x6983) == "6983 (the token refused authentication (locked))"
    assert apdu.describe_status(0x6F00) == "6F00"


@pytest.mark.parametrize("t0", [False, True])
def test_programming_gives_the_token_the_seed_and_clock(t0: bool) -> None:
    token = SimulatedToken(serial="8659610000042", clock_offset=-500, t0=t0)
    session = _program(token)
    assert token.seed == SEED
    assert abs(session.clock() - time.time()) <= 2
    # The clock is written in whole seconds, so the token runs 0 or 1 s behind (1 when a second
    # began between the write and the token's reading of it): comparing its code with pyotp's
    # at the same instant failed in the first second of a step. Compare at the token's own
    # second, at 1,000 moments.
    assert token.clock_offset in (0, -1)
    totp = pyotp.TOTP(B32)
    first = time.time()
    for k in range(1000):
        at = first + 30 * k + (k * 7) % 30 + 0.5
        assert token.code(at) == totp.at(int(at) + token.clock_offset)


def test_t0_chaining_needs_the_extra_exchanges() -> None:
    link = DirectLink(SimulatedToken(t0=True))
    data, status = link.transmit(apdu.GET_CHALLENGE)
    assert (len(data), status) == (8, 0x9000)
    assert link.raw_exchanges == 3  # 6C08, then 6108, then GET RESPONSE
    data, status = link.transmit(apdu.READ_INFO)
    assert status == 0x9000
    assert apdu.parse_info(data).serial == "8659600000001"


def test_t0_long_answers_come_in_chunks() -> None:
    answers = iter([(b"", 0x6104), (b"abcd", 0x6102), (b"ef", 0x9000)])
    sent: list[bytes] = []

    def raw(command: bytes) -> tuple[bytes, int]:
        sent.append(command)
        return next(answers)

    assert exchange(raw, b"\x80\x41\x00\x00") == (b"abcdef", 0x9000)
    assert sent[1:] == [apdu.get_response(4), apdu.get_response(2)]


def test_identify_reads_serial_model_and_clock() -> None:
    info = TokenSession(DirectLink(SimulatedToken(clock_offset=90))).identify()
    assert info.serial == "8659600000001"
    assert info.model.name == "miniOTP-2-i"
    assert abs(info.clock - (time.time() + 90)) <= 2


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("fido", "FIDO security key"),
        ("yubikey", "YubiKey"),
        ("other", "does not answer like a Token2"),
    ],
)
def test_wrong_devices_are_named(device: str, message: str) -> None:
    token = SimulatedToken(device=device)
    with pytest.raises(WrongDevice, match=message):
        TokenSession(DirectLink(token)).identify()
    assert not any(c[1] in (0xD4, 0xC5) for c in token.commands)


def test_classic_tokens_are_refused() -> None:
    with pytest.raises(NotProgrammable, match="60234567 is not a programmable model"):
        TokenSession(DirectLink(SimulatedToken(serial="60234567"))).identify()


def test_locked_token() -> None:
    session = TokenSession(DirectLink(SimulatedToken(locked=True)))
    session.identify()
    with pytest.raises(TokenLocked, match="6983: locked"):
        session.authenticate()


def test_writes_without_authentication_are_refused() -> None:
    session = TokenSession(DirectLink(SimulatedToken()))
    with pytest.raises(TokenRefused, match="6982 to the configuration write"):
        session.write_config(int(time.time()), hash_name="sha1", period=30)


class _Answers:
    def __init__(self, status: int) -> None:
        self.status = status

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        if command == apdu.READ_INFO:
            return SimulatedToken().answer(command)[:-2], 0x9000  # type: ignore[index]
        return bytes(8), self.status


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (0x6700, "6700 \\(wrong length\\) to the challenge request"),
        (0x6A80, "6A80 \\(the token rejected the data\\)"),
        (0x6F42, "answered 6F42 to the challenge request"),
        (0x6110, "kept answering 6110"),
    ],
)
def test_status_words_become_one_line_errors(status: int, message: str) -> None:
    with pytest.raises(TokenRefused, match=message) as caught:
        TokenSession(_Answers(status)).authenticate()
    assert "\n" not in caught.value.message


def test_restricted_sync_models_lose_their_seed_on_a_config_write() -> None:
    c301 = SimulatedToken(serial="8659610000001")
    _program(c301)
    session = TokenSession(DirectLink(c301))
    session.authenticate()
    session.write_config(int(time.time()), hash_name="sha1", period=30)
    assert c301.seed is None
    mini = SimulatedToken(serial="8659600000002")
    _program(mini)
    session = TokenSession(DirectLink(mini))
    session.authenticate()
    session.write_config(int(time.time()), hash_name="sha256", period=60)
    assert mini.seed == SEED
    assert (mini.hash_name, mini.period) == ("sha256", 60)


def test_removed_mid_write() -> None:
    token = SimulatedToken(remove_during_seed_write=True)
    with pytest.raises(TokenRemoved):
        _program(token)
    assert token.seed is None


def test_code_matches_within_one_step_only() -> None:
    at = 1_800_000_015.0
    for offset in (-1, 0, 1):
        code = pyotp.TOTP(B32).at(at + 30 * offset)
        assert code_matches(SEED, f" {code[:3]} {code[3:]}\n", at, hash_name="sha1", period=30)
    far = pyotp.TOTP(B32).at(at + 60)
    assert not code_matches(SEED, far, at, hash_name="sha1", period=30)
    assert not code_matches(SEED, "", at, hash_name="sha1", period=30)


@given(st.binary(min_size=0, max_size=1000), st.integers(1, 256), st.booleans())
def test_t0_chaining_reassembles_any_answer(data: bytes, most: int, wrong_le: bool) -> None:
    """A T=0 card may ask for a resend with Le (6Cxx), then hand out its answer in chunks
    announced with 61xx (xx = what is left, 00 for 256 or more; it may give fewer bytes than
    asked, ``most``); the caller sees the whole answer and the final status."""
    command = bytes.fromhex("80CA000005")
    pending = bytearray(data)
    wrong_le = wrong_le and min(len(data), 256) % 256 != 5  # 6Cxx means "not the Le you sent"

    def announce() -> int:
        return 0x6100 | (min(len(pending), 256) & 0xFF) if pending else 0x9000

    def raw(sent: bytes) -> tuple[bytes, int]:
        if sent[:2] == b"\x00\xc0":
            wanted = min(sent[4] or 256, most, len(pending))
            chunk = bytes(pending[:wanted])
            del pending[:wanted]
            return chunk, announce()
        if wrong_le and sent == command:
            return b"", 0x6C00 | (min(len(data), 256) & 0xFF)
        return b"", announce()

    got, status = exchange(raw, command)
    if len(data) <= 16 * most:  # the transport gives up after 16 chunks (no real answer needs more)
        assert (got, status) == (data, 0x9000)
    else:
        assert status >> 8 == 0x61


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=40), st.integers(0, 255))
def test_with_le_keeps_the_command_and_sets_le(header: bytes, data: bytes, le: int) -> None:
    case3 = header + bytes([len(data)]) + data if data else header
    out = apdu.with_le(case3, le)
    assert out[:-1] == case3
    assert out[-1] == le
    assert apdu.with_le(out, (le + 1) % 256) == case3 + bytes([(le + 1) % 256])
