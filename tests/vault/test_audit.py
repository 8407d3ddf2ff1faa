"""Tampering with the audit log in the database: `oathdesk audit verify` names each break."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from oathdesk.vault.config import VaultLocation
from oathdesk.vault.schema import audit_head, audit_log
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli
from tests.vault_fixtures import ADMIN, cli_env


def populate(vault: Vault, users: int = 9) -> int:
    for index in range(users):
        vault.add_user(ADMIN, f"user{index}@contoso.com")
    return len(vault.export_audit())  # vault.created + one per user


def execute(vault: Vault, statement: sa.Executable) -> None:
    with vault.transaction() as conn:
        conn.execute(statement)


def test_intact_log_verifies(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    count = populate(vault)
    result = cli("audit", "verify", env=cli_env(location))
    assert result.returncode == 0, result.stderr
    assert f"{count} records" in result.stdout


@pytest.mark.parametrize("seq", [1, 5, 10])
def test_edited_record(vault: Vault, location: VaultLocation, cli: RunCli, seq: int) -> None:
    populate(vault)
    execute(vault, audit_log.update().where(audit_log.c.seq == seq).values(actor="someone-else"))
    assert vault.verify_audit() == [f"record {seq}: MAC mismatch (edited, inserted or reordered)"]
    result = cli("audit", "verify", env=cli_env(location))
    assert result.returncode == 1
    assert f"BROKEN: record {seq}: MAC mismatch" in result.stdout
    assert "error: the audit log has" in result.stderr


@pytest.mark.parametrize(
    ("seqs", "expected"),
    [
        ([1], "record 1 missing (deleted)"),
        ([1, 2], "records 1-2 missing (deleted)"),
        ([5], "record 5 missing (deleted)"),
        ([10], "record 10 missing at the end (deleted): the head says 10 records"),
        ([9, 10], "records 9-10 missing at the end (deleted): the head says 10 records"),
    ],
)
def test_deleted_records(vault: Vault, seqs: list[int], expected: str) -> None:
    assert populate(vault) == 10
    execute(vault, audit_log.delete().where(audit_log.c.seq.in_(seqs)))
    assert expected in vault.verify_audit()


@pytest.mark.parametrize(("first", "second"), [(1, 2), (5, 6), (9, 10)])
def test_reordered_records(vault: Vault, first: int, second: int) -> None:
    """Swap two records' contents (keeping the sequence numbers): both are named."""
    populate(vault)
    with vault.transaction() as conn:
        rows = {
            row.seq: row
            for row in conn.execute(
                sa.select(audit_log).where(audit_log.c.seq.in_([first, second]))
            )
        }
        for target, source in ((first, second), (second, first)):
            values = {
                c: getattr(rows[source], c)
                for c in ("at", "actor", "action", "upn", "details", "mac")
            }
            conn.execute(audit_log.update().where(audit_log.c.seq == target).values(**values))
    problems = vault.verify_audit()
    assert f"record {first}: MAC mismatch (edited, inserted or reordered)" in problems
    assert f"record {second}: MAC mismatch (edited, inserted or reordered)" in problems


def test_renumbered_and_inserted_records(vault: Vault) -> None:
    populate(vault)
    with vault.transaction() as conn:
        last = conn.execute(sa.select(audit_log).where(audit_log.c.seq == 10)).one()
        conn.execute(
            audit_log.insert().values(
                seq=11,
                at=last.at,
                actor="x",
                action="user.added",
                upn="",
                serial="",
                details="{}",
                mac=last.mac,
            )
        )
    problems = vault.verify_audit()
    assert "record 11: MAC mismatch (edited, inserted or reordered)" in problems
    assert "records 11-11 are not covered by the head (inserted)" in problems


def test_forged_or_deleted_head(vault: Vault) -> None:
    populate(vault)
    execute(vault, audit_head.update().values(seq=3))
    assert vault.verify_audit() == ["the audit head is forged or edited"]
    execute(vault, audit_head.delete())
    assert vault.verify_audit() == [
        "the audit head is missing (deleted); the end of the log cannot be checked"
    ]


def test_audit_export_filters(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    import json

    populate(vault, users=3)
    result = cli("audit", "export", "--user", "user1@contoso.com", env=cli_env(location))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["action"] for r in records] == ["user.added"]
    assert records[0]["actor"] == "local:test"
    everything = cli("audit", "export", "--action", "user.added", env=cli_env(location))
    assert len(everything.stdout.splitlines()) == 3
