"""The console's Entra page through a real server, against the fake Graph (a real HTTPS server):
the stock upload shows the dry run's warning and uploads only once confirmed; a sync shows what
it applied and what it left for a person. The connection is made by the real `oathdesk entra
login` on the same vault."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pyotp
import pytest

from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import Actor, NewToken
from tests.graph.fake_graph.fake import FakeGraph
from tests.graph.fake_graph.fixture import fake_graph
from tests.graph.fake_graph.helpers import DEVICES, graph_client
from tests.vault_fixtures import cli_env
from tests.web.conftest import WebVault
from tests.web.helpdesk_support import submit

__all__ = ["fake_graph"]

LOCAL = Actor("local:test", "admin")
DOMAIN = "contoso.onmicrosoft.com"
OATHDESK = Path(sys.executable).parent / "oathdesk"
LEAVES = "each seed uploaded leaves the vault for Microsoft&#39;s inventory"


def _login(web_vault: WebVault, fake: FakeGraph) -> None:
    argv = [str(OATHDESK), "entra", "login", "--tenant", fake.tenant_id]
    argv += ["--client-id", fake.client_id, "--client-secret", "-"]
    argv += ["--authority-host", fake.authority_host, "--graph-url", fake.graph_url]
    argv += ["--ca-bundle", fake.ca_bundle]
    env = {"PATH": "/usr/bin:/bin", **cli_env(web_vault.location)}
    done = subprocess.run(
        argv, input=fake.client_secret + "\n", env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _stock(web_vault: WebVault, count: int) -> dict[str, str]:
    """``count`` tokens in stock; serial -> base32 seed."""
    seeds = {f"4{n:09d}": base64.b32encode(os.urandom(20)).decode() for n in range(count)}
    vault = web_vault.open()
    try:
        vault.add_tokens(
            LOCAL,
            [
                NewToken(s, "Token2", "C202", TokenKind.CLASSIC, secret=base64.b32decode(b32))
                for s, b32 in seeds.items()
            ],
        )
    finally:
        vault.close()
    return seeds


def test_stock_upload_previews_confirms_and_a_sync_shows_its_result(
    admin_client: httpx.Client, web_vault: WebVault, fake_graph: FakeGraph
) -> None:
    empty = admin_client.get("/entra")
    assert empty.status_code == 200
    assert 'id="no-sync"' in empty.text
    assert 'href="/entra"' in empty.text  # in the admin's navigation
    not_connected = submit(admin_client, "/entra/sync", {}, from_page="/entra")
    assert not_connected.status_code == 404
    assert "oathdesk entra login" in not_connected.text

    _login(web_vault, fake_graph)
    seeds = _stock(web_vault, 3)
    preview = submit(admin_client, "/entra/push-stock", {"step": "preview"}, from_page="/entra")
    assert preview.status_code == 200, preview.text
    assert f"3 token(s) would be uploaded: {LEAVES}" in preview.text
    assert 'id="stock-upload-form"' in preview.text
    assert preview.text.count("would create unassigned") == 3
    assert fake_graph.devices == []

    unconfirmed = submit(admin_client, "/entra/push-stock", {"step": "upload"}, from_page="/entra")
    assert unconfirmed.status_code == 400
    assert "confirm that each seed uploaded leaves the vault for Microsoft" in unconfirmed.text
    assert fake_graph.devices == []

    uploaded = submit(
        admin_client, "/entra/push-stock", {"step": "upload", "confirm": "yes"}, from_page="/entra"
    )
    assert uploaded.status_code == 200, uploaded.text
    assert "3 uploaded as stock, 0 failed" in uploaded.text
    vault = web_vault.open()
    try:
        for serial in seeds:
            assert fake_graph.device(serial)["assignedTo"] is None
            token = vault.get_token(serial)
            assert (token.state, token.upn) == (TokenState.REGISTERED, None)
    finally:
        vault.close()
    again = submit(admin_client, "/entra/push-stock", {"step": "preview"}, from_page="/entra")
    assert 'id="nothing-to-push"' in again.text

    # one user takes a token at My Security Info; another admin deletes one from Entra
    taken, gone, _ = sorted(seeds)
    user = f"nora@{DOMAIN}"
    fake_graph.add_user(user)
    code = pyotp.TOTP(seeds[taken]).now()  # Entra accepts +-1 day at activation
    assert fake_graph.self_assign(user, taken, code) == 204
    with graph_client(fake_graph) as admin:
        assert admin.delete(f"{DEVICES}/{fake_graph.device(gone)['id']}").status_code == 204

    synced = submit(admin_client, "/entra/sync", {}, from_page="/entra")
    assert synced.status_code == 200, synced.text
    assert "1 assigned, 1 delivered, 1 user(s) added; 1 reported for a person" in synced.text
    assert 'data-kind="self_activated"><td>applied</td>' in synced.text
    assert 'data-kind="not_in_entra"><td>reported</td>' in synced.text
    shown = admin_client.get("/entra")
    assert "Last sync from this console" in shown.text
    assert "1 reported for a person" in shown.text
    vault = web_vault.open()
    try:
        token = vault.get_token(taken)
        assert (token.state, token.upn) == (TokenState.DELIVERED, user)
    finally:
        vault.close()
    pages = "".join(r.text for r in (preview, uploaded, synced, shown))
    assert not any(seed in pages for seed in seeds.values())


@pytest.mark.parametrize("path", ["/entra/sync", "/entra/push-stock"])
def test_the_entra_page_is_the_admins(
    helpdesk_client: httpx.Client, path: str, web_vault: WebVault
) -> None:
    assert helpdesk_client.get("/entra").status_code == 403
    refused = submit(helpdesk_client, path, {"step": "preview"}, from_page="/")
    assert refused.status_code == 403
    assert 'href="/entra"' not in helpdesk_client.get("/").text
