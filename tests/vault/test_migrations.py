"""Schema migrations: the head constant, and a vault made by an older oathdesk upgraded in place
with its data, its secrets and its audit chain intact."""

from __future__ import annotations

import pytest

from oathdesk.vault import db
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.schema_version import schema_head
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault.conftest import UPN, programmable, read_secret, secret_for
from tests.vault_fixtures import ADMIN, cli_env


def test_schema_head_matches_the_migrations() -> None:
    """The head read from the file names (what every open compares with) is Alembic's head: a
    migration file whose name and revision id disagree fails here."""
    assert db.SCHEMA_HEAD == schema_head() == db.migration_head()


def test_an_older_vault_is_upgraded_by_init(
    vault: Vault, location: VaultLocation, master_key: MasterKey, cli: RunCli
) -> None:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("m1"), programmable("m2")])
    vault.move(ADMIN, "m1", TokenState.BURNED)
    records = vault.audit_count()
    vault.close()
    engine = db.create_engine(location.database_url)
    db.downgrade(engine, "0002")  # back to what oathdesk wrote before 0003
    engine.dispose()

    with pytest.raises(db.StorageError, match=r"older schema \(0002\); run `oathdesk init`"):
        Vault.open(location, master_key)
    env = cli_env(location)
    refused = cli("token", "list", env=env)
    assert_one_line_error(refused)
    upgraded = cli("init", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"from schema 0002 to {db.SCHEMA_HEAD}" in upgraded.stdout

    reopened = Vault.open(location, master_key)
    try:
        assert reopened.audit_count() == records
        assert reopened.verify_audit() == []  # the old records carry no stored links
        assert read_secret(reopened, "m2") == secret_for("m2")
        assert reopened.get_token("m1").state is TokenState.BURNED
        reopened.move(ADMIN, "m1", TokenState.REGISTERED)
        assert reopened.get_token("m1").registered_at is not None
        assert reopened.verify_audit() == []
    finally:
        reopened.close()
