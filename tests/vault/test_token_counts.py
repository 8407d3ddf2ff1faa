"""The tokens per state the vault keeps as it writes (vault/token_counts.py): after every kind of
write, on SQLite and PostgreSQL, they equal a count of the tokens themselves; they fold; a figure
that was off is found and corrected by housekeeping; a view of the start page no longer reads the
tokens table to count; pages count late tokens up to a bound."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.services.alerts import AlertSettings, AlertSink
from oathdesk.services.housekeeping import run_cycle
from oathdesk.vault import console, db, token_counts
from oathdesk.vault import housekeeping as records
from oathdesk.vault.backup import restore_backup, write_backup
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import utc_now
from oathdesk.vault.schema import token_state_changes, tokens
from oathdesk.vault.vault import Vault
from tests.vault.conftest import UPN, classic, programmable
from tests.vault_fixtures import ADMIN

S = TokenState


def kept(vault: Vault) -> dict[str, int]:
    with vault.reading() as conn:
        return token_counts.read(conn)[0]


def counted(vault: Vault) -> dict[str, int]:
    with vault.reading() as conn:
        return token_counts.counted(conn)


def change_rows(vault: Vault) -> int:
    with vault.reading() as conn:
        query = sa.select(sa.func.count()).select_from(token_state_changes)
        return int(conn.execute(query).scalar_one())


def test_every_write_keeps_the_figures_equal_to_a_count(vault: Vault) -> None:
    assert kept(vault) == counted(vault) == {}
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable(f"p{n}") for n in range(4)])
    vault.add_tokens(ADMIN, [classic(f"c{n}") for n in range(3)])
    vault.add_tokens(ADMIN, [programmable("n1", upn="new@contoso.com")], create_missing_users=True)
    assert kept(vault) == counted(vault) == {"assigned": 5, "in_stock": 3}

    for target in (S.BURNED, S.REGISTERED):
        vault.move(ADMIN, "p0", target)
    vault.move(ADMIN, "p0", S.SHIPPED, carrier="DHL", tracking="JD1")
    vault.move(ADMIN, "p0", S.DELIVERED)
    vault.purge(ADMIN, "p0", reason="delivered")
    vault.move(ADMIN, "p1", S.LOST)
    vault.assign(ADMIN, "c0", UPN)
    vault.add_user(ADMIN, "other@contoso.com")
    vault.move(ADMIN, "p2", S.BURNED)
    vault.reassign(ADMIN, "p2", "other@contoso.com", b"\x07" * 20)  # burned -> assigned
    with pytest.raises(Exception, match="cannot become"):
        vault.move(ADMIN, "c1", S.DELIVERED)  # refused: nothing lands, the figures neither
    assert kept(vault) == counted(vault)
    assert kept(vault) == {
        "assigned": 4,
        "in_stock": 2,
        "secret_purged": 1,
        "lost": 1,
    }


def test_a_refused_import_leaves_the_figures_as_they_were(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic("c1")])
    with pytest.raises(Exception, match="c1"):
        vault.add_tokens(ADMIN, [classic("c2"), classic("c1")])  # c1 is there already
    assert kept(vault) == counted(vault) == {"in_stock": 1}


def test_the_figures_fold_and_stay_right(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic(f"c{n:03d}") for n in range(10)])
    # Each move appends two rows (four here); enough of them pass what a view sums before it folds.
    moves = token_counts.FOLD_AFTER // 4 + 1
    with vault.transaction() as conn:
        for _ in range(moves):
            token_counts.record_moves(conn, [("in_stock", "lost")])
            token_counts.record_moves(conn, [("lost", "in_stock")])
    assert change_rows(vault) > token_counts.FOLD_AFTER
    assert console.token_state_counts(vault) == {"in_stock": 10}  # this view folds
    assert change_rows(vault) == 1
    assert kept(vault) == counted(vault) == {"in_stock": 10}


def test_housekeeping_corrects_figures_that_were_off_and_alerts(
    vault: Vault, tmp_path: Path
) -> None:
    vault.add_tokens(ADMIN, [classic(f"c{n}") for n in range(3)])
    with vault.transaction() as conn:  # a write that forgot its change
        conn.execute(tokens.update().where(tokens.c.serial == "c0").values(state="lost"))
    assert kept(vault) == {"in_stock": 3}
    alerts = tmp_path / "alerts.jsonl"
    sink = AlertSink(AlertSettings(str(alerts)), vault)

    result = run_cycle(vault, sink)

    (failed,) = result.failed
    assert failed.name == "token_counts"
    assert "(in_stock -1, lost +1) and are corrected" in failed.error
    assert '"step": "token_counts"' in alerts.read_text()
    assert kept(vault) == counted(vault) == {"in_stock": 2, "lost": 1}
    again = run_cycle(vault, sink, now=lambda: utc_now() + timedelta(hours=2))
    assert "token_counts" not in [step.name for step in again.failed]


def test_a_restored_vault_counts_its_tokens(
    vault: Vault, master_key: MasterKey, tmp_path: Path
) -> None:
    vault.add_tokens(ADMIN, [classic(f"c{n}") for n in range(3)])
    vault.move(ADMIN, "c0", S.LOST)
    backup = tmp_path / "vault.backup"
    write_backup(vault.engine, master_key, backup)
    target = tmp_path / "restored.sqlite3"
    where = VaultLocation(f"sqlite:///{target}", tmp_path / "unused.key", target)
    engine = db.create_engine(where.database_url)
    db.upgrade(engine)
    restore_backup(engine, master_key, backup)
    engine.dispose()
    restored = Vault.open(where, master_key)
    try:
        assert kept(restored) == counted(restored) == {"in_stock": 2, "lost": 1}
    finally:
        restored.close()


def test_the_start_page_counts_without_reading_the_tokens(vault: Vault) -> None:
    vault.add_tokens(ADMIN, [classic(f"c{n}") for n in range(5)])
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(vault.engine, "before_cursor_execute", record)
    try:
        assert console.token_state_counts(vault) == {"in_stock": 5}
    finally:
        sa.event.remove(vault.engine, "before_cursor_execute", record)
    assert seen
    assert not [s for s in seen if "FROM tokens" in s], seen


def test_pages_count_late_tokens_up_to_a_bound(vault: Vault) -> None:
    owned = [programmable(f"p{n}", upn=f"u{n}@contoso.com") for n in range(7)]
    vault.add_tokens(ADMIN, owned, create_missing_users=True)
    long_ago = utc_now() - timedelta(days=vault.settings().undelivered_warning_days + 1)
    with vault.transaction() as conn:
        conn.execute(tokens.update().values(assigned_at=long_ago))
    cutoff = utc_now() - timedelta(days=vault.settings().undelivered_warning_days)
    with vault.reading() as conn:
        assert records.late_count(conn, cutoff) == 7
        assert records.late_count(conn, cutoff, up_to=7) == 7
        assert records.late_count(conn, cutoff, up_to=3) == 4  # "more than 3"
        assert records.purge_due_count(conn, utc_now(), up_to=3) == 0


@pytest.mark.postgres
def test_concurrent_writers_folds_and_a_recount_keep_the_figures_right(
    vault: Vault,
) -> None:
    """Writers append, readers fold and housekeeping recounts at the same time on PostgreSQL:
    no writer waits on another's counter row, none deadlocks, and no change is lost or
    counted twice."""
    if vault.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [classic(f"c{n:03d}") for n in range(40)])
    errors: list[BaseException] = []

    def mover(first: int) -> None:
        try:
            for n in range(first, 40, 4):
                vault.assign(ADMIN, f"c{n:03d}", UPN)
                vault.move(ADMIN, f"c{n:03d}", S.LOST)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    def folder() -> None:
        try:
            for _ in range(15):
                with vault.transaction() as conn:
                    token_counts.fold(conn)
                with vault.transaction() as conn:
                    token_counts.recount(conn)
        except BaseException as error:
            errors.append(error)

    vault.update_settings(ADMIN, max_tokens_per_user=100)
    threads = [threading.Thread(target=mover, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=folder))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert kept(vault) == counted(vault) == {"lost": 40}
