"""Fixtures for the web console: a vault with operators whose passwords and TOTP secrets the test
knows, a real uvicorn server on 127.0.0.1, and httpx clients already signed in.

``live_server`` serves ``create_app(web_config)``; a test that needs other settings (a short idle
timeout, a second instance) builds its own config with ``dataclasses.replace`` and calls
``serve_app``. Sign-ins use ``Operator.next_code()``: the vault accepts each TOTP step once (and
the codes of the previous, current and next step), so two sign-ins per operator need no wait.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from oathdesk.cli.serve import uvicorn_options
from oathdesk.otp import hotp, step_at
from oathdesk.seed import parse_seed
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.models import Actor
from oathdesk.vault.operators import OperatorDirectory
from oathdesk.vault.vault import Vault
from oathdesk.web.app import create_app
from oathdesk.web.config import WebConfig
from tests.identity.standin import StandInIdP, running
from tests.window_codes import code_absent_from_window

LOCAL_ADMIN = Actor("local:test", "admin")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
QR_IMAGE = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@dataclass
class Operator:
    """An operator as the test knows them: name, role, password and TOTP secret."""

    name: str
    role: str
    password: str = field(repr=False)
    secret: bytes = field(repr=False)
    last_step: int = 0

    def next_code(self) -> str:
        """A code the vault has not accepted yet (waits for the next step if need be), counted
        as spent."""
        self.last_step = self._unspent_step()
        return hotp(self.secret, self.last_step)

    def unspent_code(self) -> str:
        """A code the vault would accept, for an attempt it refuses for another reason (a wrong
        password, a role): a refused attempt spends no step, so this one stays the next code
        and the sign-in after it need not wait up to 30 s for a new step."""
        return hotp(self.secret, self._unspent_step())

    def _unspent_step(self) -> int:
        """The current step, then the next one: the previous step would be refused if the
        clock crossed a step boundary before the server checks it."""
        while True:
            now = step_at(time.time())
            step = max(now, self.last_step + 1)
            if step <= now + 1:
                return step
            time.sleep(1)

    def wrong_code(self) -> str:
        """A code of none of the steps the server may accept: its +-1 step, around this step
        or the next (if a step begins before the request is checked)."""
        return code_absent_from_window(self.secret, step_at(time.time()), 2, 2)


def enrol(vault: Vault, name: str, role: str, password: str) -> Operator:
    enrolment = OperatorDirectory(vault).add(LOCAL_ADMIN, name, role, password)
    return Operator(name, role, password, parse_seed(enrolment.otpauth_uri).secret)


@dataclass
class WebVault:
    location: VaultLocation
    master_key: MasterKey = field(repr=False)
    admin: Operator
    helpdesk: Operator
    auditor: Operator

    def config(self, **changes: Any) -> WebConfig:
        return dataclasses.replace(WebConfig(self.location, self.master_key), **changes)

    def open(self) -> Vault:
        return Vault.open(self.location, self.master_key)


def make_web_vault(location: VaultLocation) -> WebVault:
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    vault = Vault.create(location, key, LOCAL_ADMIN)
    try:
        admin = enrol(vault, "ada", "admin", "correct horse battery staple")
        helpdesk = enrol(vault, "hugo", "helpdesk", "answers the phone at desk 42")
        auditor = enrol(vault, "audrey", "auditor", "reads the logs every morning 7")
    finally:
        vault.close()
    return WebVault(location, key, admin, helpdesk, auditor)


@pytest.fixture(scope="session")
def web_vault_template(tmp_path_factory: pytest.TempPathFactory) -> WebVault:
    """Made once per test run (migrations and argon2 hashes take a while), copied per test."""
    folder = tmp_path_factory.mktemp("web-vault-template")
    path = folder / "vault.sqlite3"
    return make_web_vault(VaultLocation(f"sqlite:///{path}", folder / "vault.key", path))


@pytest.fixture
def web_vault(web_vault_template: WebVault, tmp_path: Path) -> WebVault:
    """A fresh SQLite vault with an admin (ada), a helpdesk operator (hugo), an auditor."""
    template = web_vault_template.location
    assert template.sqlite_path is not None
    path = tmp_path / "vault.sqlite3"
    for suffix in ("", "-wal"):
        source = Path(f"{template.sqlite_path}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{path}{suffix}")
    os.chmod(path, 0o600)
    shutil.copyfile(template.key_file, tmp_path / "vault.key")
    os.chmod(tmp_path / "vault.key", 0o600)
    fresh = [
        dataclasses.replace(operator, last_step=0)
        for operator in (
            web_vault_template.admin,
            web_vault_template.helpdesk,
            web_vault_template.auditor,
        )
    ]
    return WebVault(
        VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path),
        web_vault_template.master_key,
        *fresh,
    )


@pytest.fixture
def web_config(web_vault: WebVault) -> WebConfig:
    return web_vault.config()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **uvicorn_options())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(web_config: WebConfig) -> Iterator[str]:
    with serve_app(create_app(web_config)) as base_url:
        yield base_url


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[StandInIdP]:
    """A running stand-in Microsoft identity provider (HTTPS, its own throwaway CA)."""
    with running(tmp_path / "idp-tls") as standin:
        yield standin


@pytest.fixture
def empty_vault_location(tmp_path: Path) -> VaultLocation:
    """Where a vault without any operator is (see ``empty_web_vault``)."""
    path = tmp_path / "vault.sqlite3"
    return VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)


@pytest.fixture
def empty_web_config(empty_vault_location: VaultLocation) -> WebConfig:
    """A new vault with no operator at all, as on a team's first day."""
    key = MasterKey.generate()
    write_key_file(empty_vault_location.key_file, key)
    Vault.create(empty_vault_location, key, LOCAL_ADMIN).close()
    return WebConfig(empty_vault_location, key)


