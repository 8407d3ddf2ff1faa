"""The vault through the real console script: a helpdesk's day, backups, rotation, at-rest scan."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from oathdesk.seed import encode_base32
from oathdesk.vault.config import VaultLocation
from tests.conftest import RunCli, assert_one_line_error
from tests.vault_fixtures import cli_env

SECRET = bytes.fromhex("3132333435363738393031323334353637383930aabbccdd")
UPN = "helga@contoso.com"


@pytest.fixture
def env(location: VaultLocation, cli: RunCli) -> dict[str, str]:
    environment = cli_env(location)
    result = cli("init", env=environment)
    assert result.returncode == 0, result.stderr
    return environment


def secret_forms() -> list[bytes]:
    b32 = encode_base32(SECRET)
    return [
        SECRET,
        SECRET.hex().encode(),
        SECRET.hex().upper().encode(),
        b32.encode(),
        b32.lower().encode(),
        base64.b64encode(SECRET),
    ]


def files_to_scan(location: VaultLocation, extra: list[Path]) -> list[Path]:
    found = list(extra)
    if location.sqlite_path is not None:
        found += sorted(location.sqlite_path.parent.glob(location.sqlite_path.name + "*"))
    return [path for path in found if path.exists()]


def test_lifecycle_leaves_no_secret_at_rest(
    location: VaultLocation, env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    log = tmp_path / "session.log"
    transcript: list[str] = []

    def run(*args: str, input: str | None = None) -> str:
        result = cli(*args, input=input, env=env)
        transcript.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr
        return result.stdout

    run("user", "add", UPN, "--name", "Helga", "--phone", "+41790000000")
    run(
        "token", "add", "--serial", "86596120001", "--user", UPN, input=encode_base32(SECRET) + "\n"
    )
    run("token", "burned", "86596120001")
    run("token", "registered", "86596120001")
    run("token", "ship", "86596120001", "--carrier", "DHL", "--tracking", "JD014600003")
    backup = tmp_path / "vault.bak"
    run("backup", str(backup))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    shown = json.loads(run("token", "show", "86596120001", "--json"))
    assert shown["state"] == "shipped"
    assert shown["has_secret"] is True
    ciphertexts = _ciphertexts(location)
    assert ciphertexts, "the secret is stored encrypted"
    run("token", "deliver", "86596120001", "--override-reason", "user confirmed a code")
    run("token", "purge", "86596120001", "--yes")
    run("audit", "verify")
    log.write_text("\n".join(transcript))
    if location.sqlite_path is not None:
        assert stat.S_IMODE(location.sqlite_path.stat().st_mode) == 0o600
    for path in files_to_scan(location, [log, backup]):
        data = path.read_bytes()
        for form in secret_forms():
            assert form not in data, f"{form!r} found in {path}"
        if (
            path != backup
        ):  # the backup predates the purge and holds the ciphertext, encrypted again
            for ciphertext in ciphertexts:
                assert ciphertext not in data, f"ciphertext still in {path} after purge"


def _ciphertexts(location: VaultLocation) -> list[bytes]:
    import sqlalchemy as sa

    from oathdesk.vault.schema import token_secrets

    engine = sa.create_engine(location.database_url)
    with engine.connect() as conn:
        values = [bytes(row.ciphertext) for row in conn.execute(sa.select(token_secrets))]
    engine.dispose()
    return values


def test_secrets_never_from_arguments_and_errors_are_one_line(
    env: dict[str, str], cli: RunCli
) -> None:
    result = cli("token", "add", "--serial", "1", encode_base32(SECRET), env=env)
    assert_one_line_error(result)
    assert "unexpected extra argument" in result.stderr.lower()
    empty = cli("token", "add", "--serial", "1", env=env, input="")
    assert_one_line_error(empty)
    assert "no secret on standard input" in empty.stderr
    missing = cli("token", "show", "999", env=env)
    assert_one_line_error(missing)
    assert "no token with serial 999" in missing.stderr
    illegal = cli("token", "ship", "999", "--carrier", "x", "--tracking", "y", env=env)
    assert_one_line_error(illegal)


def test_qr_screenshot_and_otpauth_on_stdin(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    from tests.core.test_qr import screenshot_with_qr

    uri = f"otpauth://totp/Contoso:{UPN}?secret={encode_base32(SECRET)}&period=60&digits=6"
    shot = tmp_path / "mfasetup.png"
    screenshot_with_qr(uri, shot, "PNG")
    added = cli("token", "add", "--serial", "q1", "--qr-image", str(shot), env=env)
    assert added.returncode == 0, added.stderr
    cli("token", "add", "--serial", "q2", env=env, input=uri)
    tokens = {t["serial"]: t for t in json.loads(cli("token", "list", "--json", env=env).stdout)}
    assert tokens["q1"]["period"] == tokens["q2"]["period"] == 60


def test_backup_restore_and_key_rotation(
    location: VaultLocation, env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    cli("user", "add", UPN, env=env)
    cli("token", "add", "--serial", "b1", "--user", UPN, env=env, input=encode_base32(SECRET))
    backup = tmp_path / "before.bak"
    assert cli("backup", str(backup), env=env).returncode == 0
    rotated = cli("key", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-wrapped 2 key(s)" in rotated.stdout
    assert not Path(str(location.key_file) + ".new").exists()
    listing = cli("token", "list", "--json", env=env)
    assert [t["serial"] for t in json.loads(listing.stdout)] == ["b1"]
    assert cli("audit", "verify", env=env).returncode == 0
    # A backup taken before the rotation needs the old key; a new one restores with the new key.
    fresh = tmp_path / "after.bak"
    assert cli("backup", str(fresh), env=env).returncode == 0
    target = {
        "OATHDESK_VAULT": str(tmp_path / "restored.sqlite3"),
        "OATHDESK_KEY_FILE": env["OATHDESK_KEY_FILE"],
    }
    refused = cli("restore", str(backup), env=target)
    assert_one_line_error(refused)
    assert not (tmp_path / "restored.sqlite3").exists()
    restored = cli("restore", str(fresh), env=target)
    assert restored.returncode == 0, restored.stderr
    assert "audit chain intact" in restored.stdout
    again = json.loads(cli("token", "list", "--json", env=target).stdout)
    assert [t["serial"] for t in again] == ["b1"]


def test_key_file_permissions_are_enforced(env: dict[str, str], cli: RunCli) -> None:
    key_file = Path(env["OATHDESK_KEY_FILE"])
    os.chmod(key_file, 0o644)
    result = cli("user", "list", env=env)
    assert_one_line_error(result)
    assert f"chmod 600 {key_file}" in result.stderr


def test_passphrase_sealed_vault(location: VaultLocation, cli: RunCli) -> None:
    env = cli_env(location)
    sealed = {**env, "OATHDESK_PASSPHRASE": "a long vault passphrase"}
    created = cli("init", "--passphrase", env=sealed)
    assert created.returncode == 0, created.stderr
    assert not location.key_file.exists()
    assert cli("user", "add", UPN, env=sealed).returncode == 0
    wrong = cli("user", "list", env={**env, "OATHDESK_PASSPHRASE": "not the passphrase!"})
    assert_one_line_error(wrong)
    assert "does not open this vault" in wrong.stderr
    missing = cli("user", "list", env=env)
    assert_one_line_error(missing)
    assert "OATHDESK_PASSPHRASE" in missing.stderr
    assert UPN in cli("user", "list", env=sealed).stdout


def test_interrupted_rotation_resumes(
    location: VaultLocation, env: dict[str, str], cli: RunCli
) -> None:
    """Half the keys re-wrapped when the process died: the vault says so; rotate again finishes."""
    import sqlalchemy as sa

    from oathdesk.vault import db
    from oathdesk.vault.keys import MasterKey, read_key_file, write_key_file
    from oathdesk.vault.schema import wrapped_keys

    old = read_key_file(location.key_file)
    new = MasterKey.generate()
    write_key_file(Path(str(location.key_file) + ".new"), new)
    engine = db.create_engine(location.database_url)
    with engine.begin() as conn:  # re-wrap just the first key, as an interrupted run would
        row = conn.execute(sa.select(wrapped_keys).limit(1)).one()
        nonce, wrapped = new.wrap(old.unwrap(row.nonce, row.wrapped, slot=row.id), slot=row.id)
        conn.execute(
            wrapped_keys.update()
            .where(wrapped_keys.c.id == row.id)
            .values(nonce=nonce, wrapped=wrapped, master_key_id=new.key_id)
        )
    engine.dispose()
    stuck = cli("user", "list", env=env)
    assert_one_line_error(stuck)
    assert "rotation was interrupted" in stuck.stderr
    resumed = cli("key", "rotate", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming an interrupted rotation" in resumed.stdout
    assert "re-wrapped 1 key(s)" in resumed.stdout
    assert read_key_file(location.key_file).key_id == new.key_id
    assert cli("audit", "verify", env=env).returncode == 0


def test_missing_vault_says_to_init(cli: RunCli, tmp_path: Path) -> None:
    result = cli("token", "list", env={"OATHDESK_VAULT": str(tmp_path / "none.sqlite3")})
    assert_one_line_error(result)
    assert "run `oathdesk init` first" in result.stderr
