"""SM4 as the Token2 protocol uses it: ECB for the challenge and the seed, CBC-MAC for commands.

The device key is fixed and public (it is part of the protocol, not a secret).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
DEVICE_KEY = bytes.fromhex("8AD206883CA369482AB27182B6E83224")


def pad_always(data: bytes) -> bytes:
    """ISO/IEC 9797-1 method 2, always: 80 then 00s to the next block (a full block if aligned)."""
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % BLOCK)


def pad_if_needed(data: bytes) -> bytes:
    """Method 2 padding only when ``data`` is not already block-aligned (the MAC's rule)."""
    return data if len(data) % BLOCK == 0 and data else pad_always(data)


def ecb_encrypt(data: bytes, key: bytes = DEVICE_KEY) -> bytes:
    if len(data) % BLOCK:
        raise ValueError("SM4-ECB needs whole 16-byte blocks")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 (protocol)
    return encryptor.update(data) + encryptor.finalize()


def ecb_decrypt(data: bytes, key: bytes = DEVICE_KEY) -> bytes:
    decryptor = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()  # noqa: S305 (protocol)
    return decryptor.update(data) + decryptor.finalize()


def cbc_mac(data: bytes, key: bytes = DEVICE_KEY) -> bytes:
    """The first 4 bytes of the last block of SM4-CBC (zero IV) over the padded data."""
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(bytes(BLOCK))).encryptor()
    ciphertext = encryptor.update(pad_if_needed(data)) + encryptor.finalize()
    return ciphertext[-BLOCK:][:4]


def unpad(padded: bytes) -> bytes:
    """Undo ``pad_always``: drop the trailing 00s and the 80 before them."""
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise ValueError("the data is not padded with ISO/IEC 9797-1 method 2")
    return stripped[:-1]
