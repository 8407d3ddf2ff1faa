"""The API key store on SQLite and PostgreSQL, and `oathdesk operator api-key` end to end."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from oathdesk.errors import InvalidInput, NotFound, PermissionDenied
from oathdesk.vault.api_keys import ApiKeyRefused, ApiKeyStore
from oathdesk.vault.models import Actor, utc_now
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.schema import api_keys
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault_fixtures import ADMIN

HELPDESK = Actor("hugo", "helpdesk")


@pytest.fixture
def sqlite_env(tmp_path: Path, cli: RunCli) -> dict[str, str]:
    environment = {
        "OATHDESK_VAULT": str(tmp_path / "vault.sqlite3"),
        "OATHDESK_KEY_FILE": str(tmp_path / "vault.key"),
    }
    assert cli("init", env=environment).returncode == 0
    return environment


@pytest.fixture
def store(vault: Vault) -> ApiKeyStore:
    OperatorDirectory(vault).add(ADMIN, "hugo", "helpdesk", "a long helpdesk passphrase")
    return ApiKeyStore(vault)


def test_a_key_is_shown_once_and_stored_only_as_a_keyed_hash(
    store: ApiKeyStore, vault: Vault
) -> None:
    created = store.create(ADMIN, "hugo", "ci-export", days=30)
    prefix, key_id, secret = created.secret_text.split("_", 2)
    assert (prefix, key_id) == ("odk", created.key.id)
    assert len(secret) == 43  # 32 random bytes, base64url
    assert secret not in repr(created)
    with vault.engine.connect() as conn:
        stored = conn.execute(sa.select(api_keys)).one()
    assert secret.encode() not in b"".join(str(v).encode() for v in stored)
    assert stored.secret_hash != hashlib.sha256(secret.encode()).digest()
    assert len(stored.secret_hash) == 32
    actor, used = store.authenticate(created.secret_text)
    assert (actor, used) == (HELPDESK, key_id)
    assert store.get(key_id).last_used_at is not None


def test_several_keys_per_operator_each_revoked_alone(store: ApiKeyStore) -> None:
    first = store.create(ADMIN, "hugo", "one")
    second = store.create(ADMIN, "hugo", "two", days=None)
    assert [k.name for k in store.list(HELPDESK, "hugo")] == ["one", "two"]
    assert store.list(ADMIN)[1].expires_at is None
    with pytest.raises(PermissionDenied):
        store.list(HELPDESK)  # everyone's keys: admin only
    store.revoke(HELPDESK, first.key.id)
    with pytest.raises(ApiKeyRefused):
        store.authenticate(first.secret_text)
    assert store.authenticate(second.secret_text)[0] == HELPDESK
    assert [k.status() for k in store.list(ADMIN, "hugo")] == ["revoked", "active"]


def test_refusals(store: ApiKeyStore, vault: Vault) -> None:
    created = store.create(ADMIN, "hugo", "one", days=1)
    for presented in ("", "odk_", created.secret_text[:-1], created.secret_text + "A"):
        with pytest.raises(ApiKeyRefused):
            store.authenticate(presented)
    with pytest.raises(ApiKeyRefused):
        store.authenticate(created.secret_text, now=utc_now() + timedelta(days=2))
    OperatorDirectory(vault).disable(ADMIN, "hugo")
    with pytest.raises(ApiKeyRefused):
        store.authenticate(created.secret_text)
    with pytest.raises(InvalidInput):
        store.create(ADMIN, "hugo", "for a disabled operator")
    with pytest.raises(PermissionDenied):
        store.create(HELPDESK, "hugo", "self-service")
    with pytest.raises(NotFound):
        store.create(ADMIN, "nobody", "x")
    with pytest.raises(InvalidInput):
        store.create(ADMIN, "hugo", "two\nlines")
    reasons = [r["details"]["reason"] for r in vault.export_audit(action="api_key.refused")]
    assert reasons == ["expired", "operator disabled"]


def test_cli_create_list_revoke(cli: RunCli, sqlite_env: dict[str, str]) -> None:
    added = cli(
        "operator",
        "add",
        "hugo",
        "--role",
        "helpdesk",
        "--password-stdin",
        input="a long helpdesk passphrase\n",
        env=sqlite_env,
    )
    assert added.returncode == 0, added.stderr
    created = cli("operator", "api-key", "create", "hugo", "--name", "ci", env=sqlite_env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("odk_")
    assert "shown only now" in created.stderr
    assert key not in created.stderr
    listed = json.loads(cli("operator", "api-key", "list", "--json", env=sqlite_env).stdout)
    assert [(k["operator"], k["name"], k["status"]) for k in listed] == [("hugo", "ci", "active")]
    assert key not in json.dumps(listed)
    revoked = cli("operator", "api-key", "revoke", listed[0]["id"], env=sqlite_env)
    assert revoked.returncode == 0
    assert "revoked" in revoked.stdout
    listed = json.loads(cli("operator", "api-key", "list", "hugo", "--json", env=sqlite_env).stdout)
    assert listed[0]["status"] == "revoked"
    assert_one_line_error(
        cli("operator", "api-key", "create", "nobody", "--name", "x", env=sqlite_env)
    )
    assert_one_line_error(cli("operator", "api-key", "revoke", "0000", env=sqlite_env))
