"""The reveal-limit override on SQLite and PostgreSQL: an admin's approval lets exactly one more
reveal for that user through, by another operator, within 10 minutes; refusals leave no
approval behind."""

from __future__ import annotations

import time

import pytest

from oathdesk.errors import InvalidInput, PermissionDenied
from oathdesk.services.reveal import (
    Channel,
    IdentityCheck,
    RevealJob,
    RevealRequest,
    VerificationMethod,
    reveal_batch,
)
from oathdesk.services.reveal_override import approve_one_more_reveal
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import SignInRefused
from oathdesk.vault.vault import Vault
from tests.vault.conftest import UPN, programmable
from tests.vault_fixtures import ADMIN
from tests.web.conftest import enrol

REQUEST = RevealRequest(UPN, IdentityCheck(VerificationMethod.CALLBACK, "INC-1"), Channel.PHONE)


def revealed(vault: Vault, actor: Actor, count: int = 1, at: float | None = None) -> list[bool]:
    outcomes = reveal_batch(vault, [RevealJob(REQUEST, actor=actor)] * count, at=at)
    return [outcome.result is not None for outcome in outcomes]


@pytest.mark.slow
def test_one_more_reveal_for_one_call(vault: Vault) -> None:
    admin = enrol(vault, "ada", "admin", "correct horse battery staple")
    hugo = Actor("hugo", "helpdesk")
    vault.add_user(ADMIN, UPN, phone="+41790000000")
    vault.add_token(ADMIN, programmable("P1"))
    vault.update_settings(ADMIN, reveal_limit_per_user=1)
    assert revealed(vault, hugo, 2) == [True, False]
    ada = Actor("ada", "admin")

    with pytest.raises(PermissionDenied):
        approve_one_more_reveal(
            vault, hugo, UPN, ticket="T", password=admin.password, code=admin.unspent_code()
        )
    with pytest.raises(InvalidInput, match="ticket"):
        approve_one_more_reveal(
            vault, ada, UPN, ticket=" ", password=admin.password, code=admin.unspent_code()
        )
    with pytest.raises(SignInRefused):
        approve_one_more_reveal(
            vault, ada, UPN, ticket="T", password="not it at all!", code=admin.unspent_code()
        )
    assert vault.export_audit(action="reveal.override_approved") == []

    approve_one_more_reveal(
        vault, ada, UPN, ticket="INC-2", password=admin.password, code=admin.next_code()
    )
    assert revealed(vault, ada) == [False]  # not by the admin who approved it
    assert revealed(vault, hugo, at=time.time() + 601) == [False]  # lapsed after 10 minutes
    assert revealed(vault, hugo, 2) == [True, False]  # once
    assert revealed(vault, hugo) == [False]
    (approval,) = vault.export_audit(action="reveal.override_approved")
    uses = [r for r in vault.export_audit(action="code.revealed") if "override_seq" in r["details"]]
    assert [(r["details"]["override_seq"], r["details"]["limit_override_by"]) for r in uses] == [
        (approval["seq"], "ada")
    ]
