"""Role checks in one place: the vault refuses what an actor's role does not grant, and a refusal
changes nothing (not even the audit log)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from oathdesk.errors import PermissionDenied
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.models import Actor
from oathdesk.vault.roles import Permission, allowed, require
from oathdesk.vault.vault import Vault
from tests.vault.conftest import AUDITOR, HELPDESK, UPN, classic, programmable, read_secret
from tests.vault_fixtures import ADMIN


@pytest.fixture
def stocked(vault: Vault) -> Vault:
    vault.add_user(ADMIN, UPN)
    vault.add_tokens(ADMIN, [programmable("p1"), programmable("p2")])
    vault.move(ADMIN, "p1", TokenState.BURNED)
    return vault


def test_helpdesk_moves_tokens_through_shipping_and_reads_secrets(stocked: Vault) -> None:
    stocked.move(HELPDESK, "p1", TokenState.REGISTERED)
    stocked.move(HELPDESK, "p1", TokenState.SHIPPED, carrier="DHL", tracking="1")
    stocked.move(HELPDESK, "p1", TokenState.DELIVERED)
    assert read_secret(stocked, "p2", HELPDESK)
    assert stocked.export_audit(action="token.delivered")[0]["actor"] == "hugo"


REFUSED: list[tuple[str, Actor, Callable[[Vault, Actor], object]]] = [
    ("manage users", HELPDESK, lambda v, a: v.add_user(a, "x@contoso.com")),
    ("manage tokens", HELPDESK, lambda v, a: v.add_token(a, classic("new"))),
    ("manage tokens", HELPDESK, lambda v, a: v.assign(a, "p2", UPN)),
    ("manage tokens", HELPDESK, lambda v, a: v.move(a, "p2", TokenState.LOST)),
    ("manage tokens", HELPDESK, lambda v, a: v.reassign(a, "p1", UPN, b"x" * 20)),
    ("manage tokens", HELPDESK, lambda v, a: v.purge(a, "p1", reason="x")),
    ("settings", HELPDESK, lambda v, a: v.update_settings(a, retention_days=1)),
    ("reveal", AUDITOR, lambda v, a: read_secret(v, "p1", a)),
    ("ship", AUDITOR, lambda v, a: v.move(a, "p1", TokenState.REGISTERED)),
    ("manage tokens", Actor("eve", "intruder"), lambda v, a: v.add_token(a, classic("n2"))),
]


@pytest.mark.parametrize(("what", "actor", "action"), REFUSED)
def test_refusals_change_nothing(
    stocked: Vault, what: str, actor: Actor, action: Callable[[Vault, Actor], object]
) -> None:
    before = (stocked.export_audit(), stocked.list_tokens(), stocked.list_users())
    with pytest.raises(PermissionDenied, match=f"{actor.name} \\({actor.role}\\) may not {what}"):
        action(stocked, actor)
    assert (stocked.export_audit(), stocked.list_tokens(), stocked.list_users()) == before


def test_require_both_ways() -> None:
    require(ADMIN, Permission.EXPORT_SECRETS)
    require("local:root", "admin", Permission.MANAGE_OPERATORS)
    with pytest.raises(PermissionDenied, match="ask an admin"):
        require(HELPDESK, Permission.EXPORT_SECRETS)
    with pytest.raises(PermissionDenied):
        require("x", "auditor", Permission.LOOK_UP)
    assert allowed("auditor", Permission.READ_AUDIT)
    assert not allowed("superuser", Permission.READ_AUDIT)
