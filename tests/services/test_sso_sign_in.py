"""The one way checked ID-token claims become an operator, and the one way a refusal is audited,
shared by a Microsoft sign-in and a Microsoft approval (services/sso.py), on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from oathdesk.identity.errors import SsoRefused
from oathdesk.identity.tokens import IdentityClaims
from oathdesk.services.sso import refusals_audited, sign_in_from_claims
from oathdesk.vault.operators import OperatorDirectory, SignInRefused
from oathdesk.vault.vault import Vault
from tests.vault_fixtures import ADMIN

TID = "8a6f3c2e-1d4b-4e5f-9a7b-0c1d2e3f4a5b"
OID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT = "192.0.2.7"


def claims(upn: str = "helen@contoso.com", role: str = "helpdesk") -> IdentityClaims:
    return IdentityClaims(
        tid=TID,
        oid=OID,
        upn=upn,
        name="Helen",
        app_roles=frozenset({f"oathdesk.{role}"}),
        role=role,
    )


def test_claims_make_the_operator_and_a_later_sign_in_refreshes_it(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    first = sign_in_from_claims(directory, claims(), client=CLIENT)
    assert (first.name, first.role) == ("helen@contoso.com", "helpdesk")
    again = sign_in_from_claims(directory, claims("helen.h@contoso.com", "admin"), client=CLIENT)
    assert (again.name, again.role) == ("helen.h@contoso.com", "admin")
    records = vault.export_audit(action="operator.sso_signed_in")
    assert [r["actor"] for r in records] == ["helen@contoso.com", "helen.h@contoso.com"]
    assert records[-1]["details"] == {
        "oid": OID,
        "tid": TID,
        "roles": ["oathdesk.admin"],
        "ip": CLIENT,
    }


def test_a_disabled_operator_is_refused_from_its_claims(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    actor = sign_in_from_claims(directory, claims(), client=CLIENT)
    directory.disable(ADMIN, actor.name)
    with pytest.raises(SignInRefused):
        sign_in_from_claims(directory, claims(), client=CLIENT)


def test_a_refusal_is_audited_under_the_operator_its_token_names(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    sign_in_from_claims(directory, claims(), client=CLIENT)
    with pytest.raises(SsoRefused, match="too old"), refusals_audited(directory, client=CLIENT):
        raise SsoRefused("auth_time", "sign-in too old", tid=TID, oid=OID)
    (record,) = vault.export_audit(action="operator.sso_refused")
    assert record["actor"] == "helen@contoso.com"
    assert record["details"] == {"reason": "auth_time", "ip": CLIENT, "oid": OID, "tid": TID}


def test_a_refusal_of_an_unread_token_names_nobody(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    with pytest.raises(SsoRefused), refusals_audited(directory, client=CLIENT):
        raise SsoRefused("no_flow", "no sign-in in progress")
    (record,) = vault.export_audit(action="operator.sso_refused")
    assert record["actor"] == "entra:unknown"
    assert record["details"] == {"reason": "no_flow", "ip": CLIENT}


def test_other_errors_pass_through_unaudited(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    with pytest.raises(RuntimeError), refusals_audited(directory, client=CLIENT):
        raise RuntimeError("not a refusal")
    assert vault.export_audit(action="operator.sso_refused") == []
