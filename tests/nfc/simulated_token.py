"""A simulated Token2 programmable token, written from the protocol facts, for vsmartcard's vpcd.

vpcd (the "Virtual PCD" reader of pcscd) listens on 127.0.0.1:35963; a card is a program that
connects there. Every message is a 2-byte big-endian length and a payload: one byte is a control
code (0 power off, 1 power on, 2 reset, 4 get ATR: answer the ATR), anything longer is a command
APDU, answered with the response APDU. A card is "on the reader" while it is connected.

``SimulatedToken`` answers like a real token (read info, challenge, SM4 authentication, config
write with MAC check, seed write with MAC check, decryption and unpadding; restricted-sync models
lose their seed on a config write) and can misbehave on purpose: a FIDO key or a YubiKey, a
locked token, a token pulled off the reader during the seed write, a T=0 card.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from oathdesk.nfc import apdu
from oathdesk.nfc.models import model_for_serial
from oathdesk.nfc.sm4 import cbc_mac, ecb_decrypt, unpad
from oathdesk.otp import Algorithm, totp
from tests.sockets import receive_exactly

VPCD_PORT = 35963
OK = b"\x90\x00"
ATR_T1 = bytes.fromhex("3B800181")  # T=1 only (TCK 81)
ATR_T0 = bytes.fromhex("3B021450")  # no TD1: T=0 only
HASH_BY_CODE = {1: "sha1", 2: "sha256"}
STEP_BY_CODE = {0x1E: 30, 0x3C: 60}


def mid_step(period: int = 30, at: float | None = None) -> float:
    """The middle of the time step at ``at`` (now by default): the moment to compare a token's
    code with the vault's. A token's clock is set in whole seconds, so it may run up to a second
    apart from this computer's; near a step's edge the two would show neighbouring codes."""
    now = time.time() if at is None else at
    return (now // period) * period + period / 2


def _sw(status: int) -> bytes:
    return status.to_bytes(2, "big")


@dataclass
class SimulatedToken:
    """The token's state and its answers. ``device``: token | fido | yubikey | other."""

    serial: str = "8659600000001"
    clock_offset: int = 0  # token clock minus the host clock, before any config write
    device: str = "token"
    locked: bool = False
    remove_during_seed_write: bool = False
    t0: bool = False
    config_answer: int | None = None  # answer the config write with this status word instead
    seed: bytes | None = field(default=None, repr=False)
    hash_name: str = "sha1"
    period: int = 30
    commands: list[bytes] = field(default_factory=list, repr=False)
    config_writes: int = 0
    seed_writes: int = 0
    _authenticated: bool = False
    _challenge: bytes | None = None
    _pending: bytes = b""  # T=0: answer data waiting for GET RESPONSE

    # -- what the token shows -------------------------------------------------------------

    def clock(self, at: float | None = None) -> int:
        return int((time.time() if at is None else at) + self.clock_offset)

    def code(self, at: float | None = None) -> str:
        """The code on the display when the button is pressed (6 digits, like the real one)."""
        if self.seed is None:
            raise AssertionError("the simulated token has no seed: it shows no code")
        return totp(
            self.seed, self.clock(at), algorithm=Algorithm(self.hash_name), period=self.period
        )

    @property
    def atr(self) -> bytes:
        return ATR_T0 if self.t0 else ATR_T1

    def power_cycle(self) -> None:
        self._authenticated = False
        self._challenge = None
        self._pending = b""

    # -- answering APDUs ------------------------------------------------------------------

    def answer(self, command: bytes) -> bytes | None:
        """The response APDU, or None: the token left the field (the connection drops)."""
        self.commands.append(command)
        if self.t0 and command[:2] == b"\x00\xc0":
            return self._get_response(command)
        if self.device != "token":
            return self._other_device(command)
        if self.t0 and command[:2] == b"\x80\x4b" and len(command) == 6:
            return _sw(0x6C08)  # "send it again with Le = 8"
        response = self._token(command)
        if response is None or not self.t0 or len(response) == 2:
            return response
        self._pending = response[:-2]
        return bytes([0x61, len(self._pending) & 0xFF])

    def _get_response(self, command: bytes) -> bytes:
        wanted = command[4] or 256
        chunk, self._pending = self._pending[:wanted], self._pending[wanted:]
        if self._pending:
            return chunk + bytes([0x61, len(self._pending) & 0xFF])
        return chunk + OK

    def _other_device(self, command: bytes) -> bytes:
        if command[:4] == b"\x00\xa4\x04\x00":
            aid = command[5 : 5 + command[4]]
            if self.device == "fido" and aid == apdu.FIDO_AID:
                return b"U2F_V2" + OK
            if self.device == "yubikey" and aid in (apdu.FIDO_AID, apdu.YKOATH_AID):
                return b"\x79\x03\x05\x04\x03" + OK
            return _sw(0x6A82)
        return _sw(0x6E00 if command[0] == 0x80 else 0x6D00)

    def _token(self, command: bytes) -> bytes | None:
        cla, ins = command[0], command[1]
        if cla not in (0x80, 0x84):
            return _sw(0x6E00)
        if ins == 0x41:
            return self._read_info(command)
        if ins == 0x4B:
            self._challenge = secrets.token_bytes(8)
            return self._challenge + OK
        if ins == 0xCE:
            return self._authenticate(command)
        if ins == 0xD4:
            return self._write_config(command)
        if ins == 0xC5:
            return self._write_seed(command)
        return _sw(0x6D00)

    def _read_info(self, command: bytes) -> bytes:
        if command != apdu.READ_INFO:
            return _sw(0x6700)
        serial = self.serial.encode()
        body = b"\x01\x02\x03" + bytes([len(serial)]) + serial + b"\x00\x00"
        return body + struct.pack(">I", self.clock()) + OK

    def _authenticate(self, command: bytes) -> bytes:
        if self.locked:
            return _sw(0x6983)
        if len(command) != 21 or command[4] != 0x10:
            return _sw(0x6700)
        if self._challenge is None or ecb_decrypt(command[5:]) != self._challenge + bytes(8):
            return _sw(0x6982)
        self._authenticated = True
        return OK

    def _macced_body(self, command: bytes) -> bytes | None:
        """The body of a MACed command, or None if the length or the MAC is wrong."""
        if len(command) < 9 or command[4] != len(command) - 5:
            return None
        body, mac = command[5:-4], command[-4:]
        expected = cbc_mac(bytes([0x80, *command[1:4], len(body)]) + body)
        return body if mac == expected else None

    def _write_config(self, command: bytes) -> bytes:
        if not self._authenticated:
            return _sw(0x6982)
        if self.config_answer is not None:
            return _sw(self.config_answer)
        if len(command) != 5 + 23:
            return _sw(0x6700)
        body = self._macced_body(command)
        if body is None or body[:3] != b"\x81\x11\x1f" or body[5:7] != b"\x0f\x04":
            return _sw(0x6A80)
        (clock,) = struct.unpack(">I", body[7:11])
        hash_code, step_code = body[15], body[18]
        if hash_code not in HASH_BY_CODE or step_code not in STEP_BY_CODE:
            return _sw(0x6A80)
        self.clock_offset = clock - int(time.time())
        self.hash_name, self.period = HASH_BY_CODE[hash_code], STEP_BY_CODE[step_code]
        model = model_for_serial(self.serial)
        if model is not None and not model.seed_survives_clock_sync:
            self.seed = None  # restricted sync: a config write erases the seed
        self.config_writes += 1
        return OK

    def _write_seed(self, command: bytes) -> bytes | None:
        if not self._authenticated:
            return _sw(0x6982)
        if self.remove_during_seed_write:
            return None
        body = self._macced_body(command)
        if body is None or len(body) % 16:
            return _sw(0x6A80)
        try:
            seed = unpad(ecb_decrypt(body))
        except ValueError:
            return _sw(0x6A80)
        if not 1 <= len(seed) <= apdu.MAX_SEED_BYTES:
            return _sw(0x6700)
        self.seed = seed
        self.seed_writes += 1
        return OK


class VirtualCard:
    """Puts a ``SimulatedToken`` on vpcd's reader (connects) and takes it off (disconnects)."""

    def __init__(self, token: SimulatedToken, port: int = VPCD_PORT) -> None:
        self.token = token
        self._port = port
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def insert(self, timeout: float = 5.0) -> VirtualCard:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._socket = socket.create_connection(("127.0.0.1", self._port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._socket.settimeout(None)
        self._thread = threading.Thread(target=self._serve, args=(self._socket,), daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def inserted(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = receive_exactly(sock, 2)
                if len(header) < 2:
                    return
                size = int.from_bytes(header, "big")
                payload = receive_exactly(sock, size)
                if len(payload) < size:
                    return
                if len(payload) == 1:
                    reply = self._control(payload[0])
                else:
                    reply = self.token.answer(payload)
                    if reply is None:  # pulled off the reader mid-command
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                if reply is not None:
                    sock.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return
        except BaseException as exc:
            self.error = exc

    def _control(self, code: int) -> bytes | None:
        if code == 4:
            return self.token.atr
        if code in (0, 1, 2):
            self.token.power_cycle()
        return None