def qr_text(html: str) -> str:
    """Decode the (first) QR code image embedded in a page, as a phone would."""
    import base64
    import io

    import zxingcpp
    from PIL import Image

    found = QR_IMAGE.search(html)
    assert found, "no QR code image on the page"
    image = Image.open(io.BytesIO(base64.b64decode(found.group(1))))
    results = zxingcpp.read_barcodes(image)
    assert results, "the QR code image does not decode"
    text: str = results[0].text
    return text


def operator_from_qr(html: str, name: str, role: str, password: str) -> Operator:
    return Operator(name, role, password, parse_seed(qr_text(html)).secret)


# -- clients ---------------------------------------------------------------------------------


def csrf_token(client: httpx.Client, page: str = "/") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    response = client.get(page)
    found = CSRF_FIELD.search(response.text)
    assert found, f"no CSRF token on {page} ({response.status_code})"
    return found.group(1)


def post_form(
    client: httpx.Client, path: str, data: dict[str, str], *, from_page: str = "/"
) -> httpx.Response:
    """POST a form the way the browser would: with the CSRF token of ``from_page``'s form."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, from_page)})


def new_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)


def sign_in(base_url: str, operator: Operator) -> httpx.Client:
    client = new_client(base_url)
    response = post_form(
        client,
        "/signin",
        {"name": operator.name, "password": operator.password, "code": operator.next_code()},
        from_page="/signin",
    )
    assert response.status_code == 303, response.text
    return client


@contextlib.contextmanager
def signed_in(base_url: str, operator: Operator) -> Iterator[httpx.Client]:
    client = sign_in(base_url, operator)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def admin_client(live_server: str, web_vault: WebVault) -> Iterator[httpx.Client]:
    client = sign_in(live_server, web_vault.admin)
    yield client
    client.close()


@pytest.fixture
def helpdesk_client(live_server: str, web_vault: WebVault) -> Iterator[httpx.Client]:
    client = sign_in(live_server, web_vault.helpdesk)
    yield client
    client.close()


@pytest.fixture
def auditor_client(live_server: str, web_vault: WebVault) -> Iterator[httpx.Client]:
    client = sign_in(live_server, web_vault.auditor)
    yield client
    client.close()
