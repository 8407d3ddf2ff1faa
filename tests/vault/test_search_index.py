"""The trigram search indexes (vault/search_index.py, migration 0018) on SQLite and PostgreSQL:
what the index finds is what a substring test of every row finds, after each kind of write, with
the operator's text taken literally; pages neither repeat nor skip a row; the index is used."""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.services.directory import search
from oathdesk.vault import db, search_index
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.lookup import search_tokens, search_users
from oathdesk.vault.schema import drift_measurements, token_secrets, tokens, users
from oathdesk.vault.vault import NewToken, Vault
from tests.pg import PostgresServer
from tests.vault_fixtures import ADMIN

DOCS = Path(__file__).resolve().parents[2] / "docs"
ODD = ['say "hi"', "100%", "a_b", "star*", "NEAR", "this OR that", "-minus", "(paren", "x/y"]


def classic(serial: str, upn: str | None, secret: int) -> NewToken:
    return NewToken(
        serial, "Token2", "C202", TokenKind.CLASSIC, secret.to_bytes(4, "big") * 5, upn=upn
    )


def found_by_index(vault: Vault, key: sa.Column[str], text: str) -> list[str]:
    """What the index's condition selects (SQLite: the FTS5 rows and the tail's)."""
    table = key.table
    assert isinstance(table, sa.Table)
    with db.reading(vault.engine) as conn:
        query = sa.select(key).where(search_index.substring_condition(conn, table, text))
        return sorted(conn.execute(query).scalars())


def found_by_scan(vault: Vault, key: sa.Column[str], text: str) -> list[str]:
    """The truth: every row read, its searched columns tested in Python."""
    table = key.table
    assert isinstance(table, sa.Table)
    columns = search_index.SEARCHED[table.name][1]
    with db.reading(vault.engine) as conn:
        every = conn.execute(sa.select(key, *(table.c[c] for c in columns))).all()
    return sorted(row[0] for row in every if any(text.lower() in v.lower() for v in row[1:]))


def index_the_tail(vault: Vault) -> None:
    """SQLite: index every row now (as a search does after an import); PostgreSQL keeps up."""
    with db.writing(vault.engine) as conn:
        if conn.dialect.name == "sqlite":
            search_index.catch_up(conn)


def assert_index_agrees(vault: Vault, *texts: str) -> None:
    for text in texts:
        for key in (users.c.upn, tokens.c.serial):
            assert found_by_index(vault, key, text) == found_by_scan(vault, key, text), text


def test_the_index_finds_what_a_scan_finds_after_every_kind_of_write(vault: Vault) -> None:
    vault.add_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Braun")
    vault.add_token(ADMIN, classic("60234567", "helga.braun@contoso.com", 1))
    texts = ("GA.BR", "a brau", "2345", "contoso", "jd0146", "ahl", "Mustermann", "ABCDEF")
    assert_index_agrees(vault, *texts)  # the rows are in the tail (SQLite)
    assert [u.upn for u in search_users(vault, "GA.BR").items] == ["helga.braun@contoso.com"]
    index_the_tail(vault)
    assert_index_agrees(vault, *texts)  # now from the FTS5 table

    # An import of many, with their new users, after the index caught up.
    vault.add_tokens(
        ADMIN,
        [classic(f"X{i:04d}ABCDEF", f"erika{i}.mustermann@contoso.com", 100 + i) for i in range(5)],
        create_missing_users=True,
    )
    assert_index_agrees(vault, *texts)
    index_the_tail(vault)
    assert_index_agrees(vault, *texts)
    assert len(search_users(vault, "mUSTERm").items) == 5
    assert len(search_tokens(vault, "bcde").items) == 5

    # A rename and a tracking reference on rows already indexed (the update triggers).
    vault.update_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Dahl")
    vault.move(ADMIN, "60234567", TokenState.REGISTERED)
    vault.move(ADMIN, "60234567", TokenState.SHIPPED, carrier="DHL", tracking="JD0146")
    assert_index_agrees(vault, *texts, "dahl", "braun")
    assert search_users(vault, "a brau").items == []
    assert [u.upn for u in search_users(vault, "ga dah").items] == ["helga.braun@contoso.com"]
    assert [t.serial for t in search_tokens(vault, "JD01").items] == ["60234567"]

    # Rows deleted (no command deletes users or tokens today; a future one must stay right),
    # the greatest rowid among them, then new rows that may be given a rowid again.
    with db.writing(vault.engine) as conn:
        gone = sa.select(tokens.c.id).where(tokens.c.serial.like("X0004%"))
        for dependent in (token_secrets, drift_measurements):
            conn.execute(dependent.delete().where(dependent.c.token_id.in_(gone)))
        conn.execute(tokens.delete().where(tokens.c.serial.like("X0004%")))
        conn.execute(users.delete().where(users.c.upn.like("erika4%")))
    assert_index_agrees(vault, *texts, "erika4")
    vault.add_user(ADMIN, "max.mustermann@contoso.com", display_name="Max")
    vault.add_token(ADMIN, classic("Y0001ABCDEF", "max.mustermann@contoso.com", 999))
    assert_index_agrees(vault, *texts, "max.m", "y0001")
    index_the_tail(vault)
    assert_index_agrees(vault, *texts, "max.m", "y0001", "erika4")

    # A purge erases the secret; the token stays findable.
    vault.move(ADMIN, "60234567", TokenState.DELIVERED)
    vault.purge(ADMIN, "60234567", reason="test")
    assert [t.serial for t in search_tokens(vault, "0234567").items] == ["60234567"]


