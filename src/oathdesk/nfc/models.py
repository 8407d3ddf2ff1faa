"""Which Token2 tokens are programmable, by serial-number prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenModel:
    prefix: str
    name: str
    # On "restricted sync" models any config write (the only way to set the clock) erases the seed.
    seed_survives_clock_sync: bool


PROGRAMMABLE = {
    model.prefix: model
    for model in (
        TokenModel("8659612", "OTPC-P1-i", True),
        TokenModel("8659622", "OTPC-P2-i", False),
        TokenModel("8659621", "OTPC-P2-i-NB", False),
        TokenModel("8659600", "miniOTP-2-i", True),
        TokenModel("8659601", "miniOTP-3-i", False),
        TokenModel("8659609", "miniOTP-3-i-NB", False),
        TokenModel("8659610", "C301-i", False),
        TokenModel("8659632", "C302-i", True),
    )
}


def model_for_serial(serial: str) -> TokenModel | None:
    """The programmable model a serial belongs to, or None (classic or unknown: do not write)."""
    return PROGRAMMABLE.get(serial.strip()[:7])
