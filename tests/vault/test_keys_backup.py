"""Master keys (file, passphrase), resumable rotation, and encrypted backups taken while in use."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict, InvalidInput
from oathdesk.vault import db
from oathdesk.vault.backup import read_backup, restore_backup, write_backup
from oathdesk.vault.config import VaultLocation, load_master_key
from oathdesk.vault.keys import MasterKey, read_key_file, write_key_file
from oathdesk.vault.schema import wrapped_keys
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault.conftest import UPN, classic, read_secret, secret_for
from tests.vault_fixtures import ADMIN, cli_env

PASSPHRASE = "a long vault passphrase"
SEED_HEX = "3132333435363738393031323334353637383930"
B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # SEED_HEX, RFC 4226's test secret


def rewrap_one_key(location: VaultLocation, old: MasterKey, new: MasterKey) -> None:
    """What an interrupted rotation leaves: one key re-wrapped, the others not."""
    engine = db.create_engine(location.database_url)
    with engine.begin() as conn:
        row = conn.execute(sa.select(wrapped_keys).order_by(wrapped_keys.c.purpose)).first()
        assert row is not None
        key = old.unwrap(row.nonce, row.wrapped, slot=row.id)
        nonce, wrapped = new.wrap(key, slot=row.id)
        conn.execute(
            wrapped_keys.update()
            .where(wrapped_keys.c.id == row.id)
            .values(nonce=nonce, wrapped=wrapped, master_key_id=new.key_id)
        )
    engine.dispose()


def test_backup_restore_and_key_rotation(
    vault: Vault, location: VaultLocation, cli: RunCli, tmp_path: Path
) -> None:
    env = cli_env(location)
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, classic("b1", UPN))
    before = tmp_path / "before.bak"
    assert cli("backup", str(before), env=env).returncode == 0
    assert stat.S_IMODE(before.stat().st_mode) == 0o600
    rotated = cli("key", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-wrapped 2 key(s)" in rotated.stdout
    assert not Path(str(location.key_file) + ".new").exists()
    assert stat.S_IMODE(location.key_file.stat().st_mode) == 0o600
    # Data keys were re-wrapped, not re-encrypted: the seeds read the same under the new key.
    reopened = Vault.open(location, read_key_file(location.key_file))
    assert read_secret(reopened, "b1") == secret_for("b1")
    assert reopened.verify_audit() == []  # old records verify: the audit key was re-wrapped too
    assert reopened.export_audit(action="key.rotated")[0]["details"]["rewrapped"] == 2
    after = tmp_path / "after.bak"
    assert cli("backup", str(after), env=env).returncode == 0
    target = {
        "OATHDESK_VAULT": str(tmp_path / "restored.sqlite3"),
        "OATHDESK_KEY_FILE": env["OATHDESK_KEY_FILE"],
    }
    refused = cli("restore", str(before), env=target)  # made under the old key
    assert_one_line_error(refused)
    assert "cannot be opened with this master key" in refused.stderr
    assert not (tmp_path / "restored.sqlite3").exists()
    restored = cli("restore", str(after), env=target)
    assert restored.returncode == 0, restored.stderr
    assert "audit chain intact" in restored.stdout
    again = json.loads(cli("token", "list", "--json", env=target).stdout)
    assert [(t["serial"], t["upn"], t["has_secret"]) for t in again] == [("b1", UPN, True)]
    assert_one_line_error(cli("restore", str(after), env=target))  # not into a vault in use


def test_interrupted_key_file_rotation_resumes(
    vault: Vault, location: VaultLocation, master_key: MasterKey, cli: RunCli
) -> None:
    env = cli_env(location)
    new = MasterKey.generate()
    write_key_file(Path(str(location.key_file) + ".new"), new)
    rewrap_one_key(location, master_key, new)
    stuck = cli("user", "list", env=env)
    assert_one_line_error(stuck)
    assert "rotation was interrupted; run `oathdesk key rotate` again" in stuck.stderr
    resumed = cli("key", "rotate", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming an interrupted rotation" in resumed.stdout
    assert "re-wrapped 1 key(s)" in resumed.stdout
    assert read_key_file(location.key_file).key_id == new.key_id
    assert cli("audit", "verify", env=env).returncode == 0


@pytest.mark.slow
def test_passphrase_sealed_vault_and_its_rotation(
    sqlite_location: VaultLocation, cli: RunCli, tmp_path: Path
) -> None:
    location = sqlite_location
    env = cli_env(location)
    sealed = {**env, "OATHDESK_PASSPHRASE": PASSPHRASE}
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

    changed = {**sealed, "OATHDESK_NEW_PASSPHRASE": "another long passphrase"}
    rotated = cli("key", "rotate", env=changed)
    assert rotated.returncode == 0, rotated.stderr
    assert "opens with the new passphrase only" in rotated.stdout
    assert_one_line_error(cli("user", "list", env=sealed))
    reopened = {**env, "OATHDESK_PASSPHRASE": "another long passphrase"}
    assert UPN in cli("user", "list", env=reopened).stdout
    assert cli("audit", "verify", env=reopened).returncode == 0
    # Its backup restores with the passphrase alone (the parameters travel in the header).
    backup = tmp_path / "sealed.bak"
    assert cli("backup", str(backup), env=reopened).returncode == 0
    elsewhere = {
        "OATHDESK_VAULT": str(tmp_path / "restored.sqlite3"),
        "OATHDESK_KEY_FILE": str(tmp_path / "no.key"),
        "OATHDESK_PASSPHRASE": "another long passphrase",
    }
    restored = cli("restore", str(backup), env=elsewhere)
    assert restored.returncode == 0, restored.stderr
    assert UPN in cli("user", "list", env=elsewhere).stdout


def test_interrupted_passphrase_change_resumes(location: VaultLocation, cli: RunCli) -> None:
    """On both databases: the pending parameters are stored in the vault."""
    from oathdesk.vault.passphrase import derive_master_key, pending_params, read_params

    env = cli_env(location)
    sealed = {**env, "OATHDESK_PASSPHRASE": PASSPHRASE}
    assert cli("init", "--passphrase", env=sealed).returncode == 0
    engine = db.create_engine(location.database_url)
    current = read_params(engine)
    assert current is not None
    old = derive_master_key(PASSPHRASE, current)
    new = derive_master_key("the new passphrase", pending_params(engine))
    engine.dispose()
    rewrap_one_key(location, old, new)
    stuck = cli("user", "list", env=sealed)
    assert "rotation was interrupted" in stuck.stderr
    other = cli("key", "rotate", env={**sealed, "OATHDESK_NEW_PASSPHRASE": "not the same one!"})
    assert_one_line_error(other)
    assert "a different new key or passphrase" in other.stderr
    resumed = cli("key", "rotate", env={**sealed, "OATHDESK_NEW_PASSPHRASE": "the new passphrase"})
    assert resumed.returncode == 0, resumed.stderr
    assert "re-wrapped 1 key(s)" in resumed.stdout
    final = {**env, "OATHDESK_PASSPHRASE": "the new passphrase"}
    assert cli("audit", "verify", env=final).returncode == 0


def test_backup_is_one_point_in_time_while_writers_work(
    vault: Vault, master_key: MasterKey, tmp_path: Path
) -> None:
    """Batches land while the backup reads: it holds whole batches only, and restores intact."""
    vault.add_tokens(ADMIN, [classic(f"A{i:04d}") for i in range(500)])
    stop = threading.Event()

    def keep_writing() -> None:
        batch = 0
        while not stop.is_set():
            batch += 1
            vault.add_tokens(ADMIN, [classic(f"W{batch:03d}-{i:03d}") for i in range(200)])

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        backups = [tmp_path / f"b{n}.bak" for n in range(3)]
        for path in backups:
            write_backup(vault.engine, master_key, path)
    finally:
        stop.set()
        writer.join()
    for path in backups:
        tables = read_backup(master_key, path)
        count = len(tables["tokens"])
        assert (count - 500) % 200 == 0, "a backup caught a batch half-written"
        assert len(tables["token_secrets"]) == count
        head = tables["audit_head"][0]["seq"]
        assert head == len(tables["audit_log"])
    target = tmp_path / "restored.sqlite3"
    where = VaultLocation(f"sqlite:///{target}", tmp_path / "unused.key", target)
    engine = db.create_engine(where.database_url)
    db.upgrade(engine)
    restore_backup(engine, master_key, backups[-1])
    engine.dispose()
    restored = Vault.open(where, master_key)
    assert restored.verify_audit() == []
    assert read_secret(restored, "A0123") == secret_for("A0123")
    with pytest.raises(Conflict, match="restore needs an empty vault"):
        restore_backup(restored.engine, master_key, backups[0])
    restored.close()


def test_a_damaged_backup_is_refused(vault: Vault, master_key: MasterKey, tmp_path: Path) -> None:
    path = tmp_path / "v.bak"
    write_backup(vault.engine, master_key, path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="cannot be opened with this master key, or it is dam"):
        read_backup(master_key, path)
    path.write_bytes(b"a spreadsheet")
    with pytest.raises(InvalidInput, match="is not an oathdesk backup"):
        read_backup(master_key, path)


def test_backup_refuses_to_overwrite_a_file_without_force(
    sqlite_env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    target = tmp_path / "keep.bak"
    target.write_bytes(b"last week's backup")
    refused = cli("backup", str(target), env=sqlite_env)
    assert_one_line_error(refused)
    assert f"{target} exists" in refused.stderr
    assert "--force" in refused.stderr
    assert "another name" in refused.stderr
    assert target.read_bytes() == b"last week's backup"
    forced = cli("backup", str(target), "--force", env=sqlite_env)
    assert forced.returncode == 0, forced.stderr
    assert target.read_bytes().startswith(b"OATHDESK-BACKUP-")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_restore_without_a_key_says_which_key_file_it_looked_for(
    sqlite_env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    backup = tmp_path / "v.bak"
    assert cli("backup", str(backup), env=sqlite_env).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    refused = cli("restore", str(backup), "--vault", str(elsewhere / "new.sqlite3"), env={})
    assert_one_line_error(refused)
    looked_for = elsewhere / "new.key"
    assert str(looked_for) in refused.stderr
    assert "OATHDESK_KEY_FILE" in refused.stderr
    assert "OATHDESK_MASTER_KEY" in refused.stderr
    assert "oathdesk init" not in refused.stderr
    assert not (elsewhere / "new.sqlite3").exists()


# Runs `oathdesk key rotate` in a real process that SIGKILLs itself right after its N-th durable
# step (as the CLI reports them), so each test case stops the rotation at one exact point. Only
# this test process patches the step reporter; the product has no hook for it.
KILL_AT_STEP = """
import os, signal, sys
from oathdesk.cli import vault_keys
from oathdesk.cli.entry import main
stop_after, seen = int(sys.argv[1]), []
report = vault_keys._report_step
def report_then_die(message):
    report(message)
    seen.append(message)
    if len(seen) == stop_after:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
