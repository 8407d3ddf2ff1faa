"""The audit check streams the log in chunks (``FETCH_ROWS``) through a fast path for intact rows:
a break at a chunk's edge, or a row only the full check accepts, is named as before."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from benchmarks.big_vault import append_audit_records

from oathdesk.vault import audit_verify
from oathdesk.vault.schema import audit_log
from oathdesk.vault.vault import Vault
from tests.vault.test_audit import check_after_an_end, execute, populate, put, row, swap_rows

pytestmark = pytest.mark.usefixtures("small_chunks")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 rows: records 4 and 5 are the last of one chunk and the first of the next."""
    monkeypatch.setattr(audit_verify, "FETCH_ROWS", 4)


def test_intact_log_across_chunks(vault: Vault) -> None:
    assert populate(vault) == 10
    check = vault.check_audit()
    assert check.problems == []
    assert check.end is not None
    assert check.end.seq == 10


def test_edited_run_across_a_chunk_edge_is_one_finding(vault: Vault) -> None:
    populate(vault)
    execute(vault, put(4, {"actor": "mallory"}), put(5, {"actor": "mallory"}))
    assert vault.verify_audit() == ["records 4-5: MAC mismatch (edited or forged)"]


@pytest.mark.parametrize("seq", [4, 5, 8, 9])
def test_deleted_at_a_chunk_edge(vault: Vault, seq: int) -> None:
    populate(vault)
    execute(vault, audit_log.delete().where(audit_log.c.seq == seq))
    assert vault.verify_audit() == [f"record {seq} missing (deleted)"]


def test_reordered_across_a_chunk_edge(vault: Vault) -> None:
    populate(vault)
    swap_rows(vault, 4, 5)
    assert vault.verify_audit() == [
        "record 4: holds record 5 (reordered)",
        "record 5: holds record 4 (reordered)",
    ]


def test_renumbered_run_across_chunk_edges(vault: Vault) -> None:
    populate(vault)
    execute(vault, audit_log.delete().where(audit_log.c.seq == 3))
    for seq in range(4, 11):
        execute(vault, audit_log.update().where(audit_log.c.seq == seq).values(seq=seq - 1))
    assert vault.verify_audit() == [
        "records 3-9: hold records 4-10 (moved: records were inserted, deleted or renumbered)",
        "record 10 missing at the end (deleted): the head says 10 records, the log ends at 9",
    ]


def test_details_stored_in_another_json_form_still_verify(vault: Vault) -> None:
    """The fast path MACs the details as stored; a row whose details are the same object in
    another spelling (as an early release stored them) goes through the full check, which
    verifies it as before, and an edit in such a row is still found."""
    populate(vault)
    stored = json.loads(row(vault, 5)["details"])
    spaced = json.dumps(stored, sort_keys=True, indent=1)
    execute(vault, put(5, {"details": spaced}), put(6, {"details": spaced}))
    assert vault.verify_audit() == []
    execute(vault, put(5, {"details": json.dumps({**stored, "forged": True})}))
    assert vault.verify_audit() == ["record 5: MAC mismatch (edited or forged)"]


def test_check_after_an_end_across_chunks(vault: Vault) -> None:
    check_after_an_end(vault)


def test_break_at_the_real_chunk_edge_of_a_long_log(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two chunks and a bit, built with the benchmarks' bulk builder: the records either side
    of the first chunk's edge edited, and one deleted in the second chunk."""
    size = 5_000
    monkeypatch.setattr(audit_verify, "FETCH_ROWS", size)
    append_audit_records(vault, 2 * size + 10, users=50)
    assert vault.verify_audit() == []
    execute(vault, put(size, {"upn": "x@contoso.com"}), put(size + 1, {"upn": "x@contoso.com"}))
    execute(vault, audit_log.delete().where(audit_log.c.seq == size + 7))
    assert vault.verify_audit() == [
        f"records {size}-{size + 1}: MAC mismatch (edited or forged)",
        f"record {size + 7} missing (deleted)",
    ]
    with vault.reading() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one()
    assert count == 2 * size + 10  # vault.created and the appended ones, less the deleted one
