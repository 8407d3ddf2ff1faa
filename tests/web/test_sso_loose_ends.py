"""Sign-in with Microsoft beside the console's other defences: refused callbacks count in the
sign-in throttle like failed local sign-ins; SSO operators are not offered local-account
actions; an operator who signs in only with Microsoft cannot be a four-eyes approver, and the
reveal page says so. Real uvicorn servers, the stand-in identity provider over HTTPS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from oathdesk.web.app import create_app
from oathdesk.web.config import AlertSettings
from tests.identity.standin import StandInIdP, running
from tests.web.conftest import WebVault, new_client, serve_app, signed_in
from tests.web.test_auth import attempt
from tests.web.test_sso import audit, configure, sso_sign_in


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[StandInIdP]:
    with running(tmp_path / "idp-tls") as standin:
        yield standin


def test_refused_microsoft_callbacks_count_in_the_sign_in_throttle(
    web_vault: WebVault, idp: StandInIdP, tmp_path: Path
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    config = web_vault.config(
        signin_failures_per_ip=3, alerts=AlertSettings(jsonl_path=str(alerts))
    )
    with serve_app(create_app(config)) as base_url:
        configure(web_vault, idp, base_url)
        with new_client(base_url) as client:
            # Answers that belong to no sign-in of this browser (a forged or replayed callback).
            for _ in range(2):
                forged = client.get("/auth/callback?code=stolen&state=guessed")
                assert forged.status_code == 403
            assert sso_sign_in(client, idp, tamper_state=True).status_code == 403
            # The address reached the limit: neither Microsoft nor a local sign-in is tried.
            throttled = client.get("/auth/callback?code=stolen&state=guessed")
            assert throttled.status_code == 429
            assert "too many failed sign-ins from this address" in throttled.text
            assert client.get("/auth/microsoft").status_code == 429
            local = attempt(client, web_vault.admin)  # the right password and a fresh code
            assert local.status_code == 429
    refused = audit(web_vault, "operator.sso_refused")
    assert [r["details"]["reason"] for r in refused] == ["no_flow", "no_flow", "state"]
    events = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert [(e["event"], e["client"]) for e in events] == [
        ("console.signin_throttled", "127.0.0.1")
    ]


def test_a_good_microsoft_sign_in_is_not_counted(web_vault: WebVault, idp: StandInIdP) -> None:
    config = web_vault.config(signin_failures_per_ip=2)
    with serve_app(create_app(config)) as base_url:
        configure(web_vault, idp, base_url)
        for _ in range(3):
            with new_client(base_url) as client:
                assert sso_sign_in(client, idp).status_code == 200
        with signed_in(base_url, web_vault.admin) as admin:
            assert admin.get("/").status_code == 200
