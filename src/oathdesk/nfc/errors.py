"""What can go wrong at the reader, each as one line that says what to do.

The CLI prints these as ``error: ...``; the REST API reports ``code``.
"""

from __future__ import annotations

from oathdesk.errors import OathdeskError


class NfcError(OathdeskError):
    exit_code = 5
    code = "nfc_error"


class NoReader(NfcError):
    code = "no_reader"


class NfcNotInstalled(NfcError):
    """pyscard, the extra ``oathdesk[nfc]``, is not installed."""

    code = "nfc_not_installed"


class NoToken(NfcError):
    code = "no_token"


class TokenRemoved(NfcError):
    code = "token_removed"


class TokenLocked(NfcError):
    code = "token_locked"


class WrongDevice(NfcError):
    """A FIDO security key, a YubiKey, or a card that is no Token2 programmable token."""

    code = "wrong_device"


class NotProgrammable(NfcError):
    code = "not_programmable"


class TokenRefused(NfcError):
    """The token answered a status word other than 9000."""

    code = "token_status"
