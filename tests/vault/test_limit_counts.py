"""The 24-hour reveal limits count from the audit log: the counts are exact, use the indexes of
migration 0009 (one user's or one operator's records only, not the whole day's), and the
migration comes off and on again."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from oathdesk.vault import db, rows
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN

ACTION = "code.revealed"
HUGO = Actor("hugo", "helpdesk")


def _record(vault: Vault, actor: Actor, upn: str, action: str = ACTION) -> None:
    with vault.transaction() as conn:
        vault.lock_audit(conn)
        vault.audit(conn, actor, action, upn=upn)


def test_counts_are_per_user_and_per_operator(vault: Vault) -> None:
    for upn in ("a@contoso.com", "a@contoso.com", "b@contoso.com"):
        _record(vault, HUGO, upn)
    _record(vault, ADMIN, "a@contoso.com")
    _record(vault, HUGO, "a@contoso.com", action="token.secret_read")
    since = utc_now() - timedelta(hours=24)
    with vault.transaction() as conn:
        by_user = vault.count_audit(conn, action=ACTION, since=since, upn="a@contoso.com")
        by_hugo = vault.count_audit(conn, action=ACTION, since=since, actor="hugo")
        both = vault.count_audit(
            conn, action=ACTION, since=since, actor="hugo", upn="b@contoso.com"
        )
        later = vault.count_audit(conn, action=ACTION, since=utc_now() + timedelta(seconds=1))
    assert (by_user, by_hugo, both, later) == (3, 3, 1, 0)
    assert vault.verify_audit() == []


def test_limit_counts_read_only_the_covering_indexes() -> None:
    engine = db.create_engine("sqlite://")
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            for by_actor, by_upn, index in (
                (False, True, "ix_audit_log_action_upn_at"),
                (True, False, "ix_audit_log_action_actor_at"),
            ):
                query = rows._COUNT_AUDIT[by_actor, by_upn]
                compiled = query.compile(dialect=conn.dialect)
                plan = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}",
                    tuple(
                        {"action": ACTION, "since": "2026", "actor": "hugo", "upn": "a@b.c"}[name]
                        for name in compiled.positiontup or ()
                    ),
                ).all()
                detail = " ".join(str(row[-1]) for row in plan)
                assert f"COVERING INDEX {index}" in detail, detail
    finally:
        engine.dispose()


def test_migration_0009_comes_off_and_on_again(vault: Vault) -> None:
    _record(vault, HUGO, "a@contoso.com")
    engine = vault.engine

    def indexes() -> set[str]:
        with engine.connect() as conn:
            return {index["name"] or "" for index in sa.inspect(conn).get_indexes("audit_log")}

    assert {"ix_audit_log_action_upn_at", "ix_audit_log_action_actor_at"} <= indexes()
    db.downgrade(engine, "0008")
    assert not {"ix_audit_log_action_upn_at", "ix_audit_log_action_actor_at"} & indexes()
    db.upgrade(engine)
    assert {"ix_audit_log_action_upn_at", "ix_audit_log_action_actor_at"} <= indexes()
    assert vault.verify_audit() == []
