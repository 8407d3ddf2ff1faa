"""Sign-in security events are audit records, not only alerts: failures (also under names no
operator has), lockouts and throttling, each with the client's address and never a password or
code; a locked-out operator who gives the right password and code is told when to try again,
a guesser is not."""

from __future__ import annotations

import re
from typing import Any

from oathdesk.web.app import create_app
from tests.web.conftest import Operator, WebVault, new_client, serve_app
from tests.web.test_auth import GENERIC_REFUSAL, attempt

WRONG = "wrong password!!"


def records(web_vault: WebVault, action: str) -> list[dict[str, Any]]:
    vault = web_vault.open()
    try:
        return vault.export_audit(action=action)
    finally:
        vault.close()


def test_failures_and_the_lockout_are_audited_and_the_owner_is_told_when(
    live_server: str, web_vault: WebVault
) -> None:
    operator = web_vault.helpdesk
    nobody = Operator("nobody", "helpdesk", "irrelevant password", b"0" * 20)
    with new_client(live_server) as client:
        assert attempt(client, nobody, code="123456").status_code == 401
        for _ in range(5):  # vault.operators.MAX_FAILURES
            assert attempt(client, operator, password=WRONG, code="000000").status_code == 401
        guessed = attempt(client, operator, password=WRONG, code="000000")
        assert guessed.status_code == 401
        assert GENERIC_REFUSAL in guessed.text  # a guesser learns nothing of the lock
        assert 'id="retry-at"' not in guessed.text
        owner = attempt(client, operator)  # the right password and a fresh code
        assert owner.status_code == 401
        said = re.search(r"locked after 5 failed sign-ins; try again after ([^<]+)<", owner.text)
        assert said is not None, owner.text
        retry = re.search(r'id="retry-at">[^<]*<time datetime="([^"]+)"', owner.text)
        assert retry is not None, owner.text
    failed = records(web_vault, "operator.signin_failed")
    assert [(r["actor"], r["details"]) for r in failed[:1]] == [
        ("anonymous", {"name": "nobody", "reason": "unknown name", "ip": "127.0.0.1"})
    ]
    assert [r["details"]["locked"] for r in failed[1:]] == [False] * 4 + [True]
    assert {r["details"]["ip"] for r in failed} == {"127.0.0.1"}
    refused = records(web_vault, "operator.signin_refused")
    assert [(r["actor"], r["details"]) for r in refused] == [
        (operator.name, {"reason": "locked", "ip": "127.0.0.1"})
    ] * 2
    vault = web_vault.open()
    try:
        log = str(vault.export_audit())
    finally:
        vault.close()
    assert WRONG not in log
    assert "irrelevant password" not in log
    assert operator.password not in log


def test_throttling_is_one_audit_record_when_the_limit_is_reached(web_vault: WebVault) -> None:
    config = web_vault.config(signin_failures_per_name=2, signin_failures_per_ip=100)
    with serve_app(create_app(config)) as base_url, new_client(base_url) as client:
        for _ in range(2):
            assert attempt(client, web_vault.auditor, password=WRONG, code="1").status_code == 401
        for _ in range(3):  # refused before the code is checked: it spends none
            refused = attempt(client, web_vault.auditor, code=web_vault.auditor.unspent_code())
            assert refused.status_code == 429
    throttled = records(web_vault, "console.signin_throttled")
    assert [(r["actor"], r["details"]) for r in throttled] == [
        ("anonymous", {"ip": "127.0.0.1", "name": web_vault.auditor.name})
    ]