def test_the_operators_text_is_taken_literally(vault: Vault) -> None:
    for i, name in enumerate(ODD):
        vault.add_user(ADMIN, f"odd{i}@contoso.com", display_name=f"Odd {name} end")
    for step in range(2):  # in the tail, then from the index
        for i, name in enumerate(ODD):
            assert [u.upn for u in search_users(vault, name).items] == [f"odd{i}@contoso.com"]
            assert_index_agrees(vault, name)
        for text in ('"""', 'a"b', "***", "OR OR", "NEAR(", "a -b", "%%%", "___", "') --"):
            assert_index_agrees(vault, text)
            search_users(vault, text)  # never an error
        if step == 0:
            index_the_tail(vault)


def test_pages_neither_repeat_nor_skip_a_row(vault: Vault) -> None:
    """Each way a page is read: the index's few rows sorted; many rows read in UPN order (the
    first rows hold a page); many rows not near the start (the index's rows sorted after all)."""
    clustered = [f"zz{i:05d}@x.com" for i in range(search_index.FEW + 100)]
    ahead = [f"aa{i:05d}@x.com" for i in range(2000)]
    batch = [classic(f"S{i:06d}", upn, i + 1) for i, upn in enumerate(ahead + clustered)]
    vault.add_tokens(ADMIN, batch, create_missing_users=True)
    index_the_tail(vault)
    for text, expected in (
        ("zz0012", [u for u in clustered if "zz0012" in u]),  # few
        ("@x.com", sorted(ahead + clustered)),  # many, from the first rows
        ("zz0", clustered),  # many, but after 2,000 others
    ):
        seen: list[str] = []
        cursor = None
        while True:
            page = search_users(vault, text, cursor=cursor, limit=997)
            seen += [u.upn for u in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected, text


def test_short_text_asks_for_a_third_character(vault: Vault) -> None:
    vault.add_user(ADMIN, "al@contoso.com")
    for text in ("a", "al", " al "):
        result = search(vault, ADMIN, text)
        assert result.too_short
        assert not result.users
        assert not result.tokens
    assert [u.upn for u in search(vault, ADMIN, "al@").users] == ["al@contoso.com"]


def test_an_upgraded_vault_finds_its_rows_through_the_index(vault: Vault) -> None:
    vault.add_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Braun")
    vault.add_token(ADMIN, classic("60234567", "helga.braun@contoso.com", 1))
    db.downgrade(vault.engine, "0017")
    db.upgrade(vault.engine)
    with db.reading(vault.engine) as conn:
        if conn.dialect.name == "sqlite":
            assert search_index.behind(conn) == 0  # filled by the migration, no tail
    assert found_by_index(vault, users.c.upn, "a bra") == ["helga.braun@contoso.com"]
    assert found_by_index(vault, tokens.c.serial, "23456") == ["60234567"]
    vault.update_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Dahl")
    assert_index_agrees(vault, "a bra", "a dah")


def test_a_reset_after_a_table_rebuild_puts_every_row_in_the_tail(vault: Vault) -> None:
    """What a future SQLite migration that rebuilds users or tokens must call."""
    vault.add_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Braun")
    index_the_tail(vault)
    with db.writing(vault.engine) as conn:
        if conn.dialect.name != "sqlite":
            return
        search_index.reset_sqlite(conn)
        assert search_index.behind(conn) == 0  # install fills the index at once
        conn.exec_driver_sql("INSERT INTO users_search(users_search) VALUES ('delete-all')")
        conn.exec_driver_sql("UPDATE search_marks SET upto = 0")
    assert_index_agrees(vault, "a bra", "braun@")
    vault.update_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Dahl")
    index_the_tail(vault)
    assert_index_agrees(vault, "a bra", "a dah")


def test_the_search_reads_the_index(vault: Vault) -> None:
    with db.reading(vault.engine) as conn:
        sqlite = conn.dialect.name == "sqlite"
        if not sqlite:  # a tiny table is cheapest to scan: forbid that, the indexes answer
            conn.exec_driver_sql("SET enable_seqscan = off")
        for table in (users, tokens):
            condition = search_index.substring_condition(conn, table, "braun")
            query = sa.select(table).where(condition)
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            plan = " / ".join(str(row[-1]) for row in conn.exec_driver_sql(explain + str(compiled)))
            if sqlite:
                fts = search_index.SEARCHED[table.name][0]
                assert f"SCAN {fts} VIRTUAL TABLE" in plan, plan
                assert f"SEARCH {table.name} USING INTEGER PRIMARY KEY (rowid" in plan, plan
            else:
                for name, on, _ in search_index.PG_INDEXES:
                    assert on != table.name or f"Bitmap Index Scan on {name}" in plan, plan
        if not sqlite:
            conn.exec_driver_sql("RESET enable_seqscan")


def test_without_pg_trgm_the_upgrade_goes_on_and_search_scans(
    postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A role that may create tables but not extensions (no CREATE on the database)."""
    import psycopg

    suffix = uuid.uuid4().hex[:12]
    database, role = f"t_{suffix}", f"limited_{suffix}"
    postgres._admin_execute(f'CREATE DATABASE "{database}"')
    postgres._admin_execute(f'CREATE ROLE "{role}" LOGIN')
    dsn = f"host=127.0.0.1 port={postgres.port} user=postgres dbname={database}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"'.encode())
    url = f"postgresql+psycopg://{role}@127.0.0.1:{postgres.port}/{database}"
    location = VaultLocation(url, tmp_path / "vault.key", None)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    with caplog.at_level(logging.WARNING, logger="oathdesk.vault"):
        vault = Vault.create(location, key, ADMIN)
    try:
        assert "pg_trgm" in caplog.text
        assert db.schema_revision(vault.engine) == db.SCHEMA_HEAD
        vault.add_user(ADMIN, "helga.braun@contoso.com", display_name="Helga Braun")
        assert [u.upn for u in search_users(vault, "A BRAU").items] == ["helga.braun@contoso.com"]
    finally:
        vault.close()


def test_a_search_indexes_a_long_tail_first(vault: Vault) -> None:
    count = search_index.TAIL_SCANNED + 1
    upns = [f"kim{i:05d}@contoso.com" for i in range(count)]
    vault.add_tokens(
        ADMIN,
        [classic(f"T{i:06d}", upn, i + 1) for i, upn in enumerate(upns)],
        create_missing_users=True,
    )
    sqlite = vault.engine.dialect.name == "sqlite"
    if sqlite:
        with db.reading(vault.engine) as conn:
            assert search_index.behind(conn) >= count
    result = search(vault, ADMIN, "kim00123")
    assert [u.upn for u in result.users] == ["kim00123@contoso.com"]
    if sqlite:
        with db.reading(vault.engine) as conn:
            assert search_index.behind(conn) == 0


# Every row of users and tokens numbered afresh, as a reload may do: rowid r becomes n + 1 - r.
# (The update triggers watch the searched columns only, so the index is left stale.)
RENUMBER = """
UPDATE users SET rowid = -rowid;
UPDATE users SET rowid = (SELECT COUNT(*) FROM users) + 1 + rowid;
UPDATE tokens SET rowid = -rowid;
UPDATE tokens SET rowid = (SELECT COUNT(*) FROM tokens) + 1 + rowid;
"""
# The statements docs/vault.md gives an admin to run after a VACUUM or a dump and reload.
DOCS_REBUILD = re.compile(r"```sql\n(BEGIN IMMEDIATE;\n.*?\nCOMMIT;\n)```", re.DOTALL)


def test_the_documented_rebuild_mends_an_index_whose_rowids_were_renumbered(
    sqlite_location: VaultLocation,
) -> None:
    """What a VACUUM may do to users and tokens (text primary keys, so rowids not kept) and a
    reload does: the rows numbered afresh. The stale index then finds the wrong rows; the
    rebuild in docs/vault.md, run as written, makes it find what a scan finds."""
    documented = DOCS_REBUILD.search((DOCS / "vault.md").read_text(encoding="utf-8"))
    assert documented is not None, "docs/vault.md lost its rebuild statements"
    key = MasterKey.generate()
    write_key_file(sqlite_location.key_file, key)
    vault = Vault.create(sqlite_location, key, ADMIN)
    try:
        for i in range(6):
            vault.add_user(ADMIN, f"user{i}.x@contoso.com")
            vault.add_token(ADMIN, classic(f"6023{i}{i}{i}{i}", f"user{i}.x@contoso.com", i + 1))
        index_the_tail(vault)
        texts = ("user1.", "user4.", "23111", "23444")
        assert_index_agrees(vault, *texts)

        assert sqlite_location.sqlite_path is not None
        with contextlib.closing(sqlite3.connect(sqlite_location.sqlite_path)) as raw:
            raw.executescript(RENUMBER)
        assert found_by_index(vault, users.c.upn, "user1.") == ["user4.x@contoso.com"]
        assert found_by_index(vault, tokens.c.serial, "23111") == ["60234444"]

        with contextlib.closing(sqlite3.connect(sqlite_location.sqlite_path)) as raw:
            raw.executescript(documented.group(1))
        assert_index_agrees(vault, *texts)
        with db.reading(vault.engine) as conn:
            assert search_index.behind(conn) == 0  # every row indexed, none left to the tail
        vault.update_user(ADMIN, "user1.x@contoso.com", display_name="Helga Dahl")
        assert_index_agrees(vault, *texts, "a dah")  # the triggers work on the new rowids
    finally:
        vault.close()
