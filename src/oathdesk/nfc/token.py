"""Talking to a Token2 programmable token over any ``Link``: identify, authenticate, write.

Every status word other than 9000 becomes a one-line ``NfcError`` naming the step; a card that
does not answer the read-info command is probed for the FIDO and YubiKey OATH applets, so that
the operator hears "this is a security key" rather than "unknown instruction".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from oathdesk.nfc import apdu
from oathdesk.nfc.errors import NotProgrammable, TokenLocked, TokenRefused, WrongDevice
from oathdesk.nfc.models import TokenModel, model_for_serial

OK = 0x9000
LOCKED = 0x6983
WRONG_DEVICE_HINT = "put a Token2 programmable TOTP token (OTPC-P, miniOTP-i, C301-i, C302-i) on it"


class Link(Protocol):
    """What the protocol needs from a transport (``oathdesk.nfc.transport.CardLink``): send a
    command APDU, get back (data, status word) with any T=0 chaining already undone."""

    def transmit(self, command: bytes) -> tuple[bytes, int]: ...


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    clock: int  # the token's clock, UTC seconds
    model: TokenModel


def _check(status: int, step: str) -> None:
    if status == OK:
        return
    if status == LOCKED:
        raise TokenLocked(
            f"the token refused authentication at the {step} (6983: locked); it cannot be "
            "programmed any more: set it aside and use another token"
        )
    if status == 0x6700:
        raise TokenRefused(
            f"the token answered 6700 (wrong length) to the {step}; its firmware may not support "
            "this command: check the model is programmable and report it"
        )
    if status >> 8 in (0x61, 0x6C):
        raise TokenRefused(
            f"the token kept answering {status:04X} to the {step} (T=0 chaining did not end); "
            "try another reader"
        )
    raise TokenRefused(
        f"the token answered {apdu.describe_status(status)} to the {step}; nothing was recorded: "
        "present it again, and if this repeats set it aside"
    )


class TokenSession:
    """One connected token. Call ``identify`` first; writes need ``authenticate``."""

    def __init__(self, link: Link) -> None:
        self.link = link

    def read_info(self) -> tuple[str, int] | None:
        """(serial, clock), or None when the card does not answer like a Token2 token."""
        data, status = self.link.transmit(apdu.READ_INFO)
        if status != OK:
            return None
        try:
            info = apdu.parse_info(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not info.serial.isdigit():
            return None
        return info.serial, info.clock

    def identify(self) -> DeviceInfo:
        """Serial, clock and model; refuses other devices and non-programmable tokens."""
        found = self.read_info()
        if found is None:
            raise self._wrong_device()
        serial, clock = found
        model = model_for_serial(serial)
        if model is None:
            raise NotProgrammable(
                f"token {serial} is not a programmable model (a classic token such as the C202 "
                "has a factory seed); import its seed from the vendor's file instead of burning"
            )
        return DeviceInfo(serial, clock, model)

    def _wrong_device(self) -> WrongDevice:
        # YubiKeys carry a FIDO applet too: ask for their OATH applet first to name them right.
        if self._selects(apdu.YKOATH_AID):
            return WrongDevice(
                f"this is a YubiKey (its OATH applet answered), not a Token2 TOTP token; "
                f"{WRONG_DEVICE_HINT}"
            )
        if self._selects(apdu.FIDO_AID):
            return WrongDevice(
                f"this is a FIDO security key (passkey), not a TOTP token; {WRONG_DEVICE_HINT}"
            )
        return WrongDevice(
            f"the card on the reader does not answer like a Token2 programmable token; "
            f"{WRONG_DEVICE_HINT}"
        )

    def _selects(self, aid: bytes) -> bool:
        _, status = self.link.transmit(apdu.select_aid(aid))
        return status == OK

    def clock(self) -> int:
        found = self.read_info()
        if found is None:
            raise TokenRefused("the token did not answer the clock read; present it again")
        return found[1]

    def authenticate(self) -> None:
        challenge, status = self.link.transmit(apdu.GET_CHALLENGE)
        _check(status, "challenge request")
        if len(challenge) != 8:
            raise TokenRefused(
                f"the token's challenge was {len(challenge)} bytes, not 8; present it again"
            )
        _, status = self.link.transmit(apdu.authenticate(challenge))
        _check(status, "authentication")

    def write_config(self, utc_seconds: int, *, hash_name: str, period: int) -> None:
        command = apdu.write_config(utc_seconds, hash_name=hash_name, period=period)
        _, status = self.link.transmit(command)
        _check(status, "configuration write")

    def write_seed(self, seed: bytes) -> None:
        _, status = self.link.transmit(apdu.write_seed(seed))
        _check(status, "seed write")
