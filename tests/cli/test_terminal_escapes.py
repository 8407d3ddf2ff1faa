"""Text that came from a file (a vendor's manufacturer or model, stored by an import) is shown
escaped: it cannot move the cursor, recolour or clear the terminal, forge a line, or be read as
rich markup (which would style it or, with an unmatched tag, crash the listing)."""

from __future__ import annotations

import re
from pathlib import Path

from oathdesk.seed import generate_secret
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind
from oathdesk.vault.models import NewToken
from oathdesk.vault.vault import Vault
from tests.conftest import RunCli
from tests.vault_fixtures import ADMIN, cli_env

RAW_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HOSTILE_MANUFACTURER = "ACME\x1b[2J\x1b]0;pwned\x07"
HOSTILE_MODEL = "c200\x9b31m[/x][bold]\u202eevil\nforged line"


def test_listings_escape_what_a_file_put_in_the_vault(tmp_path: Path, cli: RunCli) -> None:
    path = tmp_path / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, ADMIN)
    vault.add_token(
        ADMIN,
        NewToken(
            "1234567", HOSTILE_MANUFACTURER, HOSTILE_MODEL, TokenKind.CLASSIC, generate_secret()
        ),
    )
    vault.close()
    env = cli_env(location)
    for command in (["token", "list"], ["token", "show", "1234567"]):
        result = cli(*command, env=env)
        assert result.returncode == 0, result
        assert not RAW_CONTROLS.search(result.stdout), result.stdout
        assert "forged line" not in result.stdout.splitlines()[-1]
        assert "[/x][bold]" in result.stdout  # shown as typed, not read as markup
        assert "\\x9b31m" in result.stdout
