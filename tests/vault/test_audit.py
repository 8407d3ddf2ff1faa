"""Tampering with the audit log directly in the database: `oathdesk audit verify` names each break.

Records 1-10 are: vault.created, then user.added for user0..user8.
"""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.vault.audit import AuditEntry
from oathdesk.vault.audit_filter import AuditFilter
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.schema import audit_head, audit_log
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault_fixtures import ADMIN, cli_env

AT_THE_END = "missing at the end (deleted): the head says 10 records"
COLUMNS = ("at", "actor", "action", "upn", "serial", "details", "mac", "prev_mac")


def populate(vault: Vault, users: int = 9) -> int:
    for index in range(users):
        vault.add_user(ADMIN, f"user{index}@contoso.com")
    return vault.audit_count()


def execute(vault: Vault, *statements: sa.Executable) -> None:
    with vault.transaction() as conn:
        for statement in statements:
            conn.execute(statement)


def row(vault: Vault, seq: int) -> dict[str, Any]:
    with vault.transaction() as conn:
        found = conn.execute(sa.select(audit_log).where(audit_log.c.seq == seq)).one()
    return {column: getattr(found, column) for column in COLUMNS}


def put(seq: int, values: dict[str, Any]) -> sa.Executable:
    return audit_log.update().where(audit_log.c.seq == seq).values(**values)


def swap_rows(vault: Vault, first: int, second: int) -> None:
    """Reorder: each position gets the other record, whole (what swapping seq values does)."""
    a, b = row(vault, first), row(vault, second)
    execute(vault, put(first, b), put(second, a))


def check_after_an_end(vault: Vault) -> None:
    """Nine records added after a checked end verify from that end, and an edit among them is
    found (shared by the chunked and the split check's tests)."""
    populate(vault, users=2)
    first = vault.check_audit()
    assert first.end is not None
    for index in range(9):
        vault.add_user(ADMIN, f"late{index}@contoso.com")
    later = vault.check_audit(first.end)
    assert later.problems == []
    assert later.end is not None
    assert later.end.seq == first.end.seq + 9
    execute(vault, put(first.end.seq + 5, {"upn": "other@contoso.com"}))
    assert vault.check_audit(first.end).problems == [
        f"record {first.end.seq + 5}: MAC mismatch (edited or forged)"
    ]


