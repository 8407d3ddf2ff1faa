"""What the operator reads when PC/SC or the host clock is in a bad way (no reader needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from smartcard import scard

from oathdesk.nfc import hostclock, transport
from oathdesk.nfc.errors import NfcError, NoReader, TokenRemoved


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        (scard.SCARD_E_NO_SERVICE, NoReader, "the PC/SC service is not running"),
        (scard.SCARD_E_NO_READERS_AVAILABLE, NoReader, "no NFC reader is connected"),
        (scard.SCARD_W_REMOVED_CARD, TokenRemoved, "the token left the reader"),
        (scard.SCARD_E_NOT_TRANSACTED, TokenRemoved, "nothing was recorded"),
        (scard.SCARD_E_SHARING_VIOLATION, NfcError, "another program is using the reader"),
        (0x80100099, NfcError, r"failed to connect \(0x80100099\)"),
    ],
)
def test_pcsc_results_become_one_line_errors(result: int, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        transport._check(result, "connect")
    assert "\n" not in str(caught.value)
    transport._check(scard.SCARD_S_SUCCESS, "connect")  # success says nothing


def _fake_timedatectl(directory: Path, script: str) -> None:
    tool = directory / "timedatectl"
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)


@pytest.mark.parametrize(("answer", "synchronised"), [("yes", True), ("no", False)])
def test_timedatectl_decides_when_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, synchronised: bool
) -> None:
    _fake_timedatectl(tmp_path, f"echo {answer}")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert hostclock.ntp_synchronised() is synchronised


def test_without_timedatectl_the_kernel_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_timedatectl(tmp_path, "echo 'System has not been booted with systemd' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert hostclock._timedatectl() is None
    assert hostclock.ntp_synchronised() in (True, False)  # Linux: adjtimex always answers
    monkeypatch.setattr("sys.platform", "win32")
    assert hostclock.ntp_synchronised() is None  # cannot be told: no warning
