"""The Graph connection and push journal in the vault, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from oathdesk.errors import NotFound, PermissionDenied
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.services.entra_store import (
    delete_connection,
    journal,
    load_connection,
    save_connection,
)
from oathdesk.vault.entra_records import write_journal
from oathdesk.vault.keys import MasterKeyError
from oathdesk.vault.schema import graph_connection
from oathdesk.vault.vault import Actor, Vault
from tests.vault_fixtures import ADMIN

SETTINGS = GraphSettings(
    "contoso.onmicrosoft.com", "00000000-1111-2222-3333-444444444444", AuthKind.CLIENT_SECRET
)
SECRET = "Abc8Q~not-a-real-client-secret-0123456789"


def test_connection_round_trip_encrypted_and_bound(vault: Vault) -> None:
    with pytest.raises(NotFound, match="entra login"):
        load_connection(vault)
    save_connection(vault, ADMIN, SETTINGS, secret=SECRET, cache_text=None, signed_in_as="app x")
    stored = load_connection(vault)
    assert stored.secret == SECRET
    assert stored.settings == SETTINGS
    assert SECRET not in repr(stored)
    with vault.engine.connect() as conn:
        row = conn.execute(sa.select(graph_connection)).one()
    assert SECRET.encode() not in row.credential_ciphertext
    # A ciphertext bound to another tenant does not open here.
    with vault.engine.begin() as conn:
        conn.execute(graph_connection.update().values(tenant_id="fabrikam.onmicrosoft.com"))
    with pytest.raises(MasterKeyError):
        load_connection(vault)
    assert delete_connection(vault, ADMIN)
    assert not delete_connection(vault, ADMIN)
    actions = [r["action"] for r in vault.export_audit()]
    assert actions.count("entra.login") == 1
    assert actions.count("entra.logout") == 1
    assert SECRET not in str(vault.export_audit())


def test_only_an_admin_stores_credentials(vault: Vault) -> None:
    with pytest.raises(PermissionDenied):
        save_connection(
            vault, Actor("h", "helpdesk"), SETTINGS, secret=SECRET, cache_text=None, signed_in_as=""
        )


def test_journal_records_steps_and_attempts(vault: Vault) -> None:
    with vault.transaction() as conn:
        write_journal(conn, "A1", upn="a@contoso.com", step="creating")
        write_journal(conn, "A1", upn="a@contoso.com", step="created", device_id="d-1")
        write_journal(conn, "A1", upn="a@contoso.com", step="created", error="no", attempted=True)
    entry = journal(vault)["A1"]
    assert (entry.step, entry.device_id, entry.attempts, entry.last_error) == (
        "created",
        "d-1",
        1,
        "no",
    )
    assert journal(vault, ["B2"]) == {}


def test_services_import_no_interface() -> None:
    probe = (
        "import sys, oathdesk.services.entra, oathdesk.services.entra_push, "
        "oathdesk.services.entra_reconcile\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                check=True).stdout.split())  # fmt: skip
    for interface in ("click", "rich", "fastapi", "oathdesk.cli"):
        assert not any(m == interface or m.startswith(interface + ".") for m in loaded), interface
