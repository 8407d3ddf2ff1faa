"""What a page costs in statements and round trips, on real SQLite and PostgreSQL (issue 15).

A page of 100 tokens runs as many statements as a page of 5 (the owners and secrets of its
tokens are one look-up, never one per token). On PostgreSQL a read sends its statements and
nothing else: no BEGIN and ROLLBACK around them, no ping on every checkout of a pooled
connection (counted from libpq's own trace of the wire); and a connection the server closed
is still replaced before a read uses it, as the ping did. The console's check of the audit
records added since its last check reads a short tail in one round trip."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from oathdesk.vault import audit_verify, db, lookup
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.schema import audit_log
from oathdesk.vault.vault import Vault
from tests.pg import PostgresServer
from tests.vault.conftest import programmable
from tests.vault.test_audit import execute
from tests.vault_fixtures import ADMIN


def add_owned_tokens(vault: Vault, count: int) -> None:
    """``count`` tokens, every other one held by a user of its own (the rest in stock)."""
    vault.add_tokens(
        ADMIN,
        [
            programmable(f"R{n:04d}", upn=f"u{n}@example.com" if n % 2 else None)
            for n in range(count)
        ],
        create_missing_users=True,
    )


class Statements:
    """Every statement an engine sends through SQLAlchemy while the block runs."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(statement)


def test_a_page_of_100_tokens_runs_as_many_statements_as_a_page_of_5(vault: Vault) -> None:
    add_owned_tokens(vault, 120)
    counts = {}
    for limit in (5, 100):
        with Statements(vault.engine) as log:
            page = lookup.token_page(vault, limit=limit)
            history = lookup.drift_history(vault, page.items)
        assert len(page.items) == limit
        assert history == {}
        counts[limit] = len(log.seen)
        if vault.engine.dialect.name == "sqlite":  # the owners and secrets with the page
            assert sum(sql.startswith("SELECT") for sql in log.seen) == 2, log.seen
    assert counts[100] == counts[5], counts
    # The owners and secrets came with the page (every other token has an owner), and each
    # token is the one a look-up of its own reads.
    shown = lookup.token_page(vault, limit=100).items
    assert [t.upn for t in shown[:4]] == [None, "u1@example.com", None, "u3@example.com"]
    assert all(t.has_secret for t in shown)
    assert shown == [vault.get_token(t.serial) for t in shown]


# -- PostgreSQL: the wire ---------------------------------------------------------------------


@pytest.fixture
def pg_vault(postgres: PostgresServer, tmp_path: Path) -> Iterator[Vault]:
    location = VaultLocation(postgres.create_database(), tmp_path / "vault.key", None)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, ADMIN)
    yield vault
    vault.close()


class Wire:
    """The messages libpq sends and receives on every connection checked out while the block
    runs (libpq's trace, from before the pool's own checks of a connection)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.text = ""
        self._files: list[Any] = []
        self._open = contextlib.ExitStack()

    def __enter__(self) -> Wire:
        sa.event.listen(self.engine, "checkout", self._trace, insert=True)
        sa.event.listen(self.engine, "checkin", self._untrace)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "checkout", self._trace)
        sa.event.remove(self.engine, "checkin", self._untrace)
        with self._open:
            for file in self._files:
                file.seek(0)
                self.text += file.read().decode()

    def _trace(self, dbapi_connection: Any, *_: Any) -> None:
        from psycopg.pq import Trace

        file = self._open.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed on exit)
        self._files.append(file)
        dbapi_connection.pgconn.trace(file.fileno())
        dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)

    def _untrace(self, dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.pgconn.untrace()

    @property
    def round_trips(self) -> int:
        """Each round trip ends with the server's ReadyForQuery."""
        return sum("\tReadyForQuery\t" in line for line in self.text.splitlines())

    @property
    def simple_queries(self) -> list[str]:
        """The statements sent as text alone (BEGIN, ROLLBACK, a ping's ";")."""
        return [
            line.split("\tQuery\t", 1)[1].strip()
            for line in self.text.splitlines()
            if line.startswith("F") and "\tQuery\t" in line
        ]


def test_a_read_on_postgresql_sends_only_its_statements(pg_vault: Vault) -> None:
    add_owned_tokens(pg_vault, 120)
    lookup.token_page(pg_vault, limit=100)  # the pool holds a connection now
    with Statements(pg_vault.engine) as log, Wire(pg_vault.engine) as wire:
        page = lookup.token_page(pg_vault, limit=100)
    assert len(page.items) == 100
    assert wire.simple_queries == []  # no BEGIN, ROLLBACK or ping
    assert wire.round_trips == len(log.seen) == 2  # the page; its owners and secrets