def test_intact_log_verifies(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    count = populate(vault)
    result = cli("audit", "verify", env=cli_env(location))
    assert result.returncode == 0, result.stderr
    assert f"audit log intact: {count} records" in result.stdout


@pytest.mark.parametrize("seq", [1, 5, 10])
def test_edited_record(vault: Vault, seq: int) -> None:
    populate(vault)
    execute(vault, put(seq, {"actor": "someone-else"}))
    assert vault.verify_audit() == [f"record {seq}: MAC mismatch (edited or forged)"]


def test_edited_details_that_are_not_json(vault: Vault) -> None:
    populate(vault)
    execute(vault, put(4, {"details": "not json"}))
    assert vault.verify_audit() == ["record 4: details are not a JSON object (edited)"]


@pytest.mark.parametrize(
    ("seqs", "expected"),
    [
        ([1], "record 1 missing (deleted)"),
        ([1, 2], "records 1-2 missing (deleted)"),
        ([5], "record 5 missing (deleted)"),
        ([5, 6], "records 5-6 missing (deleted)"),
        ([10], f"record 10 {AT_THE_END}, the log ends at 9"),
        ([9, 10], f"records 9-10 {AT_THE_END}, the log ends at 8"),
    ],
)
def test_deleted_records(vault: Vault, seqs: list[int], expected: str) -> None:
    assert populate(vault) == 10
    execute(vault, audit_log.delete().where(audit_log.c.seq.in_(seqs)))
    assert vault.verify_audit() == [expected]


@pytest.mark.parametrize(("first", "second"), [(1, 2), (5, 6), (9, 10)])
def test_reordered_records(vault: Vault, first: int, second: int) -> None:
    populate(vault)
    swap_rows(vault, first, second)
    assert vault.verify_audit() == [
        f"record {first}: holds record {second} (reordered)",
        f"record {second}: holds record {first} (reordered)",
    ]


def test_contents_swapped_but_not_their_links(vault: Vault) -> None:
    """A clumsier reorder (the chain columns left in place) still names both records."""
    populate(vault)
    a, b = row(vault, 5), row(vault, 6)
    fields = ("at", "actor", "action", "upn", "details")
    execute(vault, put(5, {k: b[k] for k in fields}), put(6, {k: a[k] for k in fields}))
    assert vault.verify_audit() == ["records 5-6: MAC mismatch (edited or forged)"]


def test_record_deleted_and_the_rest_renumbered(vault: Vault) -> None:
    """Hiding a deletion by closing the gap: every moved record is named, as one run."""
    populate(vault)
    execute(vault, audit_log.delete().where(audit_log.c.seq == 4))
    for seq in range(5, 11):
        execute(vault, audit_log.update().where(audit_log.c.seq == seq).values(seq=seq - 1))
    assert vault.verify_audit() == [
        "records 4-9: hold records 5-10 (moved: records were inserted, deleted or renumbered)",
        f"record 10 {AT_THE_END}, the log ends at 9",
    ]


def test_inserted_records(vault: Vault) -> None:
    populate(vault)
    last = row(vault, 10)
    forged = {**last, "seq": 11, "actor": "x", "prev_mac": last["mac"]}
    execute(vault, audit_log.insert().values(**forged))
    assert vault.verify_audit() == [
        "record 11: MAC mismatch (edited or forged)",
        "record 11 after the head's last record 10 (inserted)",
    ]


def test_forged_or_deleted_head(vault: Vault) -> None:
    populate(vault)
    execute(vault, audit_head.update().values(seq=3))
    assert vault.verify_audit() == ["the audit head is forged or edited"]
    execute(vault, audit_head.delete())
    assert vault.verify_audit() == [
        "the audit head is missing (deleted); the end of the log cannot be checked"
    ]


def test_cli_names_every_break(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    """First edited, a middle one deleted, two reordered, the last deleted: four findings."""
    populate(vault)
    execute(vault, put(1, {"actor": "mallory"}))
    execute(vault, audit_log.delete().where(audit_log.c.seq == 4))
    swap_rows(vault, 6, 7)
    execute(vault, audit_log.delete().where(audit_log.c.seq == 10))
    result = cli("audit", "verify", env=cli_env(location))
    assert_one_line_error(result)
    assert result.returncode == 1
    assert "error: the audit log has 5 break(s); treat the vault as tampered" in result.stderr
    assert result.stdout.splitlines() == [
        "BROKEN: record 1: MAC mismatch (edited or forged)",
        "BROKEN: record 4 missing (deleted)",
        "BROKEN: record 6: holds record 7 (reordered)",
        "BROKEN: record 7: holds record 6 (reordered)",
        f"BROKEN: record 10 {AT_THE_END}, the log ends at 9",
    ]


def test_records_from_before_links_were_stored_still_verify(vault: Vault) -> None:
    """Records written by schema 0002 have no prev_mac: they are checked against the row before."""
    populate(vault)
    execute(vault, audit_log.update().values(prev_mac=None))
    assert vault.verify_audit() == []
    execute(vault, put(5, {"actor": "mallory"}))
    assert vault.verify_audit() == ["record 5: MAC mismatch (edited or forged)"]


def test_appends_after_tampering_do_not_hide_it(vault: Vault) -> None:
    populate(vault, users=3)
    execute(vault, put(2, {"upn": "other@contoso.com"}))
    vault.add_user(ADMIN, "late@contoso.com")
    assert vault.verify_audit() == ["record 2: MAC mismatch (edited or forged)"]


def test_audit_export_filters(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    populate(vault, users=3)
    result = cli("audit", "export", "--user", "USER1@contoso.com", env=cli_env(location))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["action"] for r in records] == ["user.added"]
    assert records[0]["actor"] == "local:test"
    assert len(records[0]["mac"]) == 64
    everything = cli("audit", "export", "--action", "user.added", env=cli_env(location))
    assert len(everything.stdout.splitlines()) == 3
    future = cli("audit", "export", "--since", "2999-01-01T00:00:00Z", env=cli_env(location))
    assert (future.returncode, future.stdout) == (0, "")
    assert vault.export_audit(actor="nobody") == []
    assert vault.export_audit(until=datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert len(vault.export_audit(since=datetime(2000, 1, 1, tzinfo=UTC))) == 4


def test_an_audit_export_streams_one_snapshot(vault: Vault) -> None:
    """`oathdesk audit export` of a big log starts at once and never holds it whole: the
    records are read as they are written out (the export held them all in a list first, a
    gigabyte for a million). Records appended meanwhile are not in it: one snapshot."""

    def notes(numbers: range) -> list[AuditEntry]:
        return [
            AuditEntry("local:test", "test.note", "", "", {"n": n, "pad": "x" * 400})
            for n in numbers
        ]

    with vault.transaction() as conn:
        vault.audit_entries(conn, notes(range(20_000)))
    tracemalloc.start()
    try:
        records = vault.audit_records(AuditFilter(action="test.note"))
        first = next(records)
        with vault.transaction() as conn:  # a writer is not kept waiting by the export
            vault.audit_entries(conn, notes(range(20_000, 20_005)))
        numbers = [first["details"]["n"]] + [record["details"]["n"] for record in records]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert numbers == list(range(20_000))
    assert peak < 6_000_000, peak  # the 20,000 records as dicts take over 15 MB
    assert len(vault.export_audit(action="test.note")) == 20_005
