"""Envelope encryption: secrets bound to their record, keys that never show, master key sources."""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.vault.audit import AuditChain
from oathdesk.vault.config import VaultLocation, load_master_key, locate
from oathdesk.vault.ids import new_ids
from oathdesk.vault.keys import DataKey, MasterKey, MasterKeyError, read_key_file, write_key_file
from oathdesk.vault.schema import token_secrets, tokens, wrapped_keys
from oathdesk.vault.vault import Vault
from tests.vault.conftest import UPN, programmable, read_secret, secret_for
from tests.vault_fixtures import ADMIN


def test_a_ciphertext_copied_into_another_row_does_not_decrypt(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("x1"), programmable("x2")])
    with vault.transaction() as conn:
        ids = {row.serial: row.id for row in conn.execute(sa.select(tokens.c.serial, tokens.c.id))}
        stolen = conn.execute(
            sa.select(token_secrets.c.nonce, token_secrets.c.ciphertext).where(
                token_secrets.c.token_id == ids["x1"]
            )
        ).one()
        conn.execute(
            token_secrets.update()
            .where(token_secrets.c.token_id == ids["x2"])
            .values(nonce=stolen.nonce, ciphertext=stolen.ciphertext)
        )
    with pytest.raises(MasterKeyError, match="does not belong to it"):
        read_secret(vault, "x2")
    assert read_secret(vault, "x1") == secret_for("x1")


def test_a_renamed_serial_does_not_decrypt(vault: Vault) -> None:
    vault.add_token(ADMIN, programmable("orig", upn=None))
    with vault.transaction() as conn:
        conn.execute(tokens.update().where(tokens.c.serial == "orig").values(serial="fake"))
    with pytest.raises(MasterKeyError, match="token fake does not belong"):
        read_secret(vault, "fake")


def test_a_wrapped_key_moved_to_another_slot_does_not_unwrap(
    vault: Vault, location: VaultLocation, master_key: MasterKey
) -> None:
    with vault.transaction() as conn:
        keys = {r.purpose: r for r in conn.execute(sa.select(wrapped_keys))}
        conn.execute(
            wrapped_keys.update()
            .where(wrapped_keys.c.id == keys["data"].id)
            .values(nonce=keys["audit"].nonce, wrapped=keys["audit"].wrapped)
        )
    with pytest.raises(MasterKeyError, match="does not open this vault"):
        Vault.open(location, master_key)


def test_wrong_master_key_is_refused(vault: Vault, location: VaultLocation) -> None:
    with pytest.raises(MasterKeyError, match="does not open this vault"):
        Vault.open(location, MasterKey.generate())


def test_secrets_and_keys_never_show_in_reprs(vault: Vault, master_key: MasterKey) -> None:
    secret = secret_for("repr")
    item = programmable("r", upn=None, secret=secret)
    data_key = DataKey("k", os.urandom(32))
    shown = " ".join(
        repr(x) for x in (item, master_key, data_key, AuditChain(os.urandom(32)), vault)
    )
    assert secret.hex() not in shown
    assert repr(secret) not in shown
    assert master_key.to_text() not in shown
    assert "secret=" not in repr(item)


def test_bulk_encryption_matches_single_decryption() -> None:
    key = DataKey("k", os.urandom(32))
    records = [(token_id, f"S{n}", secret_for(str(n))) for n, token_id in enumerate(new_ids(50))]
    sealed = key.encrypt_many(records)
    assert len({nonce for nonce, _ in sealed}) == 50
    for (token_id, serial, secret), (nonce, ciphertext) in zip(records, sealed, strict=True):
        assert key.decrypt(nonce, ciphertext, token_id=token_id, serial=serial) == secret


@settings(max_examples=50, deadline=None)
@given(secrets=st.lists(st.binary(min_size=1, max_size=64), max_size=20))
def test_bulk_fingerprints_are_the_single_ones(secrets: list[bytes]) -> None:
    # Two code paths (the bulk one sets the HMAC key up once and copies it): one answer,
    # 16 bytes, different under another data key.
    key, other = DataKey("k", bytes(range(32))), DataKey("k", bytes(32))
    found = key.fingerprints(secrets)
    assert found == [key.fingerprint(secret) for secret in secrets]
    assert all(len(fingerprint) == 16 for fingerprint in found)
    assert not set(found) & set(other.fingerprints(secrets))


