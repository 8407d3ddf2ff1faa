"""Two API servers on one PostgreSQL vault: a reveal limit, a revoked key and a disabled operator
hold on both at once (nothing is cached per instance except the per-key throttle)."""

from __future__ import annotations

from pathlib import Path

from oathdesk.vault.config import VaultLocation
from oathdesk.web.app import create_app
from tests.pg import PostgresServer
from tests.web.api_support import UPN, Api, add_user_and_token, assert_error, client, make_keys
from tests.web.conftest import make_web_vault, serve_app

REVEAL = {"upn": UPN, "method": "callback", "ticket": "INC-1", "channel": "chat"}


def test_two_instances_share_limits_keys_and_audit(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    location = VaultLocation(postgres.create_database(), tmp_path / "vault.key", None)
    web_vault = make_web_vault(location)
    keys = make_keys(web_vault)
    with (
        serve_app(create_app(web_vault.config())) as first,
        serve_app(create_app(web_vault.config())) as second,
    ):
        clients = [
            client(base, key) for base in (first, second) for key in (keys.admin, keys.helpdesk)
        ]
        admin_a, helpdesk_a, admin_b, helpdesk_b = clients
        api = Api(
            first, keys, admin_a, helpdesk_a, client(first, keys.auditor), client(first, None)
        )
        add_user_and_token(api)
        assert admin_b.patch("/settings", json={"reveal_limit_per_user": 2}).status_code == 200
        assert helpdesk_a.post("/reveal", json=REVEAL).status_code == 200
        assert helpdesk_b.post("/reveal", json=REVEAL).status_code == 200
        # the vault's 24-hour limit counts both instances' reveals
        assert_error(helpdesk_a.post("/reveal", json=REVEAL), 403, "policy_refused")
        assert_error(helpdesk_b.post("/reveal", json=REVEAL), 403, "policy_refused")
        records = admin_b.get("/audit", params={"action": "code.revealed"}).json()["items"]
        assert len(records) == 2
        assert admin_a.get("/audit/verify").json()["intact"] is True
        # a key revoked through one instance is refused by the other at once
        key_id = helpdesk_a.get("/me").json()["key_id"]
        assert admin_a.post(f"/keys/{key_id}/revoke").status_code == 200
        assert_error(helpdesk_b.get("/users"), 401, "unauthorized")
        # and an operator disabled through one instance is locked out of the other
        assert admin_b.post("/operators/audrey/disable").status_code == 204
        with client(first, keys.auditor) as auditor:
            assert_error(auditor.get("/audit"), 401, "unauthorized")
        for each in [*clients, api.auditor, api.anonymous]:
            each.close()
