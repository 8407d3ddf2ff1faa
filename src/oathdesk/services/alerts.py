"""Security events out: JSON lines to a file or stdout, and optionally e-mail through SMTP.

An alert never carries a code or a secret: who, what, about whom, and why. An alert that cannot
be delivered is never silent: ``AlertSink.emit`` returns the failures (the caller tells the
operator, in the one line of its answer), logs each one (``oathdesk serve`` writes it to its
log) and, with a vault, records ``alert.failed`` in the audit log.

Where alerts go is set by the environment of the process that raises them (``alert_settings``):
``OATHDESK_ALERTS`` and ``OATHDESK_SMTP_*``; docs/helpdesk.md lists them. With nothing set, an
alert goes only to the log of ``oathdesk serve`` (the CLI has none); the audit log records the
event that raised it either way.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any

from oathdesk.errors import InvalidInput, OathdeskError
from oathdesk.logsafe import one_line
from oathdesk.vault.vault import Actor, Vault

log = logging.getLogger("oathdesk.alerts")
# A library's rule: without a handler of the application's, Python's last resort would print
# our records on a CLI user's terminal beside the one-line answer.
log.addHandler(logging.NullHandler())

SMTP_TIMEOUT_SECONDS = 10
ALERTS_ACTOR = Actor("oathdesk:alerts", "admin")


class SmtpSecurity(StrEnum):
    NONE = "none"  # plain SMTP (a relay on the same host or network segment)
    STARTTLS = "starttls"  # submission, port 587 (Exchange Online: smtp.office365.com)
    TLS = "tls"  # implicit TLS, port 465


DEFAULT_PORTS = {SmtpSecurity.NONE: 25, SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "oathdesk@localhost"
    recipients: tuple[str, ...] = ()
    security: SmtpSecurity = SmtpSecurity.NONE
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # A CA bundle to trust instead of the system's (a relay with a private CA's certificate).
    ca_file: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        how = {
            SmtpSecurity.NONE: "plain SMTP",
            SmtpSecurity.STARTTLS: "STARTTLS",
            SmtpSecurity.TLS: "TLS",
        }[self.security]
        login = f", login {self.username}" if self.username else ""
        return f"e-mail to {', '.join(self.recipients)} via {self.address} ({how}{login})"


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go: ``jsonl_path`` ("-" is stdout, None is nowhere) and/or SMTP."""

    jsonl_path: str | None = None
    smtp: SmtpSettings | None = None

    def describe(self) -> str:
        """One line for people: where an alert goes (never the SMTP password)."""
        places = []
        if self.jsonl_path == "-":
            places.append("JSON lines on standard output")
        elif self.jsonl_path:
            places.append(f"JSON lines appended to {self.jsonl_path}")
        if self.smtp is not None:
            places.append(self.smtp.describe())
        if not places:
            return (
                "none configured: alerts reach only the log of `oathdesk serve` (the audit log "
                "records what raised them); set OATHDESK_ALERTS or OATHDESK_SMTP_HOST"
            )
        return "; ".join(places)


@dataclass(frozen=True)
class AlertFailure:
    """An alert that did not reach one of its places. ``reason`` names the place and the
    error's kind (never a password, never the alert's content)."""

    event: str
    channel: str  # "e-mail" or "file"
    reason: str

    @property
    def message(self) -> str:
        return (
            f"the security alert ({self.event}) was not sent: {self.reason}; tell the security "
            "team yourself and have an admin check the alert settings"
        )


class AlertSink:
    """Sends alerts. With ``vault``, a failed alert is also recorded in its audit log."""

    def __init__(self, settings: AlertSettings, vault: Vault | None = None) -> None:
        self.settings = settings
        self.vault = vault
        self.failures: list[AlertFailure] = []

    def emit(self, event: str, **fields: Any) -> list[AlertFailure]:
        """Send the alert everywhere configured; the failures (empty: all went out)."""
        record = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
        line = json.dumps(record, sort_keys=True)
        log.warning("alert %s", line)
        failures = []
        if self.settings.jsonl_path:
            failure = self._write(event, line)
            if failure is not None:
                failures.append(failure)
        if self.settings.smtp is not None and self.settings.smtp.recipients:
            failure = self._mail(self.settings.smtp, event, line)
            if failure is not None:
                failures.append(failure)
        for failure in failures:
            self._report(
                failure, upn=str(fields.get("upn", "")), serial=str(fields.get("serial", ""))
            )
        return failures

    def _write(self, event: str, line: str) -> AlertFailure | None:
        path = self.settings.jsonl_path
        try:
            if path == "-":
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            else:
                assert path is not None
                with Path(path).open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        except OSError as error:
            reason = error.strerror or type(error).__name__
            return AlertFailure(event, "file", f"cannot append to {path} ({reason})")
        return None

    def _mail(self, smtp: SmtpSettings, event: str, line: str) -> AlertFailure | None:
        message = EmailMessage()
        message["Subject"] = f"[oathdesk] {event}"
        message["From"] = smtp.sender
        message["To"] = ", ".join(smtp.recipients)
        message.set_content(f"oathdesk security event\n\n{line}\n")
        try:
            with _connect(smtp) as client:
                if smtp.security is SmtpSecurity.STARTTLS:
                    client.starttls(context=_tls_context(smtp))
                if smtp.username:
                    client.login(smtp.username, smtp.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            return AlertFailure(
                event, "e-mail", f"e-mail via {smtp.address} failed ({_why(error)})"
            )
        return None

    def _report(self, failure: AlertFailure, *, upn: str, serial: str) -> None:
        self.failures.append(failure)
        log.error("%s", failure.message)
        if self.vault is None:
            return
        try:
            with self.vault.transaction() as conn:
                self.vault.audit(
                    conn,
                    ALERTS_ACTOR,
                    "alert.failed",
                    upn=upn,
                    serial=serial,
                    details={
                        "event": failure.event,
                        "channel": failure.channel,
                        "reason": failure.reason,
                    },
                )
        except OathdeskError as error:
            # The operator still hears of the failed alert; the log says the audit missed it.
            log.error("alert.failed could not be recorded in the audit log: %s", error.message)


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    if smtp.security is SmtpSecurity.TLS:
        return smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS, context=_tls_context(smtp)
        )
    return smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS)


