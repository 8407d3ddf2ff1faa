"""A record appended while the chain is checked is not reported as tampering (issue 15).

The check reads the log, then the head, and (after an earlier check) the record it ended at, in
separate statements. Under PostgreSQL's READ COMMITTED each statement sees what was committed
when it started, so an append committed between the log's scan and the head's read looked like
records missing at the end. The check runs in one snapshot instead (REPEATABLE READ on
PostgreSQL; SQLite's deferred read transaction in WAL mode already is one). These tests commit
an append at each point between the check's reads, deterministically, from another connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from oathdesk.vault import audit_verify
from oathdesk.vault.vault import Vault
from tests.vault.test_audit import populate
from tests.vault_fixtures import ADMIN


def _append(vault: Vault, count: int = 1) -> None:
    # Its own connection and transaction, committed before the check reads on.
    for index in range(count):
        vault.add_user(ADMIN, f"late{vault.audit_count()}-{index}@contoso.com")


def _after(monkeypatch: pytest.MonkeyPatch, name: str, vault: Vault, times: int = 1) -> list[int]:
    """Wrap ``audit_verify.<name>`` so that an append commits right after its first ``times``
    calls; returns a list counting the calls."""
    real: Callable[..., Any] = getattr(audit_verify, name)
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) <= times:
            _append(vault)
        return result

    monkeypatch.setattr(audit_verify, name, wrapped)
    return calls


def test_append_between_the_scan_and_the_head_is_not_tampering(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(vault)
    before = vault.audit_count()
    calls = _after(monkeypatch, "_check_rows", vault)
    check = vault.check_audit()
    assert calls == [1]
    assert check.problems == []
    assert check.end is not None
    assert check.end.seq == before  # the snapshot's end
    monkeypatch.undo()
    assert vault.check_audit().problems == []
    assert vault.audit_count() == before + 1
    if vault.engine.dialect.name != "sqlite":
        # The snapshot is the check's alone: a pooled connection goes back to the default.
        with vault.engine.connect() as conn:
            assert conn.get_isolation_level() == "READ COMMITTED"


def test_append_during_an_incremental_check_is_not_tampering(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(vault)
    first = vault.check_audit()
    _append(vault, 2)
    # After the probe for "nothing new" (the first _one call: the check's snapshot starts
    # after it, so it sees that append), the kept record's read (the second) and the scan:
    # appends land between every pair of the incremental check's reads.
    _after(monkeypatch, "_one", vault, times=2)
    _after(monkeypatch, "_check_rows", vault)
    later = vault.check_audit(first.end)
    assert later.problems == []
    assert later.end is not None
    assert first.end is not None
    assert later.end.seq == first.end.seq + 3
    monkeypatch.undo()
    assert vault.check_audit(later.end).problems == []
    assert vault.check_audit().problems == []


def test_many_checks_beside_a_concurrent_writer(vault: Vault) -> None:
    """The same with a real writer thread appending while checks run, many times over."""
    populate(vault, users=3)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            index = 0
            while not stop.is_set():
                vault.add_user(ADMIN, f"writer{index}@contoso.com")
                index += 1
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(40):
            whole = vault.check_audit()
            assert whole.problems == []
            assert vault.check_audit(whole.end).problems == []
    finally:
        stop.set()
        thread.join()
    assert errors == []
