"""Playwright harness: Debian's Chromium, headless, against a real uvicorn server on 127.0.0.1.

Every page a test opens is watched: each request is recorded (URL, headers, body) so a test can
prove a secret never left the browser, and console errors, uncaught exceptions and CSP
violations are collected so a test can prove a page ran cleanly.

Screenshots: ``shoot(page, name)`` always writes into the test's tmp dir; when
``OATHDESK_SCREENSHOTS`` names a directory (``OATHDESK_SCREENSHOTS=docs/screenshots``), it also
saves an optimised copy there. That is how the PNGs in docs/screenshots are made.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    sync_playwright,
)

from oathdesk.vault.config import VaultLocation
from oathdesk.web.app import create_app
from tests.web.conftest import WebVault, make_web_vault, serve_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
SCREENSHOTS_ENV = "OATHDESK_SCREENSHOTS"

# A CSP violation is also reported to the console by Chromium; this listener makes it explicit
# (and catches the ones Chromium reports only as events). Injected by Playwright over CDP, so the
# page's own CSP does not apply to it.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@dataclass(frozen=True)
class SeenRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def carries(self, needle: bytes) -> bool:
        haystack = [
            self.url.encode(),
            self.body,
            *(f"{k}: {v}".encode() for k, v in self.headers.items()),
        ]
        return any(needle in part for part in haystack)


@dataclass
class PageWatch:
    """What a page did: its requests, console errors, uncaught exceptions."""

    requests: list[SeenRequest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(
            SeenRequest(
                request.method,
                request.url,
                request.all_headers(),
                request.post_data_buffer or b"",
            )
        )

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "warning"):
            return
        self.errors.append(f"{message.type}: {message.text} ({message.location.get('url')})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


# Module scope, not session: while Playwright's sync API runs it holds an asyncio loop in the
# thread, and asyncio.run() in a later non-browser test on the same xdist worker would fail.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs Debian's chromium package")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


def new_context(browser: Browser, storage_state: Any = None) -> BrowserContext:
    """A fresh context; ``storage_state`` (from ``BrowserContext.storage_state()``) starts it
    with another context's cookies, e.g. a session signed in once for a module's tests."""
    context = browser.new_context(
        viewport=VIEWPORT, locale="en-GB", timezone_id="UTC", storage_state=storage_state
    )
    context.add_init_script(CSP_LISTENER)
    context.set_default_timeout(15_000)
    return context


def watch(page: Page) -> PageWatch:
    seen = PageWatch()
    page.on("request", seen.on_request)
    page.on("console", seen.on_console)
    page.on("pageerror", seen.on_page_error)
    return seen


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = new_context(browser)
    yield opened
    opened.close()


@pytest.fixture
def sso_page(browser: Browser) -> Iterator[Page]:
    """A page for sign-ins at the stand-in identity provider (``idp``)."""
    # The stand-in's certificate comes from a throwaway CA that Chromium does not know; the
    # console itself is plain http on 127.0.0.1 and needs no exception.
    context = browser.new_context(
        viewport=VIEWPORT, locale="en-GB", timezone_id="UTC", ignore_https_errors=True
    )
    context.add_init_script(CSP_LISTENER)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def page_watch(page: Page) -> PageWatch:
    return watch(page)


@pytest.fixture(scope="module")
def module_web_vault(tmp_path_factory: pytest.TempPathFactory) -> WebVault:
    """One vault (ada the admin, hugo from the helpdesk, audrey the auditor) per test module."""
    directory = tmp_path_factory.mktemp("browser-vault")
    path = directory / "vault.sqlite3"
    return make_web_vault(VaultLocation(f"sqlite:///{path}", directory / "vault.key", path))


@pytest.fixture(scope="module")
def module_server(module_web_vault: WebVault) -> Iterator[str]:
    """A live console on 127.0.0.1 shared by a module's tests (the toolset keeps no state)."""
    with serve_app(create_app(module_web_vault.config())) as base_url:
        yield base_url


def save_screenshot(png: bytes, name: str, tmp_dir: Path) -> Path:
    """Keep the screenshot in ``tmp_dir``; also in $OATHDESK_SCREENSHOTS, palette-optimised."""
    target = tmp_dir / f"{name}.png"
    target.write_bytes(png)
    docs_dir = os.environ.get(SCREENSHOTS_ENV)
    if docs_dir:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        with Image.open(io.BytesIO(png)) as image:
            small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
            small.save(Path(docs_dir) / f"{name}.png", optimize=True)
    return target


Shoot = Callable[[Page, str], Path]


@pytest.fixture
def shoot(tmp_path: Path) -> Shoot:
    def take(page: Page, name: str) -> Path:
        return save_screenshot(page.screenshot(full_page=False), name, tmp_path)

    return take


def qr_codes_in(image: Image.Image) -> list[str]:
    """The texts of the QR codes zxing-cpp finds in a screenshot (other symbologies ignored:
    its 1-D readers sometimes see a short "barcode" in a QR code's modules)."""
    return [
        str(result.text)
        for result in zxingcpp.read_barcodes(image.convert("RGB"))
        if result.valid and result.format == zxingcpp.BarcodeFormat.QRCode
    ]