vault_keys._report_step = report_then_die
sys.argv = ["oathdesk", "key", "rotate"]
sys.exit(main())
"""


def rotate_killed_after(step: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_STEP, str(step)],
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def steps_of_a_whole_rotation(env: dict[str, str], cli: RunCli) -> int:
    done = rotate_killed_after(0, env)  # step 0: never killed
    assert done.returncode == 0, done.stderr
    return len([line for line in done.stdout.splitlines() if line.startswith("step: ")])


@pytest.mark.slow
@pytest.mark.parametrize("sealed", [False, True], ids=["key_file", "passphrase"])
def test_rotation_killed_at_every_step_says_so_and_finishes(
    sealed: bool, tmp_path: Path, cli: RunCli
) -> None:
    def env_of(name: str) -> dict[str, str]:
        env = {
            "OATHDESK_VAULT": str(tmp_path / name / "vault.sqlite3"),
            "OATHDESK_KEY_FILE": str(tmp_path / name / "vault.key"),
        }
        if sealed:
            env["OATHDESK_PASSPHRASE"] = PASSPHRASE
            env["OATHDESK_NEW_PASSPHRASE"] = "the new passphrase"
        return env

    made_env = env_of("made")
    made = cli("init", *(["--passphrase"] if sealed else []), env=made_env)
    assert made.returncode == 0, made.stderr
    assert cli("user", "add", UPN, env=made_env).returncode == 0
    added = cli("token", "add", "--serial", "K1", "--user", UPN, input=B32 + "\n", env=made_env)
    assert added.returncode == 0, added.stderr

    def fresh(name: str) -> dict[str, str]:
        # A copy of the vault made once (no process has it open): the same starting point for
        # every kill, without three CLI processes each.
        shutil.copytree(tmp_path / "made", tmp_path / name)
        return env_of(name)

    total = steps_of_a_whole_rotation(fresh("whole"), cli)
    assert total >= 4
    for step in range(1, total):
        env = fresh(f"step{step}")
        killed = rotate_killed_after(step, env)
        assert killed.returncode == -signal.SIGKILL, (step, killed.stdout, killed.stderr)
        with_old = cli("token", "list", env=env)
        with_new = {**env, "OATHDESK_PASSPHRASE": "the new passphrase"} if sealed else env
        if with_old.returncode != 0:
            # Whatever the point, never "wrong key": an admin told that may restore a backup.
            assert_one_line_error(with_old)
            assert "does not open this vault" not in with_old.stderr, (step, with_old.stderr)
            assert "rotation was interrupted" in with_old.stderr, (step, with_old.stderr)
            assert "`oathdesk key rotate` again" in with_old.stderr, (step, with_old.stderr)
        resumed = cli("key", "rotate", env=env)
        assert resumed.returncode == 0, (step, resumed.stdout, resumed.stderr)
        if not sealed:
            assert not Path(env["OATHDESK_KEY_FILE"] + ".new").exists()
        if step == total - 1:  # the library's reads below check every step
            shown = cli("token", "list", "--json", env=with_new)
            assert shown.returncode == 0, (step, shown.stderr)
            assert [t["serial"] for t in json.loads(shown.stdout)] == ["K1"]
        where = VaultLocation(
            f"sqlite:///{env['OATHDESK_VAULT']}",
            Path(env["OATHDESK_KEY_FILE"]),
            Path(env["OATHDESK_VAULT"]),
        )
        opened = Vault.open(where, load_master_key(where, with_new))
        assert read_secret(opened, "K1") == bytes.fromhex(SEED_HEX)
        assert opened.verify_audit() == []
        rotations = opened.export_audit(action="key.rotated")
        assert len(rotations) == 1, (step, rotations)
        opened.close()
        if sealed:
            assert_one_line_error(cli("token", "list", env=env))  # the old passphrase no more
