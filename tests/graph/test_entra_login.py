"""`oathdesk entra login|status|enable|logout` against the fake Graph over real HTTPS."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from oathdesk.graph.errors import GraphError
from oathdesk.graph.throttle import RetryPolicy
from oathdesk.services.entra_session import open_session
from tests.conftest import OATHDESK, assert_one_line_error
from tests.graph.entra_helpers import ADMIN, EntraWorld, world

__all__ = ["world"]


def test_login_with_client_secret_signs_in_and_stores_it_encrypted(world: EntraWorld) -> None:
    result = world.login()
    assert f"signed in to tenant {world.fake.tenant_id} as app oathdesk" in result.stdout
    assert "missing:" not in result.stdout
    assert world.fake.client_secret not in result.stdout + result.stderr
    # The secret is nowhere in the database files in clear, and not in the audit log.
    assert world.fake.client_secret.encode() not in world.db_bytes()
    assert world.fake.client_secret not in world.audit_text()
    assert "entra.login" in world.audit_text()
    token_requests = [t for m, t, s in world.fake.requests if t.endswith("/oauth2/v2.0/token")]
    assert len(token_requests) == 1


def test_login_refuses_a_wrong_secret_in_one_line_and_stores_nothing(world: EntraWorld) -> None:
    result = world.cli(
        "entra",
        "login",
        "--tenant",
        world.fake.tenant_id,
        "--client-id",
        world.fake.client_id,
        "--client-secret",
        "-",
        "--authority-host",
        world.fake.authority_host,
        "--graph-url",
        world.fake.graph_url,
        "--ca-bundle",
        world.fake.ca_bundle,
        stdin="not-the-secret\n",
    )
    assert_one_line_error(result)
    assert "AADSTS7000215" in result.stderr
    assert "not-the-secret" not in result.stderr
    status = world.cli("entra", "status")
    assert_one_line_error(status)
    assert "entra login" in status.stderr


def test_a_secret_on_the_command_line_is_refused(world: EntraWorld) -> None:
    result = world.cli(
        "entra", "login", "--tenant", world.fake.tenant_id, "--client-id", world.fake.client_id,
        "--client-secret", "fake~0123456789abcdef",
    )  # fmt: skip
    assert_one_line_error(result)
    assert "never the secret itself" in result.stderr
    assert "0123456789abcdef" not in result.stderr


def test_login_with_a_certificate(world: EntraWorld, tmp_path: object) -> None:
    from pathlib import Path

    pem = Path(str(tmp_path)) / "app.pem"
    pem.write_text(world.fake.client_key_pem + world.fake.client_certificate_pem)
    pem.chmod(0o600)
    result = world.cli(
        "entra", "login", "--tenant", world.fake.tenant_id, "--client-id", world.fake.client_id,
        "--certificate", str(pem), "--authority-host", world.fake.authority_host,
        "--graph-url", world.fake.graph_url, "--ca-bundle", world.fake.ca_bundle,
    )  # fmt: skip
    assert result.returncode == 0, result
    assert "certificate thumbprint (SHA-256):" in result.stdout
    key_body = world.fake.client_key_pem.splitlines()[1]
    assert key_body.encode() not in world.db_bytes()
    status = world.cli("entra", "status")
    assert status.returncode == 0, status
    assert "hardware OATH method: enabled" in status.stdout


def test_status_names_a_missing_permission_and_how_to_grant_it(world: EntraWorld) -> None:
    world.fake.revoke(
        "UserAuthenticationMethod.ReadWrite.All", "Policy.Read.All",
        "Policy.ReadWrite.AuthenticationMethod",
    )  # fmt: skip
    world.login()
    status = world.cli("entra", "status")
    assert status.returncode == 0, status
    assert "hardware OATH method: unknown" in status.stdout
    assert "(403" in status.stdout
    assert "Policy.Read.All" in status.stdout
    missing = [line for line in status.stdout.splitlines() if line.startswith("missing:")]
    assert any("UserAuthenticationMethod.ReadWrite.All" in line for line in missing)
    assert all("Grant admin consent" in line for line in missing)
    # A command that needs the permission fails with one line naming it and the consent step.
    result = world.cli("entra", "enable")
    assert_one_line_error(result)
    assert "Policy.ReadWrite.AuthenticationMethod" in result.stderr
    assert "Grant admin consent" in result.stderr
    assert result.returncode == 3


def test_enable_turns_the_method_on(world: EntraWorld) -> None:
    world.fake.set_policy(False)
    world.login()
    status = world.cli("entra", "status")
    assert "hardware OATH method: disabled; turn it on with `oathdesk entra enable`" in (
        status.stdout
    )
    result = world.cli("entra", "enable")
    assert result.returncode == 0, result
    assert world.fake.policy_enabled
    assert "hardware OATH method: enabled" in result.stdout


def test_an_expired_token_is_replaced_once_and_the_call_retried(world: EntraWorld) -> None:
    world.login()
    with open_session(world.vault, ADMIN) as session:
        assert session.api.policy_state() == "enabled"
        world.fake.expire_tokens()
        time.sleep(2.0)  # tokens issued from now on (whole-second iat) are accepted again
        assert session.api.policy_state() == "enabled"
    statuses = [status for _, target, status in world.fake.requests if "hardwareOath" in target]
    assert statuses == [200, 401, 200]


def test_throttling_on_every_try_gives_up_with_a_plain_message(world: EntraWorld) -> None:
    world.login()
    with open_session(world.vault, ADMIN, retry=RetryPolicy(attempts=3, base=0.01)) as session:
        world.fake.throttle(5, status=503, retry_after=0.05)
        with pytest.raises(GraphError, match="Graph is throttling; wait a few minutes"):
            session.api.policy_state()
    assert [s for _, _, s in world.fake.requests if s == 503] == [503] * 3
    assert "throttled" in world.audit_text()


def test_logout_erases_the_credentials(world: EntraWorld) -> None:
    world.login()
    result = world.cli("entra", "logout")
    assert "credentials are erased" in result.stdout
    assert_one_line_error(world.cli("entra", "status"))
    assert "entra.logout" in world.audit_text()


def test_device_code_sign_in_in_a_real_process(world: EntraWorld) -> None:
    """The real console script: it shows the code on stderr, the admin approves, it finishes;
    later commands reuse the encrypted token cache without signing in again."""
    env = {**world.env, "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [
            str(OATHDESK), "entra", "login", "--tenant", world.fake.tenant_id,
            "--client-id", world.fake.public_client_id, "--device-code",
            "--authority-host", world.fake.authority_host, "--graph-url", world.fake.graph_url,
            "--ca-bundle", world.fake.ca_bundle,
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    assert process.stderr is not None
    instruction = process.stderr.readline()
    assert "enter the code" in instruction
    world.fake.approve_device_code()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, (out, err)
    assert "as admin@contoso.onmicrosoft.com (device code)" in out
    before = len(world.fake.requests)
    started = time.monotonic()
    status = world.cli("entra", "status")
    assert status.returncode == 0, status
    assert "signed in as admin@contoso.onmicrosoft.com (device code)" in status.stdout
    assert time.monotonic() - started < 30
    new = world.fake.requests[before:]
    assert not any("devicecode" in target for _, target, _ in new)
    assert sys.executable  # the same interpreter runs the console script
