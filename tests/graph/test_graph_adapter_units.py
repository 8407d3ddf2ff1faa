"""The Graph adapter's pure parts: waiting rules, error messages, token claims, settings."""

from __future__ import annotations

import base64
import json
from email.utils import formatdate

import pytest

from oathdesk.errors import InvalidInput
from oathdesk.graph import operations as ops
from oathdesk.graph.claims import granted_permissions, signed_in_as, token_claims
from oathdesk.graph.errors import GraphPermissionError, graph_error, redact, sign_in_error
from oathdesk.graph.settings import AuthKind, GraphSettings
from oathdesk.graph.throttle import RateLimiter, RetryPolicy, parse_retry_after

TENANT = "contoso.onmicrosoft.com"
CLIENT = "00000000-1111-2222-3333-444444444444"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(date, now=1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(10.0, usegmt=True), now=1_000.0) == 0.0


def test_retry_policy_prefers_retry_after_and_caps_backoff() -> None:
    policy = RetryPolicy(attempts=8, base=0.5, cap=4.0, max_retry_after=60.0)
    assert policy.delay(0, "3") == 3.0
    assert policy.delay(5, "600") == 60.0  # a server asking for 10 minutes is capped
    # Full jitter: between 0 and min(cap, base * 2**attempt).
    assert policy.delay(0, None, rand=lambda: 1.0) == 0.5
    assert policy.delay(2, None, rand=lambda: 1.0) == 2.0
    assert policy.delay(6, None, rand=lambda: 1.0) == 4.0
    assert policy.delay(6, None, rand=lambda: 0.25) == 1.0


def test_rate_limiter_allows_limit_per_window_then_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire() == pytest.approx(10.0)  # the 4th waits for the 1st to age out
    clock.now += 4.0
    assert limiter.acquire() == 0.0  # one event in the window now: room for more
    starts: list[float] = []
    limiter = RateLimiter(2, 5.0, clock=clock, sleep=clock.sleep)
    for _ in range(7):
        limiter.acquire()
        starts.append(clock.now)
    for first, later in zip(starts, starts[2:], strict=False):
        assert later - first >= 5.0  # never 3 in any 5-second window


def test_rate_limiter_refuses_nonsense() -> None:
    with pytest.raises(InvalidInput):
        RateLimiter(0, 300)


def test_403_names_the_permission_and_the_consent_step() -> None:
    body = {"error": {"code": "accessDenied", "message": "Request Authorization failed"}}
    error = graph_error(ops.CREATE_DEVICES, 403, body, app_only=True, target="123")
    assert isinstance(error, GraphPermissionError)
    assert "Policy.ReadWrite.AuthenticationMethod" in error.message
    assert "Grant admin consent" in error.message
    assert error.exit_code == 3
    delegated = graph_error(ops.ACTIVATE, 403, body, app_only=False)
    assert "UserAuthenticationMethod.ReadWrite.All" in delegated.message
    assert "Authentication Administrator" in delegated.message


def test_graph_messages_are_one_line_and_never_echo_what_we_sent() -> None:
    body = {"error": {"code": "invalidVerificationCode", "message": "code 123456\nis wrong"}}
    error = graph_error(ops.ACTIVATE, 400, body, app_only=True, secrets=["123456"])
    assert "123456" not in error.message
    assert "\n" not in error.message
    assert "invalidVerificationCode" in error.message
    assert redact("x" * 500, []).endswith("...")
    throttled = graph_error(ops.LIST_DEVICES, 429, None, app_only=True)
    assert "run the command again" in throttled.message


def test_sign_in_errors_in_plain_words_without_the_secret() -> None:
    result = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret s3cr3t provided. Trace ID: x",
    }
    error = sign_in_error(result, secrets=["s3cr3t"])
    assert "AADSTS7000215" in error.message
    assert "s3cr3t" not in error.message
    assert "Value" in error.message
    public = sign_in_error({"error": "invalid_client", "error_description": "AADSTS7000218: x"})
    assert "Allow public client flows" in public.message
    odd = sign_in_error({"error": "weird", "error_description": "says s3cr3t"}, secrets=["s3cr3t"])
    assert "s3cr3t" not in odd.message


def _jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_claims_give_roles_or_scopes_and_who() -> None:
    app = token_claims(_jwt({"roles": ["Policy.Read.All"], "appid": CLIENT}))
    assert granted_permissions(app) == {"Policy.Read.All"}
    assert signed_in_as(app, "?") == f"app {CLIENT}"
    user = token_claims(_jwt({"scp": "A B", "upn": "admin@contoso.com"}))
    assert granted_permissions(user) == {"A", "B"}
    assert signed_in_as(user, "?") == "admin@contoso.com"
    assert token_claims("not-a-jwt") == {}
    assert ops.covered(ops.POLICY_READ, frozenset({ops.POLICY_WRITE}))
    assert not ops.covered(ops.METHODS_WRITE, frozenset({ops.METHODS_READ}))


def test_settings_check_ids_and_urls() -> None:
    settings = GraphSettings(
        TENANT, CLIENT, AuthKind.CLIENT_SECRET, graph_url="https://graph.microsoft.us/beta/"
    )
    assert settings.authority == f"https://login.microsoftonline.com/{TENANT}"
    assert settings.app_scopes == ["https://graph.microsoft.us/.default"]
    assert settings.graph_base == "https://graph.microsoft.us/beta"
    with pytest.raises(InvalidInput, match="https"):
        GraphSettings(TENANT, CLIENT, AuthKind.CLIENT_SECRET, graph_url="http://x/beta")
    with pytest.raises(InvalidInput, match="client id"):
        GraphSettings(TENANT, "not-a-guid", AuthKind.CLIENT_SECRET)
    with pytest.raises(InvalidInput, match="tenant"):
        GraphSettings("bad tenant!", CLIENT, AuthKind.CLIENT_SECRET)
    with pytest.raises(InvalidInput):
        GraphSettings(
            TENANT, CLIENT, AuthKind.DEVICE_CODE, authority_host="https://u:p@login.example"
        )