def test_decrypting_many_gives_each_tokens_secret_and_names_a_tampered_one() -> None:
    key = DataKey("k", os.urandom(32))
    ids, serials = [str(uuid.uuid4()) for _ in range(5)], [f"S{i}" for i in range(5)]
    secrets = [os.urandom(20) for _ in range(5)]
    sealed = key.encrypt_many(list(zip(ids, serials, secrets, strict=True)))
    nonces, ciphertexts = [n for n, _ in sealed], [c for _, c in sealed]
    assert key.decrypt_many(ids, serials, nonces, ciphertexts) == secrets
    assert key.decrypt_many([], [], [], []) == []
    # The third token's ciphertext copied onto the fourth: bound to its record, it fails there.
    copied = [*ciphertexts[:3], ciphertexts[2], ciphertexts[4]]
    with pytest.raises(MasterKeyError, match="stored secret of token S3 does not belong to it"):
        key.decrypt_many(ids, serials, nonces, copied)
    with pytest.raises(ValueError, match="one length"):
        key.decrypt_many(ids, serials, nonces, ciphertexts[:4])


def test_ids_are_ordered_uuid7() -> None:
    first, second = new_ids(1000), new_ids(1000)
    for text in (first[0], first[-1], second[500]):
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)
    assert first == sorted(first)
    assert len(set(first) | set(second)) == 2000
    stamped = new_ids(1, unix_ms=0x0190E4C12B3A)[0]
    assert stamped.startswith("0190e4c1-2b3a-7")


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "vault.key"
    key = MasterKey.generate()
    write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path).key_id == key.key_id
    with pytest.raises(MasterKeyError, match="refusing to overwrite a master key"):
        write_key_file(path, MasterKey.generate())
    os.chmod(path, 0o640)
    with pytest.raises(MasterKeyError, match=re.escape(f"run `chmod 600 {path}`")):
        read_key_file(path)
    with pytest.raises(MasterKeyError, match=r"no key file at .*; run `oathdesk init`"):
        read_key_file(tmp_path / "missing.key")


def test_master_key_from_the_environment(tmp_path: Path) -> None:
    key = MasterKey.generate()
    where = locate(str(tmp_path / "v.sqlite3"), env={})
    assert where.key_file == tmp_path / "v.key"
    from_env = load_master_key(where, env={"OATHDESK_MASTER_KEY": key.to_text()})
    assert from_env.key_id == key.key_id
    with pytest.raises(MasterKeyError, match="OATHDESK_MASTER_KEY is not a base64 master key"):
        load_master_key(where, env={"OATHDESK_MASTER_KEY": "not base64!"})
    with pytest.raises(MasterKeyError, match="must be 32 bytes; this one is 3"):
        load_master_key(where, env={"OATHDESK_MASTER_KEY": "YWJj"})


def test_locating_the_vault(tmp_path: Path) -> None:
    default = locate(None, env={"XDG_DATA_HOME": str(tmp_path)})
    assert default.sqlite_path == tmp_path / "oathdesk" / "vault.sqlite3"
    assert default.key_file == tmp_path / "oathdesk" / "vault.key"
    url = "postgresql+psycopg://oathdesk:hunter2@db.example/oathdesk"
    shared = locate(None, env={"OATHDESK_DATABASE_URL": url, "XDG_DATA_HOME": str(tmp_path)})
    assert (shared.database_url, shared.sqlite_path) == (url, None)
    assert "hunter2" not in shared.display
    explicit = locate(str(tmp_path / "x.sqlite3"), env={"OATHDESK_DATABASE_URL": url})
    assert explicit.sqlite_path == tmp_path / "x.sqlite3"
    keyed = locate(None, env={"OATHDESK_VAULT": str(tmp_path / "y.db"), "OATHDESK_KEY_FILE": "k"})
    assert (keyed.sqlite_path, keyed.key_file) == (tmp_path / "y.db", Path("k"))
