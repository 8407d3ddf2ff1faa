"""`oathdesk entra pull`, `mfa-state`, `default-method`, `unassign`, `delete`, and roles."""

from __future__ import annotations

import base64
import json
import os

import pytest

from oathdesk.errors import PermissionDenied
from oathdesk.services.entra_session import open_session
from oathdesk.vault.lifecycle import TokenState
from oathdesk.vault.vault import Actor
from tests.conftest import assert_one_line_error
from tests.graph.entra_helpers import ADMIN, EntraWorld, world

__all__ = ["world"]


def _b32() -> str:
    return base64.b32encode(os.urandom(20)).decode()


def test_pull_reports_every_kind_of_difference(world: EntraWorld) -> None:
    alice, bob = "alice@contoso.onmicrosoft.com", "bob@contoso.onmicrosoft.com"
    (pushed, twice) = world.add_tokens(alice, 2, first=1)
    world.login()
    assert world.cli("entra", "push").returncode == 0
    # The same serial uploaded again by CSV: a second device, a second method on alice.
    world.fake.add_device(
        twice, _b32(), assign_to=alice, activated=True, allow_duplicate_serial=True
    )
    # A token someone registered in Entra directly.
    world.fake.add_device("77770001", _b32(), assign_to=alice, activated=True)
    # The vault says registered, Entra never heard of it.
    (ghost,) = world.add_tokens(bob, 1, first=50)
    world.vault.move(ADMIN, ghost, TokenState.REGISTERED)
    # Bob has too many methods; carol is only in the vault.
    for _ in range(6):  # registered before Entra's limit of five, say
        world.fake.add_software_method(bob, allow_over_limit=True)
    world.add_tokens("carol@contoso.onmicrosoft.com", 1, first=60, in_entra=False)

    world.fake.page_size = 2  # the inventory comes back in pages: follow @odata.nextLink
    result = world.cli("entra", "pull", "--json")
    assert result.returncode == 0, result
    assert any("skiptoken" in target for _, target, _ in world.fake.requests)
    report = json.loads(result.stdout)
    found = {(d["kind"], d["serial"], d["upn"]) for d in report["differences"]}
    assert ("unknown_to_vault", "77770001", "") in found
    assert ("not_in_entra", ghost, bob) in found
    assert ("duplicate", twice, "") in found  # two inventory devices
    assert ("duplicate", twice, alice) in found  # two methods on alice
    assert ("over_limit", "", bob) in found
    assert ("user_not_found", "", "carol@contoso.onmicrosoft.com") in found
    assert not any(kind == "not_in_entra" and serial == pushed for kind, serial, _ in found)
    assert report["inventory_size"] == 4

    table = world.cli("entra", "pull")
    assert "in Entra, not in the vault" in table.stdout
    assert "user has more than 5 OATH methods" in table.stdout
    assert "difference(s)" in table.stdout
    assert "methods.list" in world.audit_text()


def test_pull_on_a_tenant_matching_the_vault_finds_nothing(world: EntraWorld) -> None:
    world.add_tokens("dan@contoso.onmicrosoft.com", 2, first=1)
    world.fake.wrap_device_list = True  # the reference example's shape of the inventory list
    world.login()
    world.cli("entra", "push")
    result = world.cli("entra", "pull")
    assert result.returncode == 0, result
    assert "0 difference(s); 1 users, 2 OATH methods, 2 inventory tokens checked" in result.stdout


def test_mfa_state_and_default_method(world: EntraWorld) -> None:
    upn = "erin@contoso.onmicrosoft.com"
    world.fake.add_user(upn)
    world.login()
    shown = world.cli("entra", "mfa-state", upn)
    assert shown.stdout.strip() == f"per-user MFA of {upn}: disabled"
    changed = world.cli("entra", "mfa-state", upn, "enforced")
    assert changed.stdout.strip() == f"per-user MFA of {upn}: enforced"
    assert world.fake.mfa_state_of(upn) == "enforced"
    result = world.cli("entra", "default-method", upn, "oath")
    assert result.returncode == 0, result
    prefs = world.fake.sign_in_preferences_of(upn)
    assert prefs["userPreferredMethodForSecondaryAuthentication"] == "oath"
    wrong = world.cli("entra", "mfa-state", upn, "sometimes")
    assert_one_line_error(wrong)
    missing = world.cli("entra", "mfa-state", "nobody@contoso.onmicrosoft.com")
    assert_one_line_error(missing)
    assert "404" in missing.stderr
    audit = world.audit_text()
    assert "mfa.update" in audit
    assert "preferences.update" in audit


