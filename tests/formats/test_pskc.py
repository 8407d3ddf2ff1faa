"""Vendor PSKC files of each protection kind, made with python-pskc, and hostile XML refused."""

from __future__ import annotations

import io
from pathlib import Path

import pskc
import pytest

from oathdesk.formats.pskc import TOTP_URN, parse_pskc
from tests.conftest import RunCli

SEEDS = {"60234567": bytes(range(20)), "60234568": bytes(range(20, 40))}
PSK = bytes(range(16))


def make_pskc(protection: str, *, algorithm: str = TOTP_URN) -> bytes:
    container = pskc.PSKC()
    for serial, secret in SEEDS.items():
        key = container.add_key(
            id=serial,
            serial=serial,
            secret=secret,
            algorithm=algorithm,
            manufacturer="Token2",
            model="C202",
        )
        key.time_interval = 30
        key.response_length = 6
        key.key_userid = f"user{serial[-1]}@contoso.com"
    if protection == "pbkdf2":
        container.encryption.setup_pbkdf2("vendor passphrase", iterations=1000)
    elif protection == "psk":
        container.encryption.setup_preshared_key(key=PSK)
    buffer = io.BytesIO()
    container.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("protection", "kwargs"),
    [("plain", {}), ("pbkdf2", {"password": "vendor passphrase"}), ("psk", {"psk": PSK})],
)
def test_each_protection(protection: str, kwargs: dict[str, object]) -> None:
    data = make_pskc(protection)
    if protection != "plain":
        for seed in SEEDS.values():
            assert seed not in data
    result = parse_pskc(data, **kwargs)  # type: ignore[arg-type]
    assert result.problems == []
    assert {r.serial: r.secret for r in result.records} == SEEDS
    assert [r.upn for r in result.records] == ["user7@contoso.com", "user8@contoso.com"]
    assert all(r.period == 30 and r.digits == 6 for r in result.records)


def test_wrong_or_missing_password() -> None:
    data = make_pskc("pbkdf2")
    missing = parse_pskc(data)
    assert "the file is encrypted" in missing.problems[0].message
    wrong = parse_pskc(data, password="not it")
    assert wrong.records == []
    assert "does not" in wrong.problems[0].message


def test_hotp_refused() -> None:
    result = parse_pskc(make_pskc("plain", algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"))
    assert result.records == []
    assert all("HOTP" in p.message for p in result.problems)


CONTAINER = b'<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">'
BOMB = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
XXE = b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize(
    "payload",
    [BOMB + CONTAINER + b"&lol2;</KeyContainer>", XXE + CONTAINER + b"&xxe;</KeyContainer>"],
)
def test_xml_bombs_and_external_entities_refused(payload: bytes) -> None:
    result = parse_pskc(payload)
    assert result.records == []
    assert "DTD or entities" in result.problems[0].message


def test_import_pskc_through_the_cli(
    env_vault: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    source = tmp_path / "order-4711.pskcxml"
    source.write_bytes(make_pskc("pbkdf2"))
    done = cli(
        "import", str(source), "--password-stdin", input="vendor passphrase\n", env=env_vault
    )
    assert done.returncode == 0, done.stderr
    assert "imported 2 token(s)" in done.stdout
    listing = cli("token", "list", "--json", env=env_vault).stdout
    assert '"kind": "classic"' in listing
    assert "60234567" in listing


@pytest.fixture
def env_vault(tmp_path: Path, cli: RunCli) -> dict[str, str]:
    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    return env
