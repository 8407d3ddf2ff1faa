"""The vault's side of Entra sign-in, on SQLite and PostgreSQL: operators keyed by tid + oid,
the settings with their credential encrypted, flows taken once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from oathdesk.vault import sso as stored
from oathdesk.vault.operators import OperatorDirectory, SignInRefused
from oathdesk.vault.schema import operators, sso_settings
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN

TID = "8a6f3c2e-1d4b-4e5f-9a7b-0c1d2e3f4a5b"
OID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SECRET = "a~client~secret~that~must~not~show~0123"


def sign_in(vault: Vault, upn: str, role: str = "helpdesk", oid: str = OID) -> str:
    actor = OperatorDirectory(vault).sign_in_sso(
        tid=TID,
        oid=oid,
        upn=upn,
        display_name="Helen",
        role=role,
        app_roles=[f"oathdesk.{role}"],
        client="192.0.2.7",
    )
    return actor.name


def test_an_operator_is_created_once_and_refreshed_by_oid(vault: Vault) -> None:
    assert sign_in(vault, "helen@contoso.com") == "helen@contoso.com"
    # Renamed in Entra and given another role: the same record, refreshed.
    assert sign_in(vault, "helen.h@contoso.com", role="admin") == "helen.h@contoso.com"
    with vault.reading() as conn:
        rows = conn.execute(sa.select(operators).where(operators.c.sso_oid == OID)).all()
    assert len(rows) == 1
    assert (rows[0].name, rows[0].role) == ("helen.h@contoso.com", "admin")
    actions = [r["action"] for r in vault.export_audit(actor="helen.h@contoso.com")]
    assert actions == ["operator.sso_signed_in"]


def test_an_sso_operator_has_no_usable_local_password(vault: Vault) -> None:
    sign_in(vault, "helen@contoso.com")
    with pytest.raises(SignInRefused):
        OperatorDirectory(vault).authenticate("helen@contoso.com", "!entra", "000000")


def test_a_name_held_by_a_local_operator_is_not_merged(vault: Vault) -> None:
    OperatorDirectory(vault).add(ADMIN, "helen@contoso.com", "admin", "a long local password 9")
    with pytest.raises(SignInRefused, match="belongs to another account"):
        sign_in(vault, "helen@contoso.com")
    (record,) = vault.export_audit(action="operator.sso_refused")
    assert record["details"]["reason"] == "name_taken"


def test_a_disabled_sso_operator_is_refused(vault: Vault) -> None:
    name = sign_in(vault, "helen@contoso.com")
    OperatorDirectory(vault).disable(ADMIN, name)
    with pytest.raises(SignInRefused, match="disabled"):
        sign_in(vault, name)


def test_the_credential_is_stored_encrypted_and_never_audited(vault: Vault) -> None:
    values = {
        "tenant_id": TID,
        "client_id": OID,
        "credential_kind": "client_secret",
        "redirect_url": "https://oathdesk.contoso.com/auth/callback",
        "authority_host": "https://login.microsoftonline.com",
        "ca_bundle": None,
    }
    stored.save_settings(vault, ADMIN, values, credential=SECRET)
    with vault.reading() as conn:
        row = conn.execute(sa.select(sso_settings)).one()
    assert SECRET.encode() not in b"".join(
        str(value).encode() if not isinstance(value, bytes) else value for value in row
    )
    loaded = stored.load_settings(vault)
    assert loaded is not None
    assert loaded.credential == SECRET
    assert SECRET not in repr(loaded)
    assert SECRET not in str(vault.export_audit())
    assert stored.local_sign_in_policy(vault) == "on"
    stored.set_local_sign_in(vault, ADMIN, "off")
    assert stored.local_sign_in_policy(vault) == "off"
    stored.set_enabled(vault, ADMIN, False)
    assert stored.local_sign_in_policy(vault) == "on"  # never locked out of a console


def test_a_flow_is_taken_once(vault: Vault) -> None:
    stored.put_flow(vault, "h" * 64, {"state": "s", "nonce": "n"}, "/search")
    assert stored.take_flow(vault, "h" * 64) == ({"state": "s", "nonce": "n"}, "/search")
    assert stored.take_flow(vault, "h" * 64) is None


def test_microsoft_operators_have_no_local_actions(vault: Vault) -> None:
    """No TOTP to reset and no password and code to approve with: one line each, nothing
    counted against them (a four-eyes attempt is not a failed sign-in of theirs)."""
    from oathdesk.errors import InvalidInput

    name = sign_in(vault, "helen@contoso.com", role="admin")
    directory = OperatorDirectory(vault)
    listed = {operator.name: operator.sso for operator in directory.list()}
    assert listed[name] is True
    with pytest.raises(InvalidInput, match="signs in with Microsoft") as reset:
        directory.reset_totp(ADMIN, name)
    assert "\n" not in reset.value.message
    with pytest.raises(InvalidInput, match="cannot approve"):
        directory.approve(name, "any password at all", "123456")
    assert vault.export_audit(action="operator.totp_reset") == []
    assert vault.export_audit(action="operator.signin_failed") == []
    with vault.reading() as conn:
        row = conn.execute(sa.select(operators).where(operators.c.name == name)).one()
    assert row.failed_attempts == 0
