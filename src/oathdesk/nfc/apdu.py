"""Command APDUs for Token2 programmable tokens, and parsing their answers. Pure."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from oathdesk.nfc.sm4 import cbc_mac, ecb_encrypt, pad_always

READ_INFO = bytes.fromhex("80410000020211")
GET_CHALLENGE = bytes.fromhex("804B08000100")
MAX_SEED_BYTES = 63

STATUS_TEXT = {
    0x9000: "ok",
    0x6983: "the token refused authentication (locked)",
    0x6700: "wrong length",
    0x6A80: "the token rejected the data",
    0x6D00: "unknown instruction (not a Token2 programmable token?)",
    0x6E00: "unknown class (not a Token2 programmable token?)",
}
DISPLAY_TIMEOUTS = {15: 0, 30: 1, 60: 2, 120: 3}
HASHES = {"sha1": 1, "sha256": 2}
STEPS = {30: 0x1E, 60: 0x3C}


@dataclass(frozen=True)
class TokenInfo:
    serial: str
    clock: int  # the token's clock, UTC seconds


def authenticate(challenge: bytes) -> bytes:
    """80 CE 00 00 10 + SM4-ECB(key, challenge || 8 x 00)."""
    if len(challenge) != 8:
        raise ValueError("the challenge is 8 bytes")
    return bytes.fromhex("80CE000010") + ecb_encrypt(challenge + bytes(8))


def _with_mac(header: bytes, body: bytes) -> bytes:
    """CLA INS P1 P2 Lc body MAC; the MAC covers 80 INS P1 P2 Lc' || body (Lc' = body length)."""
    mac = cbc_mac(bytes([0x80, header[1], header[2], header[3], len(body)]) + body)
    return header + bytes([len(body) + 4]) + body + mac


def config_tlv(
    utc_seconds: int, *, hash_name: str = "sha1", period: int = 30, display_seconds: int = 30
) -> bytes:
    """81 11 | 1F 01 timeout | 0F 04 clock | 86 06 | 0A 01 hash | 0D 01 step."""
    return (
        bytes([0x81, 0x11, 0x1F, 0x01, DISPLAY_TIMEOUTS[display_seconds], 0x0F, 0x04])
        + struct.pack(">I", utc_seconds)
        + bytes([0x86, 0x06, 0x0A, 0x01, HASHES[hash_name], 0x0D, 0x01, STEPS[period]])
    )


def write_config(
    utc_seconds: int, *, hash_name: str = "sha1", period: int = 30, display_seconds: int = 30
) -> bytes:
    body = config_tlv(
        utc_seconds, hash_name=hash_name, period=period, display_seconds=display_seconds
    )
    return _with_mac(bytes.fromhex("84D40000"), body)


def write_seed(seed: bytes) -> bytes:
    if not 1 <= len(seed) <= MAX_SEED_BYTES:
        raise ValueError(f"these tokens take seeds of 1 to {MAX_SEED_BYTES} bytes")
    return _with_mac(bytes.fromhex("84C50100"), ecb_encrypt(pad_always(seed)))


def split_status(response: bytes) -> tuple[bytes, int]:
    if len(response) < 2:
        raise ValueError("an answer has at least the two status bytes")
    return response[:-2], int.from_bytes(response[-2:])


def parse_info(data: bytes) -> TokenInfo:
    """3-byte header, serial length, ASCII serial, 2-byte separator, clock (u32 BE)."""
    if len(data) < 4:
        raise ValueError("the info answer is too short")
    length = data[3]
    serial = data[4 : 4 + length].decode("ascii")
    clock_at = 4 + length + 2
    if len(data) < clock_at + 4:
        raise ValueError("the info answer is too short for the clock")
    (clock,) = struct.unpack(">I", data[clock_at : clock_at + 4])
    return TokenInfo(serial, clock)
