"""Errors about where the vault is say their true reason: a read-only vault is read and refuses
changes as read-only; an unreachable PostgreSQL is named by host and port, not "check the path"."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunCli, assert_one_line_error
from tests.pg import _free_port
from tests.vault.conftest import UPN

B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@contextlib.contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """``source`` seen through a read-only bind mount: as root, file modes do not stop writes,
    a read-only mount does (as it does for an admin's read-only mount or snapshot)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root and mount(8)")
    target.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(target)], check=False).returncode:
        pytest.skip("bind mounts are not allowed here")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_read_only_vault_is_read_and_refuses_changes_as_read_only(
    tmp_path: Path, cli: RunCli
) -> None:
    home = tmp_path / "rw"
    home.mkdir()
    env = {"OATHDESK_VAULT": str(home / "vault.sqlite3")}
    assert cli("init", env=env).returncode == 0
    assert cli("user", "add", UPN, env=env).returncode == 0
    added = cli("token", "add", "--serial", "R1", "--user", UPN, input=B32 + "\n", env=env)
    assert added.returncode == 0, added.stderr
    with read_only_view(home, tmp_path / "ro") as view:
        ro = {"OATHDESK_VAULT": str(view / "vault.sqlite3")}
        listed = cli("token", "list", "--json", env=ro)
        assert listed.returncode == 0, listed.stderr
        assert [t["serial"] for t in json.loads(listed.stdout)] == ["R1"]
        verified = cli("audit", "verify", env=ro)
        assert verified.returncode == 0, verified.stderr
        csv = tmp_path / "entra.csv"
        csv.write_text(
            "upn,serial number,secret key,time interval,manufacturer,model\n"
            f"{UPN},R2,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,30,Token2,c202\n"
        )
        dry = cli("import", "--dry-run", str(csv), env=ro)
        assert dry.returncode == 0, dry.stderr
        refused = cli("user", "add", "other@contoso.com", env=ro)
        assert_one_line_error(refused)
        assert "read-only" in refused.stderr, refused.stderr
        assert "check the path" not in refused.stderr


def test_postgresql_down_is_named_by_host_and_port(cli: RunCli, tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    env = {
        "OATHDESK_DATABASE_URL": f"postgresql+psycopg://oathdesk@127.0.0.1:{port}/oathdesk",
        "OATHDESK_KEY_FILE": str(tmp_path / "vault.key"),
    }
    (tmp_path / "vault.key").write_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    (tmp_path / "vault.key").chmod(0o600)
    for args in (("token", "list"), ("audit", "verify"), ("init",)):
        down = cli(*args, env=env)
        assert_one_line_error(down)
        assert f"cannot reach the database server at 127.0.0.1:{port}" in down.stderr, down.stderr
        assert "check the path" not in down.stderr


def test_a_vault_from_a_newer_oathdesk_says_to_upgrade_oathdesk(
    tmp_path: Path, cli: RunCli
) -> None:
    """A vault migrated by a newer release is not "an older schema" to upgrade with `init`:
    `init` cannot migrate downwards, and the admin must run the newer oathdesk instead."""
    import sqlite3

    path = tmp_path / "vault.sqlite3"
    env = {"OATHDESK_VAULT": str(path)}
    assert cli("init", env=env).returncode == 0
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for args in (("token", "list"), ("audit", "verify"), ("init",)):
        result = cli(*args, env=env)
        assert_one_line_error(result)
        assert "newer oathdesk" in result.stderr, (args, result.stderr)
        assert "9999" in result.stderr, result.stderr
        assert "older schema" not in result.stderr


def _real_error(url: str, setup: list[str], statement: str, **connect: object) -> str:
    """The one line oathdesk makes of what SQLite really says when ``statement`` fails."""
    import sqlalchemy as sa

    from oathdesk.vault import db

    engine = sa.create_engine(url, connect_args=connect)
    try:
        with engine.begin() as conn:
            for line in setup:
                conn.exec_driver_sql(line)
            conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError as error:
        return str(db.storage_error(error))
    finally:
        engine.dispose()
    raise AssertionError(f"{statement} did not fail")


def test_a_full_disk_is_named_as_a_full_disk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'full.sqlite3'}"
    message = _real_error(
        url,
        ["CREATE TABLE t (b BLOB)", "PRAGMA max_page_count = 8"],
        "INSERT INTO t VALUES (zeroblob(1000000))",
    )
    assert message.startswith("the disk holding the vault is full"), message
    assert "\n" not in message


def test_another_writer_is_named_as_holding_the_write_lock(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "locked.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("CREATE TABLE t (x INTEGER)")
        holder.execute("BEGIN IMMEDIATE")
        message = _real_error(f"sqlite:///{path}", [], "INSERT INTO t VALUES (1)", timeout=0)
        holder.execute("ROLLBACK")
    assert message.startswith("another process holds the vault's write lock"), message
