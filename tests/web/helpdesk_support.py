"""Shared by the helpdesk page tests: a vault with users and tokens, forms posted the way the
browser posts them, and small HTML readers (stdlib only)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser

import httpx

from oathdesk.seed import encode_base32
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.vault import NewToken
from tests.web.conftest import LOCAL_ADMIN, WebVault, csrf_token

HELGA = "helga@contoso.com"
OLAF = "olaf@contoso.com"
HELGA_SERIAL = "86596120001"
OLAF_SERIAL = "60234567"
STOCK_SERIAL = "60239999"
HELGA_SECRET = bytes(range(50, 70))
HELGA_B32 = encode_base32(HELGA_SECRET)


def populate(web_vault: WebVault) -> None:
    """Helga: a programmable token in the post (DHL). Olaf: a classic token, registered.
    One classic token in stock."""
    vault = web_vault.open()
    try:
        vault.add_user(LOCAL_ADMIN, HELGA, display_name="Helga Braun", phone="+41790000000")
        vault.add_user(LOCAL_ADMIN, OLAF, display_name="Olaf Berg")
        vault.add_token(
            LOCAL_ADMIN,
            NewToken(
                HELGA_SERIAL,
                "Token2",
                "miniOTP-2-i",
                TokenKind.PROGRAMMABLE,
                HELGA_SECRET,
                upn=HELGA,
            ),
        )
        vault.add_token(
            LOCAL_ADMIN,
            NewToken(OLAF_SERIAL, "Token2", "C202", TokenKind.CLASSIC, bytes([7]) * 20, upn=OLAF),
        )
        vault.add_token(
            LOCAL_ADMIN,
            NewToken(STOCK_SERIAL, "Token2", "C202", TokenKind.CLASSIC, bytes([9]) * 20),
        )
        vault.move(LOCAL_ADMIN, HELGA_SERIAL, TokenState.BURNED)
        vault.move(LOCAL_ADMIN, HELGA_SERIAL, TokenState.REGISTERED)
        vault.move(
            LOCAL_ADMIN, HELGA_SERIAL, TokenState.SHIPPED, carrier="DHL", tracking="JD014600003"
        )
        vault.move(LOCAL_ADMIN, OLAF_SERIAL, TokenState.REGISTERED)
    finally:
        vault.close()


def submit(
    client: httpx.Client,
    path: str,
    data: dict[str, str],
    *,
    from_page: str = "/search",
    files: dict[str, tuple[str, bytes, str]] | None = None,
) -> httpx.Response:
    """POST a form with the session's CSRF token, as the browser does."""
    fields = {**data, "csrf_token": csrf_token(client, from_page)}
    return client.post(path, data=fields, files=files)


def oathtool(secret_b32: str, at: float) -> str:
    """The code oathtool computes for ``secret_b32`` at ``at`` (secret on stdin, not argv)."""
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return subprocess.run(
        ["oathtool", "--totp", "-b", f"--now={stamp}", "-"],
        input=secret_b32,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


VOID = frozenset({"br", "input", "img", "meta", "link", "hr", "source", "wbr", "col", "area"})


class _ById(HTMLParser):
    """Collects the text and attributes of the element with a given id."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.depth = 0
        self.text: list[str] = []
        self.attrs: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            if not self.depth and self.attrs is None and dict(attrs).get("id") == self.wanted:
                self.attrs = {k: v or "" for k, v in attrs}
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.wanted and self.attrs is None:
            self.attrs = {k: v or "" for k, v in attrs}
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def element(html: str, element_id: str) -> tuple[str, dict[str, str]] | None:
    """The text and attributes of the element ``id=element_id``, or None."""
    parser = _ById(element_id)
    parser.feed(html)
    if parser.attrs is None:
        return None
    return " ".join("".join(parser.text).split()), parser.attrs


def text_of(html: str, element_id: str) -> str:
    found = element(html, element_id)
    assert found is not None, f"no element #{element_id} on the page"
    return found[0]


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows of a table, each as its cells' text."""
    section = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert section, f"no table #{table_id}"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section.group(0), re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in row] for row in cells if row]
