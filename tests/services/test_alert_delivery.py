"""Alerts that cannot be sent are never silent, and alerts can reach a real mail relay.

Real SMTP servers on 127.0.0.1 (aiosmtpd): plain, STARTTLS (as on port 587) and implicit TLS
(as on 465), each with a login, and a certificate made here; and a port nobody listens on.
A failed alert reaches the operator who did the reveal (in the one line of the refusal), the
audit log (``alert.failed``, no secret in it) and, under ``oathdesk serve``, the server's log.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oathdesk.errors import InvalidInput
from oathdesk.services.alerts import SmtpSecurity, alert_settings
from oathdesk.vault.config import VaultLocation
from tests.conftest import CliResult, RunCli, assert_one_line_error
from tests.vault_fixtures import cli_env
from tests.web.conftest import free_port

UPN = "helga@contoso.com"
PASSWORD = "relay password 7f3a!"
LOGIN = "alerts@contoso.com"
B32 = "JBSWY3DPEHPK3PXPJBSWY3DP"


@dataclass
class Relay:
    port: int
    received: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class Collect(Message):
    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def handle_message(self, message: Any) -> None:
        self.relay.received.append(str(message))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file)."""
    folder = tmp_path_factory.mktemp("relay-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.pem", folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def relay_factory(certificate: tuple[Path, Path]) -> Iterator[Any]:
    started: list[Controller] = []

    def start(mode: str) -> Relay:
        relay = Relay(free_port())

        def authenticate(
            _server: object, _session: object, _envelope: object, _mechanism: str, data: Any
        ) -> AuthResult:
            assert isinstance(data, LoginPassword)
            relay.logins.append((data.login.decode(), data.password.decode()))
            good = (data.login.decode(), data.password.decode()) == (LOGIN, PASSWORD)
            return AuthResult(success=good, handled=False)  # not handled: answer 535

        options: dict[str, Any] = {"authenticator": authenticate}
        if mode == "starttls":
            options |= {
                "tls_context": server_context(certificate),
                "require_starttls": True,
                "auth_require_tls": True,
            }
        elif mode == "tls":
            options |= {"ssl_context": server_context(certificate), "auth_require_tls": False}
        else:
            options |= {"auth_require_tls": False}
        controller = Controller(Collect(relay), hostname="127.0.0.1", port=relay.port, **options)
        controller.start()
        started.append(controller)
        return relay

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def env(tmp_path: Path, cli: RunCli) -> dict[str, str]:
    path = tmp_path / "vault.sqlite3"
    return vault_env(VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path), cli)


def vault_env(location: VaultLocation, cli: RunCli) -> dict[str, str]:
    environment = cli_env(location)
    for args, stdin in (
        (["init"], None),
        (["user", "add", UPN, "--phone", "+41790000000"], None),
        (["token", "add", "--serial", "86596120001", "--user", UPN], B32),
        (["token", "registered", "86596120001"], None),
        (["settings", "set", "reveal_limit_per_user", "0"], None),  # the first reveal alerts
    ):
        result = cli(*args, input=stdin, env=environment)
        assert result.returncode == 0, result.stderr
    return environment


def reveal(cli: RunCli, env: dict[str, str]) -> CliResult:
    return cli(
        "reveal", UPN, "--method", "callback", "--ticket", "INC-1", "--channel", "phone", env=env
    )


def mail_env(
    env: dict[str, str], port: int, security: str, tmp_path: Path, **extra: str
) -> dict[str, str]:
    password_file = tmp_path / "smtp-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    return {
        **env,
        "OATHDESK_SMTP_HOST": "127.0.0.1",
        "OATHDESK_SMTP_PORT": str(port),
        "OATHDESK_SMTP_SECURITY": security,
        "OATHDESK_SMTP_USER": LOGIN,
        "OATHDESK_SMTP_PASSWORD_FILE": str(password_file),
        "OATHDESK_ALERT_TO": "security@contoso.com",
        **extra,
    }


def failed_alerts(cli: RunCli, env: dict[str, str]) -> list[dict[str, Any]]:
    exported = cli("audit", "export", "--action", "alert.failed", env=env)
    assert exported.returncode == 0, exported
    assert PASSWORD not in exported.stdout
    return [json.loads(line) for line in exported.stdout.splitlines()]


@pytest.mark.slow
def test_an_unreachable_relay_reaches_the_operator_and_the_audit_log(
    location: VaultLocation, cli: RunCli, tmp_path: Path
) -> None:
    env = vault_env(location, cli)  # SQLite and PostgreSQL: the audit record is written apart
    dead = free_port()  # nobody listens here
    refused = reveal(cli, mail_env(env, dead, "starttls", tmp_path))
    assert_one_line_error(refused)
    assert refused.returncode == 4
    assert "codes in 24 hours" in refused.stderr  # the refusal itself
    assert "alert" in refused.stderr
    assert "not sent" in refused.stderr
    assert f"127.0.0.1:{dead}" in refused.stderr
    assert PASSWORD not in refused.stderr
    (record,) = failed_alerts(cli, env)
    assert record["details"]["event"] == "reveal.limit_reached"
    assert record["details"]["channel"] == "e-mail"
    assert f"127.0.0.1:{dead}" in record["details"]["reason"]


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_tls_relay_with_a_login_gets_the_alert(
    env: dict[str, str],
    cli: RunCli,
    tmp_path: Path,
    relay_factory: Any,
    certificate: tuple[Path, Path],
    security: str,
) -> None:
    relay = relay_factory(security)
    settings = mail_env(
        env, relay.port, security, tmp_path, OATHDESK_SMTP_CA_FILE=str(certificate[0])
    )
    refused = reveal(cli, settings)
    assert_one_line_error(refused)
    assert "not sent" not in refused.stderr
    assert relay.logins == [(LOGIN, PASSWORD)]
    (message,) = relay.received
    assert "reveal.limit_reached" in message
    assert UPN in message
    assert PASSWORD not in message
    assert failed_alerts(cli, env) == []


