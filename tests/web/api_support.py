"""Helpers for the REST API tests: API keys for the console's test operators, httpx clients
sending them, and the house rules every error answer must follow.

The servers and operators come from tests/web/conftest.py (``web_vault``, ``live_server``).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from oathdesk.vault.api_keys import ApiKeyStore
from tests.web.conftest import LOCAL_ADMIN, WebVault

SECRET_B32 = "JBSWY3DPEHPK3PXPJBSWY3DP"
UPN = "helga@contoso.com"
# A helpdesk reveal request as the API takes it: a call-back on the number on file.
REVEAL = {
    "upn": UPN,
    "method": "callback",
    "ticket": "INC-4711",
    "note": "called back on the number on file",
    "channel": "phone",
}


@dataclass
class ApiKeys:
    admin: str = field(repr=False)
    helpdesk: str = field(repr=False)
    auditor: str = field(repr=False)


def make_keys(web_vault: WebVault) -> ApiKeys:
    vault = web_vault.open()
    try:
        store = ApiKeyStore(vault)
        return ApiKeys(
            *(
                store.create(LOCAL_ADMIN, operator.name, "tests").secret_text
                for operator in (web_vault.admin, web_vault.helpdesk, web_vault.auditor)
            )
        )
    finally:
        vault.close()


@dataclass
class Api:
    """httpx clients on the live server: one per role, and one without a key."""

    base_url: str
    keys: ApiKeys
    admin: httpx.Client
    helpdesk: httpx.Client
    auditor: httpx.Client
    anonymous: httpx.Client


def client(base_url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=30)


@pytest.fixture
def api_keys(web_vault: WebVault) -> ApiKeys:
    return make_keys(web_vault)


@pytest.fixture
def api(live_server: str, api_keys: ApiKeys) -> Iterator[Api]:
    with api_clients(live_server, api_keys) as clients:
        yield clients


@contextlib.contextmanager
def api_clients(base_url: str, api_keys: ApiKeys) -> Iterator[Api]:
    """An ``Api`` on the server at ``base_url`` (for a test that starts a server of its own)."""
    clients = [client(base_url, key) for key in (api_keys.admin, api_keys.helpdesk)]
    clients += [client(base_url, api_keys.auditor), client(base_url, None)]
    try:
        yield Api(base_url, api_keys, *clients)
    finally:
        for each in clients:
            each.close()


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """A JSON error with a stable code and a one-line message; returns the message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    assert "\n" not in error["message"]
    assert "Traceback" not in response.text
    return str(error["message"])


def oathtool_code(secret_b32: str, at: float) -> str:
    moment = datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    result = subprocess.run(
        ["oathtool", "--totp", "-b", secret_b32, "--now", moment],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def add_user_and_token(
    api: Api, serial: str = "86596120001", secret: str = SECRET_B32, upn: str = UPN
) -> dict[str, object]:
    """A user and an assigned token with a known secret, through the API as the admin."""
    if api.admin.get(f"/users/{upn}").status_code == 404:
        # A number on file: the tests' reveals verify by calling back, which needs one.
        user = {"upn": upn, "display_name": "Helga", "phone": "+41790000000"}
        added = api.admin.post("/users", json=user)
        assert added.status_code == 201, added.text
    response = api.admin.post(
        "/tokens", json={"serial": serial, "secret": secret, "upn": upn, "model": "miniOTP-2-i"}
    )
    assert response.status_code == 201, response.text
    token: dict[str, object] = response.json()
    return token