def _tls_context(smtp: SmtpSettings) -> ssl.SSLContext:
    # Verified, unlike smtplib's default context: the login's password goes over this channel.
    return ssl.create_default_context(cafile=smtp.ca_file)


def _why(error: Exception) -> str:
    """A short reason; never the server's text after a login (it may echo what was sent)."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"login refused, {error.smtp_code}"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return "the server does not offer STARTTLS or the login asked for"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted: {one_line(error.verify_message or 'unknown')}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the server answered {error.smtp_code}"
    if isinstance(error, OSError) and error.strerror:
        return one_line(error.strerror)
    return type(error).__name__


# -- the settings, from the environment ------------------------------------------------------------


def alert_settings(environ: Mapping[str, str]) -> AlertSettings:
    """Where alerts go, from ``environ`` (the process's environment): OATHDESK_ALERTS (a
    JSON-lines file, or - for stdout) and OATHDESK_SMTP_HOST, _PORT, _SECURITY, _USER,
    _PASSWORD or _PASSWORD_FILE, _CA_FILE, OATHDESK_ALERT_FROM and OATHDESK_ALERT_TO."""
    jsonl = environ.get("OATHDESK_ALERTS", "").strip() or None
    host = environ.get("OATHDESK_SMTP_HOST", "").strip()
    if not host:
        return AlertSettings(jsonl)
    security = _security(environ)
    port_text = environ.get("OATHDESK_SMTP_PORT", "").strip()
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise InvalidInput(
            f"OATHDESK_SMTP_PORT must be a port number (25, 587 or 465), not {port_text!r}"
        )
    if security is None:  # the port tells: 587 is submission with STARTTLS, 465 is TLS
        port = int(port_text or 25)
        security = {587: SmtpSecurity.STARTTLS, 465: SmtpSecurity.TLS}.get(port, SmtpSecurity.NONE)
    else:
        port = int(port_text or DEFAULT_PORTS[security])
    recipients = tuple(
        r.strip() for r in environ.get("OATHDESK_ALERT_TO", "").split(",") if r.strip()
    )
    if not recipients:
        raise InvalidInput(
            "OATHDESK_SMTP_HOST is set but OATHDESK_ALERT_TO is empty; set it to the security "
            "team's addresses (comma-separated)"
        )
    username = environ.get("OATHDESK_SMTP_USER", "").strip() or None
    if username and security is SmtpSecurity.NONE:
        raise InvalidInput(
            "OATHDESK_SMTP_USER needs OATHDESK_SMTP_SECURITY=starttls or tls: a password is "
            "never sent in clear"
        )
    password = _password(environ) if username else None
    ca_file = environ.get("OATHDESK_SMTP_CA_FILE", "").strip() or None
    if ca_file is not None and not Path(ca_file).is_file():
        raise InvalidInput(f"OATHDESK_SMTP_CA_FILE: no file at {ca_file}; give a PEM CA bundle")
    sender = environ.get("OATHDESK_ALERT_FROM", "").strip() or username or "oathdesk@localhost"
    return AlertSettings(
        jsonl,
        SmtpSettings(host, port, sender, recipients, security, username, password, ca_file),
    )


def _security(environ: Mapping[str, str]) -> SmtpSecurity | None:
    text = environ.get("OATHDESK_SMTP_SECURITY", "").strip().lower()
    if not text:
        return None
    try:
        return SmtpSecurity(text)
    except ValueError:
        raise InvalidInput(
            f"OATHDESK_SMTP_SECURITY is starttls (port 587), tls (port 465) or none, not {text!r}"
        ) from None


def _password(environ: Mapping[str, str]) -> str:
    """OATHDESK_SMTP_PASSWORD, or the first line of OATHDESK_SMTP_PASSWORD_FILE (a file only
    the service's user reads, e.g. a systemd credential)."""
    path = environ.get("OATHDESK_SMTP_PASSWORD_FILE", "").strip()
    if path:
        try:
            password = Path(path).read_text(encoding="utf-8").splitlines()[0:1]
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise InvalidInput(
                f"OATHDESK_SMTP_PASSWORD_FILE: cannot read {path} ({reason})"
            ) from None
        if password and password[0]:
            return password[0]
        raise InvalidInput(f"OATHDESK_SMTP_PASSWORD_FILE: {path} is empty; put the password in it")
    password_text = environ.get("OATHDESK_SMTP_PASSWORD", "")
    if not password_text:
        raise InvalidInput(
            "OATHDESK_SMTP_USER is set without a password: set OATHDESK_SMTP_PASSWORD_FILE (a "
            "file only this service reads) or OATHDESK_SMTP_PASSWORD"
        )
    return password_text