def test_an_untrusted_certificate_or_a_wrong_password_is_a_failed_alert(
    env: dict[str, str],
    cli: RunCli,
    tmp_path: Path,
    relay_factory: Any,
    certificate: tuple[Path, Path],
) -> None:
    relay = relay_factory("starttls")
    untrusted = reveal(cli, mail_env(env, relay.port, "starttls", tmp_path))
    assert_one_line_error(untrusted)
    assert "not sent" in untrusted.stderr
    assert "certificate" in untrusted.stderr
    assert relay.logins == []  # no password sent to a server we could not check
    wrong = mail_env(
        env, relay.port, "starttls", tmp_path, OATHDESK_SMTP_CA_FILE=str(certificate[0])
    )
    (tmp_path / "smtp-password").write_text("not the password\n")
    del wrong["OATHDESK_SMTP_PASSWORD_FILE"]
    wrong["OATHDESK_SMTP_PASSWORD"] = "not the password"
    refused = reveal(cli, wrong)
    assert_one_line_error(refused)
    assert "not sent" in refused.stderr
    assert "login" in refused.stderr
    assert "not the password" not in refused.stderr
    assert len(failed_alerts(cli, env)) == 2
    assert relay.received == []


def test_an_unwritable_alert_file_is_a_failed_alert(
    env: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    missing = tmp_path / "no such folder" / "alerts.jsonl"
    refused = reveal(cli, {**env, "OATHDESK_ALERTS": str(missing)})
    assert_one_line_error(refused)
    assert "not sent" in refused.stderr
    (record,) = failed_alerts(cli, env)
    assert record["details"]["channel"] == "file"


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"OATHDESK_SMTP_PORT": "five"}, "OATHDESK_SMTP_PORT"),
        ({"OATHDESK_SMTP_SECURITY": "ssl3"}, "OATHDESK_SMTP_SECURITY"),
        ({"OATHDESK_SMTP_SECURITY": "none", "OATHDESK_SMTP_USER": LOGIN}, "in clear"),
        ({"OATHDESK_SMTP_USER": LOGIN, "OATHDESK_SMTP_PASSWORD": ""}, "OATHDESK_SMTP_PASSWORD"),
        ({"OATHDESK_ALERT_TO": ""}, "OATHDESK_ALERT_TO"),
        (
            {"OATHDESK_SMTP_USER": LOGIN, "OATHDESK_SMTP_PASSWORD_FILE": "/nonexistent/pw"},
            "OATHDESK_SMTP_PASSWORD_FILE",
        ),
    ],
)
def test_alert_settings_are_checked(variables: dict[str, str], says: str) -> None:
    environment = {
        "OATHDESK_SMTP_HOST": "smtp.office365.com",
        "OATHDESK_SMTP_PORT": "587",
        "OATHDESK_ALERT_TO": "security@contoso.com",
        **variables,
    }
    with pytest.raises(InvalidInput) as refused:
        alert_settings(environment)
    assert says in refused.value.message
    assert PASSWORD not in refused.value.message


def test_the_port_chooses_the_security_unless_told() -> None:
    base = {"OATHDESK_SMTP_HOST": "relay", "OATHDESK_ALERT_TO": "s@contoso.com"}
    for port, security in (
        ("587", SmtpSecurity.STARTTLS),
        ("465", SmtpSecurity.TLS),
        ("25", SmtpSecurity.NONE),
    ):
        smtp = alert_settings({**base, "OATHDESK_SMTP_PORT": port}).smtp
        assert smtp is not None
        assert smtp.security is security
    settings = alert_settings(
        {
            **base,
            "OATHDESK_SMTP_USER": LOGIN,
            "OATHDESK_SMTP_PASSWORD": PASSWORD,
            "OATHDESK_SMTP_SECURITY": "starttls",
        }
    )
    assert settings.smtp is not None
    assert settings.smtp.port == 587
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in settings.describe()


def test_settings_show_says_where_alerts_go(env: dict[str, str], cli: RunCli) -> None:
    shown = cli("settings", "show", env=env)
    assert shown.returncode == 0, shown
    (line,) = [line for line in shown.stdout.splitlines() if line.startswith("alerts")]
    assert "none configured" in line
    assert "audit log" in line
    mailed = cli(
        "settings",
        "show",
        env={
            **env,
            "OATHDESK_SMTP_HOST": "smtp.office365.com",
            "OATHDESK_SMTP_PORT": "587",
            "OATHDESK_ALERT_TO": "security@contoso.com",
            "OATHDESK_SMTP_USER": LOGIN,
            "OATHDESK_SMTP_PASSWORD": PASSWORD,
        },
    )
    assert mailed.returncode == 0, mailed
    assert "security@contoso.com via smtp.office365.com:587 (STARTTLS" in mailed.stdout
    assert PASSWORD not in mailed.stdout
