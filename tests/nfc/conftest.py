"""Fixtures for the NFC tests: the real pcscd with the virtual reader, and simulated tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from oathdesk.nfc.transport import PcscReader
from tests.nfc import pcsc_server
from tests.nfc.simulated_token import SimulatedToken, VirtualCard

PutOnReader = Callable[..., SimulatedToken]


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
