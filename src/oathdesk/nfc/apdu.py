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


# Applets of devices that people put on the reader by mistake: answering the SELECT of one of
# these identifies a FIDO security key or a YubiKey (OATH applet) instead of a Token2 token.
FIDO_AID = bytes.fromhex("A0000006472F0001")
YKOATH_AID = bytes.fromhex("A0000005272101")


def select_aid(aid: bytes) -> bytes:
    """00 A4 04 00 Lc AID 00 (SELECT by name, first or only occurrence, Le = 256)."""
    return bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00"


def get_response(length: int) -> bytes:
    """00 C0 00 00 Le: fetch what a T=0 card announced with 61xx (00 stands for 256)."""
    return bytes([0x00, 0xC0, 0x00, 0x00, length & 0xFF])


def with_le(command: bytes, le: int) -> bytes:
    """``command`` with its Le set to ``le`` (the resend a T=0 card asks for with 6Cxx).

    Case 1 (header only) and case 3 (header, Lc, data) gain an Le byte; case 2 (header, Le)
    and case 4 (header, Lc, data, Le) have theirs replaced.
    """
    if len(command) < 4:
        raise ValueError("a command APDU has at least the 4 header bytes")
    if len(command) == 4:
        return command + bytes([le & 0xFF])
    if len(command) == 5:
        return command[:4] + bytes([le & 0xFF])
    data_end = 5 + command[4]
    if len(command) == data_end:
        return command + bytes([le & 0xFF])
    if len(command) == data_end + 1:
        return command[:data_end] + bytes([le & 0xFF])
    raise ValueError("the command's length does not match its Lc byte")


def describe_status(status: int) -> str:
    """``'6983 (the token refused authentication (locked))'``, or the bare hex if unknown."""
    text = STATUS_TEXT.get(status)
    return f"{status:04X} ({text})" if text else f"{status:04X}"
