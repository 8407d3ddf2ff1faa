"""PC/SC transport on pyscard: find the reader, wait for a token, exchange APDUs, see it leave.

Works with any PC/SC reader: pcscd on Linux and macOS, the Smart Card service on Windows. T=0
readers answer ``61xx`` ("xx more bytes: send GET RESPONSE") and ``6Cxx`` ("send it again with
Le = xx"); ``CardLink.transmit`` hides both, so the protocol code above only sees whole answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from oathdesk.nfc.apdu import get_response, split_status, with_le
from oathdesk.nfc.errors import NfcError, NfcNotInstalled, NoReader, NoToken, TokenRemoved

# pyscard is the optional extra "nfc": a console-only server installs without it (it has no
# Linux wheel and builds against the PC/SC headers). Only this module imports it, and only the
# commands that talk to a reader import this module.
try:
    from smartcard import scard
except ImportError:
    raise NfcNotInstalled(
        "NFC support is not installed; run `pip install 'oathdesk[nfc]'` (on Linux it builds "
        "against PC/SC first: `apt-get install gcc swig python3-dev libpcsclite-dev pcscd`)"
    ) from None

# The card left, was reset or went silent during an exchange.
_CARD_GONE = frozenset(
    (
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_W_RESET_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_W_UNRESPONSIVE_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_E_NOT_TRANSACTED,
        scard.SCARD_E_COMM_DATA_LOST,
        scard.SCARD_E_PROTO_MISMATCH,
    )
)
_NO_SERVICE = frozenset((scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED))
# How long one SCardGetStatusChange call blocks; short, so that Ctrl-C is honoured quickly.
_POLL_MS = 250
# A T=0 card may split a long answer into several 61xx chunks; no real answer needs more.
_MAX_CHUNKS = 16

START_PCSC = (
    "start the PC/SC service (Linux: `systemctl start pcscd`; Windows: the 'Smart Card' service)"
)


def _check(result: int, what: str) -> None:
    if result == scard.SCARD_S_SUCCESS:
        return
    if result in _NO_SERVICE:
        raise NoReader(f"the PC/SC service is not running; {START_PCSC}")
    if result in (scard.SCARD_E_NO_READERS_AVAILABLE, scard.SCARD_E_READER_UNAVAILABLE):
        raise NoReader("no NFC reader is connected; plug one in and try again")
    if result in _CARD_GONE:
        raise TokenRemoved(
            "the token left the reader during the exchange; nothing was recorded: "
            "hold it on the reader and start again"
        )
    if result == scard.SCARD_E_SHARING_VIOLATION:
        raise NfcError("another program is using the reader; close it and try again")
    raise NfcError(f"the PC/SC service failed to {what} ({_hex(result)}); try again")


def _hex(result: int) -> str:
    return f"0x{result & 0xFFFFFFFF:08X}"


class CardLink:
    """A connected card; ``transmit`` answers whole responses, T=0 chunking undone."""

    def __init__(self, handle: Any, protocol: int) -> None:
        self._handle = handle
        self._protocol = protocol

    def _raw(self, command: bytes) -> tuple[bytes, int]:
        result, response = scard.SCardTransmit(self._handle, self._protocol, list(command))
        _check(result, "exchange data with the token")
        try:
            data, status = split_status(bytes(response))
        except ValueError:
            raise TokenRemoved(
                "the token's answer was cut short (it left the reader?); nothing was recorded: "
                "hold it on the reader and start again"
            ) from None
        return data, status

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        return exchange(self._raw, command)


def exchange(raw: Callable[[bytes], tuple[bytes, int]], command: bytes) -> tuple[bytes, int]:
    """Send ``command`` with ``raw``, undoing T=0's 6Cxx (resend with Le) and 61xx (GET
    RESPONSE, repeated while the card has more)."""
    data, status = raw(command)
    if status >> 8 == 0x6C:
        data, status = raw(with_le(command, status & 0xFF))
    chunks = 0
    while status >> 8 == 0x61 and chunks < _MAX_CHUNKS:
        more, status = raw(get_response(status & 0xFF))
        data += more
        chunks += 1
    return data, status


class PcscReader:
    """One PC/SC reader, chosen by (part of) its name, or the only/first one present."""

    def __init__(self, name_hint: str | None = None) -> None:
        self.name_hint = (name_hint or "").strip()
        result, self._context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        _check(result, "open a context")
        self.name = self._choose()

    def close(self) -> None:
        scard.SCardReleaseContext(self._context)

    def __enter__(self) -> PcscReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _choose(self) -> str:
        result, names = scard.SCardListReaders(self._context, [])
        if result == scard.SCARD_E_NO_READERS_AVAILABLE or (result == 0 and not names):
            raise NoReader("no NFC reader is connected; plug one in and try again")
        _check(result, "list the readers")
        if not self.name_hint:
            return str(names[0])
        matching = [str(n) for n in names if self.name_hint.lower() in str(n).lower()]
        if not matching:
            raise NoReader(
                f"no reader named like {self.name_hint!r}; connected: {', '.join(names)}"
            )
        return matching[0]

    def _state(self, current: int, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the reader's state to differ from ``current``."""
        states = [(self.name, current)]
        result, found = scard.SCardGetStatusChange(self._context, int(timeout * 1000), states)
        result = int(result)
        if result == scard.SCARD_E_TIMEOUT:
            return current
        _check(result, "watch the reader")
        event_state: int = int(found[0][1])
        return event_state & ~int(scard.SCARD_STATE_CHANGED)

    def present(self) -> bool:
        return bool(self._state(scard.SCARD_STATE_UNAWARE, 0) & scard.SCARD_STATE_PRESENT)

    def wait_for_token(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = self._state(scard.SCARD_STATE_UNAWARE, 0)
        while not state & scard.SCARD_STATE_PRESENT:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoToken(
                    f"no token on the reader {self.name!r} after {timeout:.0f} s; hold the token "
                    "flat on the reader (display up) and run the command again"
                )
            state = self._state(state, min(left, _POLL_MS / 1000))

    def wait_for_removal(self, timeout: float) -> bool:
        """True once the reader is empty; False if the token is still there after ``timeout``."""
        deadline = time.monotonic() + timeout
        state = self._state(scard.SCARD_STATE_UNAWARE, 0)
        while state & scard.SCARD_STATE_PRESENT:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            state = self._state(state, min(left, _POLL_MS / 1000))
        return True

    @contextmanager
    def token(self, timeout: float) -> Iterator[CardLink]:
        """Wait for a token, connect exclusively (nobody else writes meanwhile), disconnect."""
        self.wait_for_token(timeout)
        result, handle, protocol = scard.SCardConnect(
            self._context,
            self.name,
            scard.SCARD_SHARE_EXCLUSIVE,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        _check(result, "connect to the token")
        try:
            yield CardLink(handle, protocol)
        finally:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
