"""Fixtures for the NFC tests: the real pcscd with the virtual reader, and simulated tokens."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oathdesk.cli.main import run
from oathdesk.nfc.transport import PcscReader
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.vault import Actor, Vault
from tests.nfc import pcsc_server
from tests.nfc.simulated_token import SimulatedToken, VirtualCard

PutOnReader = Callable[..., SimulatedToken]
ADMIN = Actor("local:test", "admin")
UPN = "helga@contoso.com"


@pytest.fixture(scope="session")
def pcsc_reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of the virtual reader served by a pcscd this session started (and stops)."""
    reason = pcsc_server.missing()
    if reason:
        pytest.skip(reason)
    with (
        pcsc_server.exclusive(),
        pcsc_server.running_pcscd(tmp_path_factory.mktemp("pcscd")) as name,
    ):
        yield name


def wait_until_empty(reader_name: str) -> None:
    """pcscd polls vpcd every 400 ms: let it see the last card go before the next one comes
    (a person takes longer than that to swap tokens)."""
    with PcscReader(reader_name) as reader:
        assert reader.wait_for_removal(5), "the virtual reader still holds a card"


@pytest.fixture
def cards(pcsc_reader: str) -> Iterator[list[VirtualCard]]:
    """Cards put on the reader during a test; all taken off (and checked) at its end."""
    wait_until_empty(pcsc_reader)
    placed: list[VirtualCard] = []
    yield placed
    for card in placed:
        card.remove()
    wait_until_empty(pcsc_reader)
    for card in placed:
        assert card.error is None, card.error


@pytest.fixture
def put_on_reader(cards: list[VirtualCard]) -> PutOnReader:
    """Put a simulated token (``SimulatedToken`` fields as keywords) on the virtual reader."""

    def put(token: SimulatedToken | None = None, **fields: object) -> SimulatedToken:
        token = token or SimulatedToken(**fields)  # type: ignore[arg-type]
        cards.append(VirtualCard(token).insert())
        return token

    return put


@pytest.fixture
def take_off_reader(cards: list[VirtualCard]) -> Callable[[], None]:
    def take_off() -> None:
        for card in cards:
            card.remove()

    return take_off


# -- the CLI as an operator types it (test_burn_cli.py, test_burn_batch.py) -----------------

Line = str | Callable[[], str]


class TypedLines(io.RawIOBase):
    """Standard input that produces each line when it is read (the operator's typing)."""

    def __init__(self, lines: list[Line]) -> None:
        self._lines = list(lines)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._lines:
            return 0
        item = self._lines.pop(0)
        data = ((item() if callable(item) else item) + "\n").encode()
        buffer[: len(data)] = data
        return len(data)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


Oathdesk = Callable[..., Result]


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vault]:
    path = tmp_path / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    monkeypatch.setenv("OATHDESK_VAULT", str(path))
    monkeypatch.setenv("OATHDESK_KEY_FILE", str(location.key_file))
    opened = Vault.create(location, key, ADMIN)
    opened.add_user(ADMIN, UPN)
    yield opened
    opened.close()


@pytest.fixture
def oathdesk(
    pcsc_reader: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Oathdesk:
    monkeypatch.setattr("oathdesk.nfc.hostclock.ntp_synchronised", lambda: True)

    def invoke(*args: str, typed: list[Line] | None = None) -> Result:
        capsys.readouterr()
        stdin = io.TextIOWrapper(io.BufferedReader(TypedLines(typed or [])), encoding="utf-8")
        monkeypatch.setattr(sys, "stdin", stdin)
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
