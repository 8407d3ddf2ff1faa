"""Editing what is on file about a user (display name, phone number, notes): one audit record
with each changed field before and after, admins only, on SQLite and PostgreSQL; and the CLI's
`oathdesk user edit` through the real console script."""

from __future__ import annotations

import json

import pytest

from oathdesk.errors import InvalidInput, NotFound, PermissionDenied
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli, assert_one_line_error
from tests.vault.conftest import HELPDESK, UPN
from tests.vault_fixtures import ADMIN


def edits(vault: Vault) -> list[dict[str, object]]:
    return [
        {"actor": r["actor"], "upn": r["upn"], **r["details"]}
        for r in vault.export_audit(action="user.updated")
    ]


def test_an_edit_is_one_audit_record_with_before_and_after(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN, display_name="Helga", phone="+41 79 000 00 00")
    user = vault.update_user(
        ADMIN, UPN.upper(), display_name=" Helga Braun ", phone="0044 20 7946 0958", notes=""
    )
    assert (user.display_name, user.phone, user.notes) == ("Helga Braun", "+442079460958", "")
    assert vault.get_user(UPN) == user
    # Notes were empty and stay empty: only what changed is recorded.
    assert edits(vault) == [
        {
            "actor": ADMIN.name,
            "upn": UPN,
            "before": {"display_name": "Helga", "phone": "+41790000000"},
            "after": {"display_name": "Helga Braun", "phone": "+442079460958"},
        }
    ]
    # None leaves a field as it is; the same values again change nothing and record nothing.
    assert vault.update_user(ADMIN, UPN, notes="back desk 3").phone == "+442079460958"
    count = vault.audit_count()
    vault.update_user(ADMIN, UPN, display_name="Helga Braun", notes="back desk 3")
    assert vault.audit_count() == count
    assert vault.update_user(ADMIN, UPN, phone="").phone == ""
    assert edits(vault)[-1]["after"] == {"phone": ""}


def test_edits_are_refused_whole(vault: Vault) -> None:
    vault.add_user(ADMIN, UPN, display_name="Helga", phone="+41790000000")
    with pytest.raises(PermissionDenied):
        vault.update_user(HELPDESK, UPN, phone="+442079460958")
    with pytest.raises(NotFound, match="oathdesk user add"):
        vault.update_user(ADMIN, "nobody@contoso.com", notes="x")
    with pytest.raises(InvalidInput, match="country code"):
        vault.update_user(ADMIN, UPN, display_name="Helga Braun", phone="079 000 00 00")
    # The valid name in the same edit was not stored either.
    assert vault.get_user(UPN).display_name == "Helga"
    assert edits(vault) == []


def test_adding_a_user_checks_the_phone_number_too(vault: Vault) -> None:
    # Found while building the edit: `user add --phone` stored whatever was typed, so the
    # number a callback dials could be "ask reception" or lack its country code.
    with pytest.raises(InvalidInput, match="country code"):
        vault.add_user(ADMIN, UPN, phone="ask reception")
    with pytest.raises(InvalidInput, match="one line"):
        vault.add_user(ADMIN, UPN, display_name="Helga\nadmin")
    assert vault.add_user(ADMIN, UPN, phone="+41 79 000 00 00").phone == "+41790000000"


def test_user_edit_on_the_command_line(sqlite_env: dict[str, str], cli: RunCli) -> None:
    env = sqlite_env

    def ok(*args: str) -> str:
        result = cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    ok("user", "add", UPN, "--name", "Helga")
    said = ok("user", "edit", UPN, "--phone", "+44 20 7946 0958", "--notes", "desk 3")
    assert said.strip() == f"updated user {UPN}: Helga, phone +442079460958"
    shown = json.loads(ok("user", "show", UPN, "--json"))
    assert (shown["display_name"], shown["phone"], shown["notes"]) == (
        "Helga",
        "+442079460958",
        "desk 3",
    )
    assert ok("user", "edit", UPN, "--notes", "desk 3").strip() == f"user {UPN}: nothing changed"
    records = ok("audit", "export", "--action", "user.updated").splitlines()  # JSON lines
    assert [json.loads(line)["details"]["after"] for line in records] == [
        {"phone": "+442079460958", "notes": "desk 3"}
    ]
    for args, said_part in (
        (["user", "edit", UPN], "--name, --phone and/or --notes"),
        (["user", "edit", UPN, "--phone", "020 7946 0958"], "country code"),
        (["user", "edit", "nobody@contoso.com", "--notes", "x"], "no user nobody@contoso.com"),
        (["user", "edit", UPN, "--name", "a\nb"], "one line"),
    ):
        refused = cli(*args, env=env)
        assert_one_line_error(refused)
        assert said_part in refused.stderr