def test_unassign_then_delete_retires_a_token(world: EntraWorld) -> None:
    upn = "finn@contoso.onmicrosoft.com"
    (serial,) = world.add_tokens(upn, 1, first=1)
    world.login()
    world.cli("entra", "push")
    refused = world.cli("entra", "delete", serial)
    assert_one_line_error(refused)
    assert f"run `oathdesk entra unassign {serial}` first" in refused.stderr
    assert world.fake.device(serial)["status"] == "activated"

    result = world.cli("entra", "unassign", serial)
    assert result.returncode == 0, result
    assert world.fake.device(serial)["status"] == "available"
    assert world.fake.methods_of(upn) == []
    again = world.cli("entra", "unassign", serial)
    assert_one_line_error(again)
    assert "not assigned" in again.stderr

    deleted = world.cli("entra", "delete", serial)
    assert deleted.returncode == 0, deleted
    assert world.fake.devices == []
    unknown = world.cli("entra", "delete", serial)
    assert_one_line_error(unknown)
    assert f"no token with serial {serial}" in unknown.stderr
    audit = world.audit_text()
    assert "methods.unassign" in audit
    assert "devices.delete" in audit


def test_only_an_admin_may_use_the_graph_connection(world: EntraWorld) -> None:
    world.login()
    with pytest.raises(PermissionDenied):
        open_session(world.vault, Actor("mia", "helpdesk"))
    with open_session(world.vault, ADMIN) as session:
        assert session.api.policy_state() == "enabled"


@pytest.mark.parametrize("spare", ["listed after", "listed before"])
def test_a_spare_device_with_the_same_serial_is_a_duplicate_not_a_missing_activation(
    world: EntraWorld, spare: str
) -> None:
    """Entra holds the user's activated token and a spare, unassigned device with the same
    serial: pull names the duplicate with both devices, and no 'not activated'."""
    upn = "gil@contoso.onmicrosoft.com"
    (serial,) = world.add_tokens(upn, 1, first=1)
    world.login()
    seed = base64.b32encode(world.seeds[serial]).decode()
    if spare == "listed after":
        assert world.cli("entra", "push").returncode == 0
        activated_id = world.fake.device(serial)["id"]
        spare_id = world.fake.add_device(serial, _b32(), allow_duplicate_serial=True)
    else:
        spare_id = world.fake.add_device(serial, _b32())
        activated_id = world.fake.add_device(
            serial, seed, assign_to=upn, activated=True, allow_duplicate_serial=True
        )
        world.vault.move(ADMIN, serial, TokenState.REGISTERED)
    result = world.cli("entra", "pull", "--json")
    assert result.returncode == 0, result
    found = json.loads(result.stdout)["differences"]
    assert [d["kind"] for d in found] == ["duplicate"], found
    detail = found[0]["detail"]
    assert f"{activated_id} (activated, assigned to" in detail
    assert f"{spare_id} (available" in detail


def test_unassign_and_delete_pick_the_right_one_of_two_devices_with_a_serial(
    world: EntraWorld,
) -> None:
    upn = "hale@contoso.onmicrosoft.com"
    (serial,) = world.add_tokens(upn, 1, first=1)
    world.login()
    assert world.cli("entra", "push").returncode == 0
    ours = world.fake.device(serial)["id"]
    spare = world.fake.add_device(serial, _b32(), allow_duplicate_serial=True)
    deleted = world.cli("entra", "delete", serial)  # only the spare can go: it goes
    assert deleted.returncode == 0, deleted
    assert [d["id"] for d in world.fake.devices] == [ours]
    world.fake.add_device(serial, _b32(), allow_duplicate_serial=True)
    unassigned = world.cli("entra", "unassign", serial)  # only ours is assigned
    assert unassigned.returncode == 0, unassigned
    assert world.fake.methods_of(upn) == []
    both_spare = world.cli("entra", "delete", serial)  # now two unassigned: which?
    assert_one_line_error(both_spare)
    assert ours in both_spare.stderr
    assert spare not in both_spare.stderr  # deleted before
