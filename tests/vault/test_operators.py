"""Operators: roles, argon2id passwords, their own TOTP, one-time codes and lockout."""

from __future__ import annotations

import pytest

from oathdesk.errors import InvalidInput, PermissionDenied
from oathdesk.otp import step_at, totp
from oathdesk.seed import parse_seed
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.operators import MAX_FAILURES, OperatorDirectory, SignInRefused
from oathdesk.vault.roles import Permission, allowed
from oathdesk.vault.vault import Actor, Vault
from tests.conftest import RunCli
from tests.vault_fixtures import ADMIN, cli_env
from tests.window_codes import code_absent_from_window

PASSWORD = "correct horse battery staple"
AT = 1_800_000_000.0


def test_enrol_and_sign_in(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    enrolment = directory.add(ADMIN, "alice", "helpdesk", PASSWORD)
    assert "otpauth_uri=<hidden>" in repr(enrolment)
    secret = parse_seed(enrolment.otpauth_uri).secret
    actor = directory.authenticate("alice", PASSWORD, totp(secret, AT), at=AT)
    assert actor == Actor("alice", "helpdesk")
    with pytest.raises(SignInRefused):  # the same code twice: replay
        directory.authenticate("alice", PASSWORD, totp(secret, AT), at=AT + 5)
    assert directory.authenticate("alice", PASSWORD, totp(secret, AT + 30), at=AT + 30)
    actions = [r["action"] for r in vault.export_audit(actor="alice")]
    assert actions == ["operator.signed_in", "operator.signin_failed", "operator.signed_in"]


def test_wrong_password_or_code_and_lockout(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    secret = parse_seed(directory.add(ADMIN, "bob", "admin", PASSWORD).otpauth_uri).secret
    with pytest.raises(SignInRefused, match="sign-in refused"):
        directory.authenticate("bob", "wrong password!!", totp(secret, AT), at=AT)
    with pytest.raises(SignInRefused):
        directory.authenticate("nobody", PASSWORD, "123456", at=AT)
    for attempt in range(1, MAX_FAILURES):
        wrong = code_absent_from_window(secret, step_at(AT + attempt), 1, 1)
        with pytest.raises(SignInRefused):
            directory.authenticate("bob", PASSWORD, wrong, at=AT + attempt)
    # Locked now: even the right password and code are refused for a while.
    with pytest.raises(SignInRefused):
        directory.authenticate("bob", PASSWORD, totp(secret, AT + 60), at=AT + 60)
    assert directory.list()[0].locked_until is not None
    later = AT + 16 * 60
    assert directory.authenticate("bob", PASSWORD, totp(secret, later), at=later).name == "bob"


def test_disable_reset_and_roles(vault: Vault) -> None:
    directory = OperatorDirectory(vault)
    directory.add(ADMIN, "carol", "auditor", PASSWORD)
    with pytest.raises(PermissionDenied, match="may not manage operators"):
        directory.add(Actor("carol", "auditor"), "dave", "admin", PASSWORD)
    with pytest.raises(InvalidInput, match="at least 12"):
        directory.add(ADMIN, "dave", "admin", "short")
    with pytest.raises(InvalidInput, match="must not contain the operator name"):
        directory.add(ADMIN, "dave", "admin", "Dave's own password 1")
    with pytest.raises(InvalidInput, match="more different characters"):
        directory.add(ADMIN, "dave", "admin", "abababababababab")
    fresh = parse_seed(directory.reset_totp(ADMIN, "carol").otpauth_uri).secret
    assert directory.authenticate("carol", PASSWORD, totp(fresh, AT), at=AT).role == "auditor"
    directory.disable(ADMIN, "carol")
    with pytest.raises(SignInRefused):
        directory.authenticate("carol", PASSWORD, totp(fresh, AT + 30), at=AT + 30)
    with pytest.raises(PermissionDenied, match="may not manage operators"):
        directory.enable(Actor("carol", "auditor"), "carol")
    directory.enable(ADMIN, "carol")
    assert directory.authenticate("carol", PASSWORD, totp(fresh, AT + 60), at=AT + 60).name == (
        "carol"
    )
    assert allowed("helpdesk", Permission.REVEAL)
    assert not allowed("helpdesk", Permission.EXPORT_SECRETS)
    assert not allowed("auditor", Permission.REVEAL)
    assert allowed("auditor", Permission.READ_AUDIT)
    assert vault.verify_audit() == []


def test_operator_cli(vault: Vault, location: VaultLocation, cli: RunCli) -> None:
    env = cli_env(location)
    added = cli(
        "operator",
        "add",
        "erin",
        "--role",
        "helpdesk",
        "--password-stdin",
        input=PASSWORD + "\n",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert "otpauth://totp/oathdesk:erin?secret=" in added.stdout
    assert PASSWORD not in added.stdout + added.stderr
    listing = cli("operator", "list", "--json", env=env)
    assert '"role": "helpdesk"' in listing.stdout
    assert cli("operator", "disable", "erin", env=env).returncode == 0
    assert '"disabled": true' in cli("operator", "list", "--json", env=env).stdout
