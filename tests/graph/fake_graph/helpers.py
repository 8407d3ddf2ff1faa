"""Small helpers for tests that talk to the fake directly (httpx for Graph, msal for tokens)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import msal
import pyotp
import requests

from tests.graph.fake_graph.fake import FakeGraph

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
DEVICES = "/directory/authenticationMethodDevices/hardwareOathDevices"


def msal_http(fake: FakeGraph) -> requests.Session:
    """An http_client for msal that trusts exactly the fake's CA.

    msal's own ``verify=`` loses to REQUESTS_CA_BUNDLE in the environment, so the session
    ignores the environment.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = fake.ca_bundle
    return session


def confidential_app(fake: FakeGraph, credential: Any = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        fake.client_id,
        client_credential=credential if credential is not None else fake.client_secret,
        authority=fake.authority_url,
        instance_discovery=False,
        http_client=msal_http(fake),
    )


def public_app(fake: FakeGraph) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        fake.public_client_id,
        authority=fake.authority_url,
        instance_discovery=False,
        http_client=msal_http(fake),
    )


def app_token(fake: FakeGraph) -> str:
    result = confidential_app(fake).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result
    return str(result["access_token"])


def graph_client(fake: FakeGraph, token: str | None = None) -> httpx.Client:
    """httpx client on ``fake.graph_url`` with a bearer token (app-only by default)."""
    return httpx.Client(
        base_url=fake.graph_url,
        verify=fake.ssl_context(),
        headers={"Authorization": f"Bearer {token or app_token(fake)}"},
        timeout=10,
    )


def steady_step(interval: int) -> int:
    """The current time step, after waiting out the last 3 s of a step (no boundary races)."""
    if time.time() % interval > interval - 3:
        time.sleep(interval - time.time() % interval + 0.05)
    return int(time.time()) // interval


def code_at_step(step: int, secret: str, interval: int = 30, digest: Any = hashlib.sha1) -> str:
    """The token's code at a time step, from pyotp (the oracle)."""
    return str(pyotp.TOTP(secret, interval=interval, digest=digest).at(step * interval))


def current_code(secret: str, interval: int = 30, digest: Any = hashlib.sha1) -> str:
    return code_at_step(steady_step(interval), secret, interval, digest)
