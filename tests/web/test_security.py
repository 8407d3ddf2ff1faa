"""Headers, CSP, cookies and CSRF, on every page the app serves (a real server, real HTTP)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from oathdesk.web.app import create_app, page_modules
from oathdesk.web.config import WebConfig
from oathdesk.web.security import CONTENT_SECURITY_POLICY, COOKIE_PLAIN, COOKIE_SECURE
from tests.web.conftest import WebVault, csrf_token, new_client, post_form, serve_app

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "oathdesk" / "web" / "templates"


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, where
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "unsafe-eval" not in headers["content-security-policy"]
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where
    assert headers.get("x-frame-options") == "DENY", where
    assert "camera=()" in headers.get("permissions-policy", ""), where
    if not response.request.url.path.startswith("/static/"):
        assert headers.get("cache-control") == "no-store", where
    assert "strict-transport-security" not in headers, where  # plain HTTP here
    assert "server" not in headers or "uvicorn" not in headers["server"].lower()


def plain_get_paths() -> list[str]:
    """Every page route without path parameters (other engineers' pages too)."""
    return sorted(
        {
            route.path
            for module in page_modules()
            for route in module.router.routes
            if isinstance(route, APIRoute)
            and "GET" in (route.methods or ())
            and "{" not in route.path
        }
    )


def test_every_page_has_the_security_headers(
    web_config: WebConfig, admin_client: httpx.Client, live_server: str
) -> None:
    paths = plain_get_paths()
    assert {"/", "/signin", "/operators"} <= set(paths)
    extra = ["/no/such/page", "/static/app.css", "/static/app.js", "/setup/not-a-token", "/enrol"]
    for path in [*paths, *extra]:
        assert_security_headers(admin_client.get(path))
    with new_client(live_server) as anonymous:
        for path in ["/", "/signin", "/operators", "/no/such/page", "/static/app.css"]:
            assert_security_headers(anonymous.get(path))
        assert_security_headers(anonymous.post("/signin", data={"name": "x"}))


def test_pages_carry_no_inline_script_or_style(
    web_config: WebConfig, admin_client: httpx.Client
) -> None:
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    inline_style = re.compile(r"<style|\sstyle\s*=|\son[a-z]+\s*=", re.IGNORECASE)
    for path in plain_get_paths():
        response = admin_client.get(path)
        if "text/html" in response.headers.get("content-type", ""):
            assert not inline_script.search(response.text), f"inline <script> on {path}"
            assert not inline_style.search(response.text), f"inline style/handler on {path}"
    for template in TEMPLATES.glob("**/*.html"):
        text = template.read_text(encoding="utf-8")
        assert not inline_script.search(text), f"inline <script> in {template.name}"
        assert not inline_style.search(text), f"inline style or handler in {template.name}"
        assert "https://" not in text, f"external asset in {template.name}"


def test_session_cookie_flags_over_plain_http(live_server: str, web_vault: WebVault) -> None:
    with new_client(live_server) as client:
        response = client.get("/signin")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_PLAIN}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie
        assert "Max-Age" not in cookie  # a browser-session cookie
        assert "expires" not in cookie.lower()


def test_secure_cookies_use_the_host_prefix_and_hsts(web_vault: WebVault) -> None:
    with serve_app(create_app(web_vault.config(secure_cookies=True))) as base_url:
        response = httpx.get(base_url + "/signin")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_SECURE}=")
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "Domain" not in cookie
        assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_forwarded_proto_counts_only_from_a_trusted_proxy(web_vault: WebVault) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with serve_app(create_app(web_vault.config())) as base_url:
        untrusted = httpx.get(base_url + "/signin", headers=forwarded)
        assert untrusted.headers["set-cookie"].startswith(f"{COOKIE_PLAIN}=")
        assert "strict-transport-security" not in untrusted.headers
    trusted = web_vault.config(trusted_proxies=frozenset({"127.0.0.1"}))
    with serve_app(create_app(trusted)) as base_url:
        behind_tls = httpx.get(base_url + "/signin", headers=forwarded)
        assert behind_tls.headers["set-cookie"].startswith(f"{COOKIE_SECURE}=")
        assert "Secure" in behind_tls.headers["set-cookie"]
        assert "strict-transport-security" in behind_tls.headers
        direct = httpx.get(base_url + "/signin")  # the proxy's own plain-HTTP requests
        assert direct.headers["set-cookie"].startswith(f"{COOKIE_PLAIN}=")


@pytest.mark.parametrize("token", [None, "", "forged-token-value"])
def test_a_form_without_the_right_csrf_token_is_refused(
    admin_client: httpx.Client, web_vault: WebVault, token: str | None
) -> None:
    data = {"name": "mallory", "role": "admin", "password": "x" * 8 + "yz1234", "repeat": ""}
    data["repeat"] = data["password"]
    if token is not None:
        data["csrf_token"] = token
    response = admin_client.post("/operators", data=data)
    assert response.status_code == 403
    assert "this form has expired or did not come from this console" in response.text
    listing = admin_client.get("/operators").text
    assert "mallory" not in listing
    signout = admin_client.post("/signout", data={"csrf_token": token or ""})
    assert signout.status_code == 403
    assert admin_client.get("/").status_code == 200  # still signed in


def test_a_csrf_token_from_another_session_is_refused(
    admin_client: httpx.Client, helpdesk_client: httpx.Client
) -> None:
    other = csrf_token(helpdesk_client)
    response = admin_client.post("/signout", data={"csrf_token": other})
    assert response.status_code == 403
    assert admin_client.get("/").status_code == 200
    assert post_form(admin_client, "/signout", {}).status_code == 303


def test_errors_are_one_line_pages_never_a_traceback(
    admin_client: httpx.Client, live_server: str
) -> None:
    missing = admin_client.get("/no/such/page")
    assert missing.status_code == 404
    assert "There is no such page here." in missing.text
    refused = admin_client.get("/setup/not-a-real-token")
    assert refused.status_code == 404
    assert "this set-up link was used already or has expired" in refused.text
    wrong_method = admin_client.put("/signin")
    assert wrong_method.status_code == 405
    for response in (missing, refused, wrong_method):
        assert "Traceback" not in response.text
        assert 'class="error-message"' in response.text


def test_an_unexpected_error_is_a_500_page_and_a_one_word_log_line(web_vault: WebVault) -> None:
    app = create_app(web_vault.config())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("the caller typed 4711-secret here")

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("oathdesk.web.access")
    with serve_app(app) as base_url:  # (uvicorn configures logging as it starts)
        logger.addHandler(handler)
        try:
            response = httpx.get(base_url + "/boom")
        finally:
            logger.removeHandler(handler)
    assert response.status_code == 500
    assert_security_headers(response)
    assert "an unexpected internal error happened" in response.text
    assert "4711-secret" not in response.text
    assert "Traceback" not in response.text
    logged = [record.getMessage() for record in records]
    assert "unexpected RuntimeError" in logged
    assert not any("4711-secret" in line for line in logged)
