"""`oathdesk serve` and its alerts: it says at start-up where they go, and an alert it cannot
send reaches the operator (the API's answer), the audit log and the server's own log."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OATHDESK
from tests.web.api_support import add_user_and_token, api_clients, assert_error, make_keys
from tests.web.conftest import WebVault, free_port
from tests.web.test_serve import Served, clean_env, read_banner, stop

REVEAL = {
    "upn": "helga@contoso.com",
    "method": "callback",
    "ticket": "INC-4711",
    "note": "called back",
    "channel": "phone",
}


@pytest.fixture
def start(web_vault: WebVault, tmp_path: Path) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def serve(**variables: str) -> Served:
        assert web_vault.location.sqlite_path is not None
        port = free_port()
        env = clean_env(tmp_path / "data")
        env |= {"OATHDESK_KEY_FILE": str(web_vault.location.key_file), **variables}
        process = subprocess.Popen(
            [
                str(OATHDESK),
                "serve",
                "--port",
                str(port),
                "--vault",
                str(web_vault.location.sqlite_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(process)
        return Served(process, read_banner(process, timeout=30), port)

    yield serve
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_serve_says_where_alerts_go_when_nothing_is_configured(start: object) -> None:
    served = start()  # type: ignore[operator]
    (line,) = [line for line in served.banner if line.startswith("alerts:")]
    assert "none configured" in line
    assert "log of `oathdesk serve`" in line
    stop(served)


@pytest.mark.slow
def test_a_failed_alert_reaches_the_operator_the_audit_and_the_log(
    start: object, web_vault: WebVault
) -> None:
    dead = free_port()
    served = start(  # type: ignore[operator]
        OATHDESK_SMTP_HOST="127.0.0.1",
        OATHDESK_SMTP_PORT=str(dead),
        OATHDESK_SMTP_SECURITY="starttls",
        OATHDESK_SMTP_USER="alerts@contoso.com",
        OATHDESK_SMTP_PASSWORD="relay secret 42",
        OATHDESK_ALERT_TO="security@contoso.com",
    )
    (line,) = [line for line in served.banner if line.startswith("alerts:")]
    assert f"security@contoso.com via 127.0.0.1:{dead} (STARTTLS" in line
    assert "relay secret 42" not in line
    with api_clients(f"http://127.0.0.1:{served.port}", make_keys(web_vault)) as api:
        add_user_and_token(api)
        assert api.admin.patch("/settings", json={"reveal_limit_per_user": 0}).status_code == 200
        message = assert_error(api.helpdesk.post("/reveal", json=REVEAL), 403, "policy_refused")
        assert "24 hours" in message
        assert "alert (reveal.limit_reached) was not sent" in message
        records = api.admin.get("/audit", params={"action": "alert.failed"}).json()["items"]
    _stdout, stderr = stop(served)
    (record,) = records
    assert record["details"]["event"] == "reveal.limit_reached"
    assert f"127.0.0.1:{dead}" in record["details"]["reason"]
    assert "relay secret 42" not in str(record)
    logged = [line for line in stderr.splitlines() if "was not sent" in line]
    assert len(logged) == 1, stderr
    assert " ERROR " in logged[0]
    assert "relay secret 42" not in stderr
