"""The Token2 programming protocol, byte by byte (the pure part; PC/SC comes later)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oathdesk.nfc.apdu import (
    GET_CHALLENGE,
    READ_INFO,
    authenticate,
    config_tlv,
    parse_info,
    split_status,
    write_config,
    write_seed,
)
from oathdesk.nfc.models import model_for_serial
from oathdesk.nfc.sm4 import DEVICE_KEY, cbc_mac, ecb_decrypt, ecb_encrypt, pad_always


def test_sm4_known_answer() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert ecb_encrypt(key, key).hex() == "681edf34d206965e86b3e94f536e4246"


@pytest.mark.parametrize(
    ("size", "padded"), [(15, 16), (16, 32), (31, 32), (32, 48), (48, 64), (63, 64)]
)
def test_seed_padding_always_adds(size: int, padded: int) -> None:
    data = bytes(range(1, size + 1))
    out = pad_always(data)
    assert len(out) == padded
    assert out[:size] == data
    assert out[size] == 0x80
    assert set(out[size + 1 :]) <= {0}


def _reference_mac(data: bytes) -> bytes:
    """CBC-MAC spelled out block by block with ECB, as an independent check."""
    if len(data) % 16:
        data = pad_always(data)
    state = bytes(16)
    for start in range(0, len(data), 16):
        block = bytes(a ^ b for a, b in zip(state, data[start : start + 16], strict=True))
        state = ecb_encrypt(block, DEVICE_KEY)
    return state[:4]


@given(st.binary(min_size=1, max_size=80))
def test_mac_matches_the_reference(data: bytes) -> None:
    assert cbc_mac(data) == _reference_mac(data)


def test_authenticate_and_fixed_commands() -> None:
    challenge = bytes(range(8))
    command = authenticate(challenge)
    assert command[:5] == bytes.fromhex("80CE000010")
    assert ecb_decrypt(command[5:]) == challenge + bytes(8)
    assert READ_INFO.hex() == "80410000020211"
    assert GET_CHALLENGE.hex() == "804b08000100"


def test_config_write_layout() -> None:
    tlv = config_tlv(0x6543210F, hash_name="sha256", period=60, display_seconds=120)
    assert tlv.hex() == "81111f01030f046543210f86060a01020d013c"
    command = write_config(0x6543210F, hash_name="sha256", period=60, display_seconds=120)
    assert command[:4] == bytes.fromhex("84D40000")
    assert command[4] == 23  # the TLV's 19 bytes and the MAC's 4
    assert command[5:24] == tlv
    assert command[24:] == _reference_mac(bytes([0x80, 0xD4, 0, 0, 19]) + tlv)


@pytest.mark.parametrize("size", [15, 16, 20, 31, 32, 48, 63])
def test_seed_write(size: int) -> None:
    seed = bytes(range(100, 100 + size))
    command = write_seed(seed)
    body_length = command[4] - 4
    body = command[5 : 5 + body_length]
    assert command[:4] == bytes.fromhex("84C50100")
    assert body_length == len(pad_always(seed))
    assert ecb_decrypt(body) == pad_always(seed)
    assert command[5 + body_length :] == _reference_mac(
        bytes([0x80, 0xC5, 1, 0, body_length]) + body
    )
    with pytest.raises(ValueError, match="1 to 63"):
        write_seed(bytes(64))


def test_parse_info_and_status() -> None:
    serial = b"8659600123456"
    answer = (
        b"\x01\x02\x03"
        + bytes([len(serial)])
        + serial
        + b"\x00\x00"
        + struct.pack(">I", 1_800_000_000)
    )
    data, status = split_status(answer + b"\x90\x00")
    assert status == 0x9000
    info = parse_info(data)
    assert (info.serial, info.clock) == ("8659600123456", 1_800_000_000)
    with pytest.raises(ValueError, match="too short"):
        parse_info(answer[:10])


def test_models() -> None:
    mini = model_for_serial("8659600123456")
    assert mini is not None
    assert (mini.name, mini.seed_survives_clock_sync) == ("miniOTP-2-i", True)
    c301 = model_for_serial("8659610000001")
    assert c301 is not None
    assert not c301.seed_survives_clock_sync
    assert model_for_serial("60234567") is None  # a classic C202: never write
