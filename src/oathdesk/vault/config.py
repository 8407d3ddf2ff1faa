"""Where the vault and its master key are: explicit options first, then the environment.

SQLite by default (one file in the user's data directory); any SQLAlchemy URL, such as
``postgresql+psycopg://...``, through OATHDESK_DATABASE_URL for teams sharing one database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oathdesk.platform_io import data_home
from oathdesk.vault.keys import MASTER_KEY_ENV, MasterKey, read_key_file

VAULT_ENV = "OATHDESK_VAULT"
DATABASE_URL_ENV = "OATHDESK_DATABASE_URL"
KEY_FILE_ENV = "OATHDESK_KEY_FILE"


def default_data_dir(env: Mapping[str, str]) -> Path:
    return data_home(env) / "oathdesk"


@dataclass(frozen=True)
class VaultLocation:
    database_url: str
    key_file: Path
    sqlite_path: Path | None

    @property
    def display(self) -> str:
        if self.sqlite_path is not None:
            return str(self.sqlite_path)
        # Never show a password that may be in the URL.
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)


def locate(vault_path: str | None = None, env: Mapping[str, str] | None = None) -> VaultLocation:
    env = os.environ if env is None else env
    url = None if vault_path else env.get(DATABASE_URL_ENV)
    sqlite_path: Path | None = None
    if url is None:
        sqlite_path = Path(
            vault_path or env.get(VAULT_ENV) or default_data_dir(env) / "vault.sqlite3"
        )
        sqlite_path = sqlite_path.expanduser().resolve()
        url = f"sqlite:///{sqlite_path}"
    key_file = env.get(KEY_FILE_ENV)
    if key_file:
        key_path = Path(key_file).expanduser()
    elif sqlite_path is not None:
        key_path = sqlite_path.with_name(sqlite_path.stem + ".key")
    else:
        key_path = default_data_dir(env) / "vault.key"
    return VaultLocation(url, key_path, sqlite_path)


def load_master_key(location: VaultLocation, env: Mapping[str, str] | None = None) -> MasterKey:
    """The master key from $OATHDESK_MASTER_KEY, the key file, or the vault's passphrase."""
    env = os.environ if env is None else env
    from_env = env.get(MASTER_KEY_ENV)
    if from_env:
        return MasterKey.from_text(from_env, source=MASTER_KEY_ENV)
    if location.key_file.exists() or (
        location.sqlite_path is not None and not location.sqlite_path.exists()
    ):
        return read_key_file(location.key_file)
    from oathdesk.vault.db import create_engine
    from oathdesk.vault.passphrase import derive_master_key, read_params

    engine = create_engine(location.database_url)
    params = read_params(engine)
    engine.dispose()
    if params is None:
        return read_key_file(location.key_file)  # raises: no key file, says what to do
    return derive_master_key(read_passphrase(env), params)


def read_passphrase(env: Mapping[str, str] | None = None) -> str:
    """The vault's passphrase from $OATHDESK_PASSPHRASE, or a prompt without echo."""
    from oathdesk.vault.passphrase import PASSPHRASE_ENV

    env = os.environ if env is None else env
    passphrase = env.get(PASSPHRASE_ENV)
    if passphrase:
        return passphrase
    import getpass
    import sys

    if not sys.stdin.isatty():
        from oathdesk.vault.keys import MasterKeyError

        raise MasterKeyError(f"this vault is sealed with a passphrase; set {PASSPHRASE_ENV}")
    return getpass.getpass("Vault passphrase (input hidden): ")
