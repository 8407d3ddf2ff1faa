"""The console's Entra page shows the last sync recorded in the vault (``entra.synced``) when this
server process ran none: one run by `oathdesk entra sync`, a housekeeping cycle, another server
or worker, or before a restart. Through a real server, the CLI as a real process, the fake Graph
over HTTPS."""

from __future__ import annotations

import subprocess

import httpx
import pyotp

from tests.graph.fake_graph.fake import FakeGraph
from tests.graph.fake_graph.fixture import fake_graph
from tests.graph.fake_graph.helpers import DEVICES, graph_client
from tests.vault_fixtures import cli_env
from tests.web.conftest import WebVault
from tests.web.test_pages_entra import DOMAIN, OATHDESK, _login, _stock

__all__ = ["fake_graph"]


def _cli(web_vault: WebVault, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", **cli_env(web_vault.location)}
    done = subprocess.run(
        [str(OATHDESK), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_entra_page_shows_a_sync_the_cli_ran(
    admin_client: httpx.Client, web_vault: WebVault, fake_graph: FakeGraph
) -> None:
    _login(web_vault, fake_graph)
    seeds = _stock(web_vault, 3)
    _cli(web_vault, "entra", "push", "--stock")
    taken, gone, _ = sorted(seeds)
    user = f"nora@{DOMAIN}"
    fake_graph.add_user(user)
    assert fake_graph.self_assign(user, taken, pyotp.TOTP(seeds[taken]).now()) == 204
    with graph_client(fake_graph) as admin:
        assert admin.delete(f"{DEVICES}/{fake_graph.device(gone)['id']}").status_code == 204
    assert 'id="no-sync"' in admin_client.get("/entra").text

    _cli(web_vault, "entra", "sync")

    page = admin_client.get("/entra").text
    assert 'id="no-sync"' not in page
    assert 'id="sync-recorded"' in page
    assert "1 assigned, 1 delivered, 1 user(s) added; 1 reported for a person" in page
    assert 'data-kind="not_in_entra"><td>reported</td><td>' in page
    assert gone in page
