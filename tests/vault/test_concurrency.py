"""Operators working at once: nobody's update is lost, and the audit chain stays gap-free.

Threads share one engine; processes each open the vault themselves, as separate CLI or console
instances would.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.errors import Conflict
from oathdesk.vault import rows
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.schema import audit_log
from oathdesk.vault.vault import Vault
from tests.vault.conftest import UPN, programmable
from tests.vault_fixtures import ADMIN

WRITERS = 4


@pytest.fixture
def registered(vault: Vault) -> Vault:
    vault.add_user(ADMIN, UPN)
    vault.add_token(ADMIN, programmable("race"))
    vault.move(ADMIN, "race", TokenState.REGISTERED)
    return vault


def test_a_stale_version_is_refused(registered: Vault) -> None:
    seen = registered.get_token("race")
    registered.move(ADMIN, "race", TokenState.SHIPPED, carrier="DHL", tracking="1")
    with pytest.raises(Conflict, match="token race changed meanwhile; reload it and try again"):
        registered.move(ADMIN, "race", TokenState.LOST, expected_version=seen.version)
    with pytest.raises(Conflict, match="changed meanwhile"), registered.transaction() as conn:
        rows.update_token(conn, seen, tracking="overwritten")
    assert registered.get_token("race").tracking == "1"


def test_parallel_moves_of_one_token_in_threads(registered: Vault) -> None:
    version = registered.get_token("race").version
    outcomes: list[str] = []
    barrier = threading.Barrier(WRITERS)

    def ship(index: int) -> None:
        barrier.wait()
        try:
            registered.move(
                ADMIN,
                "race",
                TokenState.SHIPPED,
                carrier="DHL",
                tracking=f"T{index}",
                expected_version=version,
            )
            outcomes.append(f"T{index}")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=ship, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1
    assert outcomes.count("conflict") == WRITERS - 1
    assert registered.get_token("race").tracking == winners[0]
    assert len(registered.export_audit(action="token.shipped")) == 1


def test_parallel_appends_keep_the_chain_whole(vault: Vault) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def add_users(index: int) -> None:
        barrier.wait()
        try:
            for n in range(5):
                vault.add_user(ADMIN, f"user{index}-{n}@contoso.com")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=add_users, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(vault.list_users()) == 40
    with vault.transaction() as conn:
        seqs = list(conn.execute(sa.select(audit_log.c.seq).order_by(audit_log.c.seq)).scalars())
    assert seqs == list(range(1, 42))
    assert vault.verify_audit() == []


def _ship_from_another_process(
    url: str, key_file: str, sqlite_path: str, index: int, barrier: object, results: object
) -> None:
    # Runs in a fresh interpreter (spawn): opens the vault like a separate oathdesk instance.
    from oathdesk.vault.keys import read_key_file
    from oathdesk.vault.vault import Vault as ChildVault

    where = VaultLocation(url, Path(key_file), Path(sqlite_path) if sqlite_path else None)
    vault = ChildVault.open(where, read_key_file(where.key_file))
    seen = vault.get_token("race")
    barrier.wait()  # type: ignore[attr-defined]
    try:
        vault.move(
            ADMIN,
            "race",
            TokenState.SHIPPED,
            carrier="DHL",
            tracking=f"P{index}",
            expected_version=seen.version,
        )
        results.put(f"P{index}")  # type: ignore[attr-defined]
    except Conflict as conflict:
        results.put(str(conflict))  # type: ignore[attr-defined]
    finally:
        vault.close()


def test_parallel_writers_in_separate_processes(registered: Vault, location: VaultLocation) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    results = context.Queue()
    processes = [
        context.Process(
            target=_ship_from_another_process,
            args=(
                location.database_url,
                str(location.key_file),
                str(location.sqlite_path or ""),
                index,
                barrier,
                results,
            ),
        )
        for index in range(WRITERS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    winners = [o for o in outcomes if o.startswith("P")]
    assert len(winners) == 1, outcomes
    assert sorted(set(outcomes) - set(winners)) == [
        "token race changed meanwhile; reload it and try again"
    ]
    token = registered.get_token("race")
    assert (token.state, token.tracking) == (TokenState.SHIPPED, winners[0])
    assert registered.verify_audit() == []
