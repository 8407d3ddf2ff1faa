"""Security events out: JSON lines to a file or stdout, and optionally e-mail through SMTP.

An alert never carries a code or a secret: who, what, about whom, and why.
"""

from __future__ import annotations

import json
import smtplib
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "oathdesk@localhost"
    recipients: tuple[str, ...] = ()
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go: ``jsonl_path`` ("-" is stdout, None is nowhere) and/or SMTP."""

    jsonl_path: str | None = None
    smtp: SmtpSettings | None = None


class AlertSink:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.failures: list[str] = []

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
        line = json.dumps(record, sort_keys=True)
        if self.settings.jsonl_path == "-":
            sys.stdout.write(line + "\n")
        elif self.settings.jsonl_path:
            with Path(self.settings.jsonl_path).open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        if self.settings.smtp is not None and self.settings.smtp.recipients:
            self._mail(event, line)
        return record

    def _mail(self, event: str, line: str) -> None:
        smtp = self.settings.smtp
        assert smtp is not None
        message = EmailMessage()
        message["Subject"] = f"[oathdesk] {event}"
        message["From"] = smtp.sender
        message["To"] = ", ".join(smtp.recipients)
        message.set_content(f"oathdesk security event\n\n{line}\n")
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
                if smtp.starttls:
                    client.starttls()
                if smtp.username and smtp.password:
                    client.login(smtp.username, smtp.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The event is already in the audit log; a mail outage must not hide the refusal.
            self.failures.append(f"alert e-mail not sent ({type(exc).__name__})")