def test_a_search_on_postgresql_sends_only_its_statements_none_prepared(pg_vault: Vault) -> None:
    """Each search is planned for its own text (a plan kept for any ``LIKE $1`` walked every
    row): psycopg prepares none of its statements, however often they run, and no session
    setting is sent around them (SET and RESET were two round trips a search)."""
    add_owned_tokens(pg_vault, 12)
    with Statements(pg_vault.engine) as log, Wire(pg_vault.engine) as wire:
        for _ in range(8):  # psycopg prepares a statement on its fifth run
            assert len(lookup.search_users(pg_vault, "example.com").items) == 6
            assert len(lookup.search_tokens(pg_vault, "r000").items) == 10
    assert wire.simple_queries == []
    assert wire.round_trips == len(log.seen)
    parsed = [line for line in wire.text.splitlines() if "\tParse\t" in line]
    assert parsed
    assert all('\tParse\t "" ' in line for line in parsed), parsed[-1][:200]
    with db.reading(pg_vault.engine) as conn:
        # The pool's connection still prepares other statements as before.
        driver: Any = conn.connection.dbapi_connection
        assert driver.prepare_threshold == 5


def test_a_connection_idle_for_long_is_pinged_first(
    pg_vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookup.token_page(pg_vault)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with Wire(pg_vault.engine) as wire:
        lookup.token_page(pg_vault)
    assert wire.simple_queries == ['";"']


def test_a_connection_the_server_closed_is_replaced_before_a_read(
    pg_vault: Vault, postgres: PostgresServer
) -> None:
    """A server restart or an idle timeout ends a pooled connection's session: the next read
    gets a new connection instead of failing."""
    add_owned_tokens(pg_vault, 3)
    with pg_vault.reading() as first, pg_vault.reading():
        first.execute(sa.text("SELECT 1"))  # two connections in the pool
    import psycopg

    name = pg_vault.engine.url.database
    with psycopg.connect(
        postgres.url("postgres").replace("+psycopg", ""), autocommit=True
    ) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the sessions did not end"
            time.sleep(0.02)
    assert [t.serial for t in lookup.token_page(pg_vault).items] == ["R0000", "R0001", "R0002"]
    with pg_vault.reading() as first, pg_vault.reading() as second:
        assert first.execute(sa.text("SELECT 1")).scalar() == 1
        assert second.execute(sa.text("SELECT 1")).scalar() == 1


# -- the console's audit check of what is new ---------------------------------------------------


@pytest.mark.parametrize("new", [5, 8, 9])
def test_a_check_of_what_is_new_reads_every_new_record(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, new: int
) -> None:
    """Batches of 4: the new records end inside a batch, at its end, one past it."""
    monkeypatch.setattr(audit_verify, "FETCH_ROWS", 4)
    first = vault.check_audit()
    assert first.end is not None
    for index in range(new):
        vault.add_user(ADMIN, f"late{index}@contoso.com")
    later = vault.check_audit(first.end)
    assert later.problems == []
    assert later.end is not None
    assert later.end.seq == first.end.seq + new
    gone = first.end.seq + 4  # the last of the first batch
    execute(vault, audit_log.delete().where(audit_log.c.seq == gone))
    assert vault.check_audit(first.end).problems == [f"record {gone} missing (deleted)"]


def test_a_check_of_a_few_new_records_reads_them_in_one_round_trip(pg_vault: Vault) -> None:
    first = pg_vault.check_audit()
    assert first.end is not None
    pg_vault.add_user(ADMIN, "late@contoso.com")
    with Wire(pg_vault.engine) as wire:
        later = pg_vault.check_audit(first.end)
    assert later.problems == []
    assert later.end is not None
    assert later.end.seq == first.end.seq + 1
    # The probe for "nothing new" (something is), then BEGIN, the record the last check ended
    # at, the last seq (whether to check in halves), the new records, the head, ROLLBACK: no
    # server-side cursor's DECLARE, FETCH and CLOSE.
    assert "DECLARE" not in wire.text
    assert wire.round_trips <= 7
    # Nothing new since (the common console view): the probe alone, no snapshot.
    with Wire(pg_vault.engine) as wire:
        again = pg_vault.check_audit(later.end)
    assert (again.problems, again.end, again.records) == ([], later.end, later.end.seq)
    assert wire.round_trips == 1
    assert "BEGIN" not in wire.text
