"""Reading commands start quickly (issue 15): they import only what they use. No migration
tool, web stack, Graph client, NFC stack or process inspection is loaded to read a vault; on
SQLite not even SQLAlchemy (``vault.quickread``) or, unless a key is needed, the cipher; and a
table printed to a pipe is drawn without rich."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vault_fixtures import cli_env

HEAVY = (
    "alembic",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "jinja2",
    "httpx",
    "msal",
    "smartcard",
    "psutil",
    "PIL",
)


@pytest.fixture(scope="module")
def vault_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from oathdesk.vault.config import VaultLocation

    path = Path(tmp_path_factory.mktemp("start")) / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", path.with_suffix(".key"), path)
    env = {**os.environ, **cli_env(location)}
    env.pop("OATHDESK_DATABASE_URL", None)
    oathdesk = str(Path(sys.executable).with_name("oathdesk"))
    subprocess.run([oathdesk, "init"], env=env, capture_output=True, check=True)
    subprocess.run(
        [oathdesk, "user", "add", "a@contoso.com"], env=env, capture_output=True, check=True
    )
    subprocess.run(
        [oathdesk, "token", "add", "--serial", "S0001", "--generate", "--user", "a@contoso.com"],
        env=env,
        capture_output=True,
        check=True,
    )
    return env


@pytest.mark.parametrize(
    "command",
    [
        ["token", "list"],
        ["token", "list", "--json"],
        ["token", "show", "S0001"],
        ["user", "show", "a@contoso.com"],
        ["user", "list"],
        ["user", "list", "--json"],
        ["audit", "verify"],
        ["drift"],
        ["drift", "--json"],
    ],
)
def test_reading_commands_import_only_what_they_use(
    vault_env: dict[str, str], command: list[str]
) -> None:
    probe = (
        "import sys\n"
        f"sys.argv = ['oathdesk', *{command!r}]\n"
        "from oathdesk.cli.entry import main\n"
        "status = main()\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    env = vault_env
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-500:]
    loaded = {line.split(".")[0] for line in result.stderr.split()}
    assert [heavy for heavy in HEAVY if heavy in loaded] == []
    # A SQLite vault is read with the standard library's sqlite3 (vault/quickread.py).
    assert "sqlalchemy" not in loaded
    assert "rich" not in loaded  # a table to a pipe is drawn without rich (cli/table_text.py)
    if command != ["audit", "verify"]:
        # Reading no secret, they check the master key by its public id and never unwrap one.
        assert "cryptography" not in loaded
