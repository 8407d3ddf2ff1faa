"""A new team's first hour, in Chromium against `oathdesk serve` started as a real process.

The first admin opens the one-time set-up link the server printed, chooses a password, scans
the TOTP QR code (the test decodes the screenshot with zxing-cpp), adds a helpdesk operator,
imports an Entra CSV and signs out. The helpdesk operator signs in, finds the user, records how
the caller was verified, and reveals a code that equals oathtool's for the CSV's secret.
Screenshots of each page go to docs/screenshots when OATHDESK_SCREENSHOTS is set.
"""

from __future__ import annotations

import io
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page

from oathdesk.otp import hotp, step_at
from oathdesk.seed import encode_base32, parse_seed
from tests.conftest import OATHDESK
from tests.web.browser.conftest import PageWatch, Shoot, qr_codes_in
from tests.web.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_PASSWORD = "our team's first admin key 2026"
HELPDESK_PASSWORD = "answers the phone at desk 42"
CALLER = "helga.braun@contoso.com"


def oathtool(secret_b32: str, at: float) -> str:
    """oathtool's TOTP for the secret at ``at``; the secret goes on stdin, not in argv."""
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    result = subprocess.run(
        ["oathtool", "--totp", "-b", f"--now={stamp}", "-"],
        input=secret_b32,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


class Authenticator:
    """The operator's phone app: a TOTP secret read from the QR code on the screen."""

    def __init__(self, qr: Locator) -> None:
        png = qr.screenshot()
        with Image.open(io.BytesIO(png)) as image:
            found = qr_codes_in(image)
        assert len(found) == 1, "the enrolment QR code does not scan"
        uri = found[0]
        assert uri.startswith("otpauth://totp/")
        self.secret = parse_seed(uri).secret
        self.last_step = 0

    def code(self) -> str:
        """A code for a step the vault has not accepted yet (each step works once)."""
        while True:
            now = step_at(time.time())
            step = max(now, self.last_step + 1)
            if step <= now + 1:
                self.last_step = step
                return hotp(self.secret, step)
            time.sleep(1)


def read_banner(process: subprocess.Popen[str], timeout: float = 30) -> list[str]:
    """Standard output up to "press Ctrl-C to stop". A thread reads it: select() on the pipe
    would miss lines already sitting in Python's read buffer."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith("press Ctrl-C"):
            return seen
    raise AssertionError(f"`oathdesk serve` printed no start-up banner: {seen}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`oathdesk serve` on a fresh machine; yields (base URL, the one-time set-up link)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OATHDESK_")}
    env.update({"XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        [str(OATHDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        banner = "\n".join(read_banner(process))
        base_url = f"http://127.0.0.1:{port}"
        links = re.findall(rf"{re.escape(base_url)}/setup/\S+", banner)
        assert len(links) == 1, banner
        yield base_url, links[0]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def code_digits(grouped: str) -> str:
    return grouped.replace(" ", "")


def submit(page: Page, form: str) -> None:
    """Click the form's submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.locator(f"{form} button[type=submit]").first.click()


def sign_in(page: Page, base_url: str, name: str, password: str, code: str) -> None:
    page.goto(f"{base_url}/signin")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.fill("input[name=code]", code)
    submit(page, "main form")


def write_entra_csv(path: Path) -> dict[str, str]:
    """The CSV an Entra admin gets from the vendor (plus one token per colleague)."""
    secrets_by_upn = {
        CALLER: encode_base32(secrets.token_bytes(20)),
        "olaf.berg@contoso.com": encode_base32(secrets.token_bytes(20)),
        "mia.keller@contoso.com": encode_base32(secrets.token_bytes(20)),
    }
    rows = ["upn,serial number,secret key,time interval,manufacturer,model"]
    for index, (upn, secret) in enumerate(secrets_by_upn.items()):
        rows.append(f"{upn},6023{index:04d},{secret},30,Token2,C202")
    path.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return secrets_by_upn


def test_new_team_sets_up_and_the_helpdesk_reveals_oathtools_code(
    served: tuple[str, str], page: Page, page_watch: PageWatch, shoot: Shoot, tmp_path: Path
) -> None:
    base_url, setup_link = served

    # -- the first admin, through the one-time link ------------------------------------------
    page.goto(setup_link)
    page.fill("input[name=name]", "ada")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.fill("input[name=repeat]", ADMIN_PASSWORD)
    shoot(page, "setup")
    submit(page, "main form")
    assert page.url == f"{base_url}/enrol"
    ada = Authenticator(page.locator("img.qr"))
    shoot(page, "enrol")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.fill("input[name=code]", ada.code())
    submit(page, "main form")
    assert page.url == f"{base_url}/operators"
    assert "Welcome, ada" in page.inner_text("main")

    # -- a helpdesk operator ------------------------------------------------------------------
    page.fill("form[action='/operators'] input[name=name]", "hugo")
    page.select_option("form[action='/operators'] select[name=role]", "helpdesk")
    page.fill("form[action='/operators'] input[name=password]", HELPDESK_PASSWORD)
    page.fill("form[action='/operators'] input[name=repeat]", HELPDESK_PASSWORD)
    submit(page, "form[action='/operators']")
    hugo = Authenticator(page.locator("img.qr"))
    page.goto(f"{base_url}/operators")
    assert page.locator("tr[data-operator=hugo]").count() == 1
    shoot(page, "operators")

    # -- the vendor's Entra CSV ---------------------------------------------------------------
    csv_file = tmp_path / "contoso-order.csv"
    secrets_by_upn = write_entra_csv(csv_file)
    page.goto(f"{base_url}/import")
    page.set_input_files("#file", str(csv_file))
    submit(page, "#import-form")
    summary = page.inner_text("#import-summary")
    assert "Imported 3 tokens from contoso-order.csv" in summary
    shoot(page, "import")
    # The number the helpdesk will call back on, from HR's records (a callback needs it).
    page.goto(f"{base_url}/users/{CALLER}/edit")
    page.fill("#phone", "+44 20 7946 0958")
    submit(page, "#user-edit-form")
    assert page.inner_text("#user-phone").startswith("+44 20 7946 0958")
    page.locator("form.signout button").click()
    page.wait_for_url(f"{base_url}/signin")

    # -- the helpdesk, with a caller on the phone ---------------------------------------------
    page.fill("input[name=name]", "hugo")
    page.fill("input[name=password]", HELPDESK_PASSWORD)
    page.fill("input[name=code]", hugo.code())
    shoot(page, "signin")
    submit(page, "main form")
    assert "Signed in as hugo (helpdesk)" in page.inner_text("main")
    page.goto(f"{base_url}/search")
    page.fill("#q", "helga")
    submit(page, "form[role=search]")
    shoot(page, "search")
    with page.expect_navigation():
        page.locator("#user-results a", has_text=CALLER).click()
    assert page.inner_text("#user-upn") == CALLER
    shoot(page, "user")
    with page.expect_navigation():
        page.click("#reveal-link")
    page.check("input[name=method][value=callback]")
    page.fill("#ticket", "INC-4711")
    page.fill("#note", "called back on the number on file; she confirmed her employee number")
    page.check("input[name=channel][value=phone]")
    shoot(page, "reveal-form")
    page.clock.install()  # real time, but the test can jump ahead to see the code go away
    before = time.time()
    submit(page, "#reveal-form")
    after = time.time()
    shown = page.inner_text("#primary-code")
    assert re.fullmatch(r"\d{3} \d{3}", shown), shown
    assert page.get_attribute("#primary-code", "data-step-offset") == "0"
    expected = {oathtool(secrets_by_upn[CALLER], moment) for moment in (before, after)}
    assert shown.replace(" ", "") in expected
    shoot(page, "reveal")

    # A minute later nothing of the code is left in the page.
    page.clock.fast_forward("01:01")
    page.wait_for_selector("#hidden-note", state="visible")
    assert page.locator("#primary-code").count() == 0
    assert code_digits(shown) not in page.content()

    # The code travelled only in the POST response: in no URL the browser requested.
    assert all(code_digits(shown) not in request.url for request in page_watch.requests)
    assert page_watch.errors == []
