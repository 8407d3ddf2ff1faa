"""Master key sources and envelope encryption (AES-256-GCM, from ``cryptography``).

The master key never encrypts a secret directly: it wraps random data keys (and the audit key),
which are stored wrapped in the vault. Rotating the master key re-wraps those few keys only.
Every ciphertext carries associated data naming what it belongs to, so a ciphertext copied into
another row (another token, another key slot) fails to decrypt instead of yielding a wrong seed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence
from pathlib import Path

# cryptography is imported where a key is used, not here: commands that read no secret (such
# as `oathdesk token list`) check the master key by its public id and never load it (issue 15).
from oathdesk.errors import OathdeskError
from oathdesk.platform_io import exposure, open_private

KEY_BYTES = 32
NONCE_BYTES = 12
MASTER_KEY_ENV = "OATHDESK_MASTER_KEY"


class MasterKeyError(OathdeskError):
    """The master key is missing, unsafe or wrong."""

    code = "key_error"
    exit_code = 5


class MasterKey:
    """A 32-byte master key. It is never printed: repr shows only its public identifier."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes; this one is {len(key)}")
        self._key = key
        # A public fingerprint to tell which master key wrapped what; reveals nothing of the key.
        self.key_id = hmac.new(key, b"oathdesk master key id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str, *, source: str) -> MasterKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError(
                f"{source} is not a base64 master key; check it was copied whole"
            ) from None
        return cls(raw)

    def to_text(self) -> str:
        return base64.b64encode(self._key).decode("ascii")

    def wrap(self, key: bytes, *, slot: str) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        return nonce, AESGCM(self._key).encrypt(nonce, key, _slot_aad(slot))

    def unwrap(self, nonce: bytes, wrapped: bytes, *, slot: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self._key).decrypt(nonce, wrapped, _slot_aad(slot))
        except InvalidTag:
            raise MasterKeyError(
                "the master key does not open this vault; use the key file or passphrase it was "
                "created with"
            ) from None

    def derive(self, purpose: bytes) -> bytes:
        """A separate key for ``purpose`` (e.g. backups), by HKDF-SHA256."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
            self._key
        )


def _slot_aad(slot: str) -> bytes:
    return f"oathdesk wrapped key|{slot}".encode()


def secret_aad(token_id: str, serial: str) -> bytes:
    return f"oathdesk token secret|{token_id}|{serial}".encode()


FINGERPRINT_BYTES = 16


class DataKey:
    """An unwrapped data key; encrypts and decrypts token secrets bound to their record, and
    fingerprints them (to find one secret on two tokens without decrypting the vault)."""

    __slots__ = ("_aead", "_fingerprint_key", "_invalid_tag", "key_id")

    def __init__(self, key_id: str, key: bytes) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        self.key_id = key_id
        self._aead = AESGCM(key)
        self._invalid_tag = InvalidTag  # kept: decrypt runs once per token of an export
        # A key of its own (HKDF), so a fingerprint says nothing about the encryption key, and
        # without the master key a fingerprint cannot be tested against guessed seeds.
        self._fingerprint_key = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=b"oathdesk secret fingerprint",
        ).derive(key)

    def fingerprint(self, secret: bytes) -> bytes:
        """HMAC-SHA256 of ``secret`` under the fingerprint key, first 16 bytes."""
        return hmac.digest(self._fingerprint_key, secret, "sha256")[:FINGERPRINT_BYTES]

    def fingerprints(self, secrets: Sequence[bytes]) -> list[bytes]:
        """``fingerprint`` of each secret. A keyed HMAC is set up once and copied per secret:
        for 100,000 secrets 0.11 s with cryptography's HMAC, 0.16-0.19 s with the stdlib's
        (whose copy() builds a Python wrapper each time), 0.23 s with hmac.digest() each."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.hmac import HMAC

        keyed = HMAC(self._fingerprint_key, hashes.SHA256())
        found = []
        for secret in secrets:
            mac = keyed.copy()
            mac.update(secret)
            found.append(mac.finalize()[:FINGERPRINT_BYTES])
        return found

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r})"

    def encrypt(self, secret: bytes, *, token_id: str, serial: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, secret, secret_aad(token_id, serial))

    def encrypt_many(self, records: Sequence[tuple[str, str, bytes]]) -> list[tuple[bytes, bytes]]:
        """Encrypt (token id, serial, secret) triples: one random draw for all the nonces."""
        pool = os.urandom(NONCE_BYTES * len(records))
        encrypt = self._aead.encrypt
        sealed = []
        offset = 0
        for token_id, serial, secret in records:
            nonce = pool[offset : offset + NONCE_BYTES]
            offset += NONCE_BYTES
            # The same associated data as secret_aad(), inlined: this runs once per token.
            aad = f"oathdesk token secret|{token_id}|{serial}".encode()
            sealed.append((nonce, encrypt(nonce, secret, aad)))
        return sealed

    def decrypt(self, nonce: bytes, ciphertext: bytes, *, token_id: str, serial: str) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, secret_aad(token_id, serial))
        except self._invalid_tag:
            raise MasterKeyError(
                f"the stored secret of token {serial} does not belong to it (tampered or copied "
                "from another record); re-enrol the token"
            ) from None

    def decrypt_many(
        self,
        token_ids: Sequence[str],
        serials: Sequence[str],
        nonces: Sequence[bytes],
        ciphertexts: Sequence[bytes],
    ) -> list[bytes]:
        """``decrypt`` of many tokens given by columns (an export's chunk), in their order: the
        cipher is mapped over them, with no Python call of ours per token."""
        # The same associated data as secret_aad(), inlined: this runs once per token.
        aads = [
            f"oathdesk token secret|{token_id}|{serial}".encode()
            for token_id, serial in zip(token_ids, serials, strict=True)
        ]
        if not len(nonces) == len(ciphertexts) == len(aads):
            raise ValueError("decrypt_many takes columns of one length")
        try:
            return list(map(self._aead.decrypt, nonces, ciphertexts, aads))
        except self._invalid_tag:
            # Rare: find the token to name, one by one (decrypt raises the error that names it).
            for token_id, serial, nonce, ciphertext in zip(
                token_ids, serials, nonces, ciphertexts, strict=True
            ):
                self.decrypt(nonce, ciphertext, token_id=token_id, serial=serial)
            raise


def write_key_file(path: Path, key: MasterKey) -> None:
    """Create ``path`` readable by its owner only (``platform_io.open_private``) holding
    ``key``; never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = open_private(path, exclusive=True)
    except FileExistsError:
        raise MasterKeyError(f"{path} already exists; refusing to overwrite a master key") from None
    with handle:
        handle.write((key.to_text() + "\n").encode())


def read_key_file(path: Path) -> MasterKey:
    try:
        problem = exposure(path)
    except FileNotFoundError:
        raise MasterKeyError(
            f"no key file at {path}; run `oathdesk init` or set OATHDESK_KEY_FILE"
        ) from None
    if problem:
        raise MasterKeyError(f"{path} is {problem}")
    return MasterKey.from_text(path.read_text(), source=str(path))
