"""`oathdesk burn`, `token info` and `token resync` as an operator types them, through pcscd.

The commands run in this process (``oathdesk.cli.main.run``), so that "the operator" can read
the simulated token's display at the moment the prompt asks for it: standard input is a stream
whose next line is produced only when the command reads it.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import segno

from oathdesk.otp import totp
from oathdesk.seed import build_otpauth_uri
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.vault import NewToken, Vault
from tests.conftest import assert_one_line_error, run_cli
from tests.nfc.conftest import ADMIN, UPN, Line, Oathdesk, PutOnReader, Result
from tests.nfc.simulated_token import SimulatedToken, mid_step

pytestmark = [pytest.mark.pcsc, pytest.mark.xdist_group("pcsc")]

SEED = bytes(range(101, 121))
MINI = "8659600000501"
C302 = "8659632000502"


def _add(vault: Vault, serial: str) -> None:
    vault.add_token(
        ADMIN, NewToken(serial, "Token2", "programmable", TokenKind.PROGRAMMABLE, SEED, upn=UPN)
    )


def _codes_agree(token: SimulatedToken, vault: Vault, serial: str) -> bool:
    """The token's display and the vault's code, compared mid-step (see ``mid_step``)."""
    stored = vault.get_token(serial)
    with vault.transaction() as conn:
        secret = vault.read_secret(conn, ADMIN, stored, purpose="test", audit=False)
    at = mid_step(stored.period)
    return token.code(at) == totp(secret, at, algorithm=stored.algorithm, period=stored.period)


PROGRESS = ("hold the token on the reader", "Press the button of token", "warning: ")


def _one_line_error(result: Result, text: str) -> None:
    """Besides the progress lines an operator sees, exactly one line: the error, last."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: "), result.stderr
    assert text in lines[-1], result.stderr
    assert all(line.startswith(PROGRESS) for line in lines[:-1]), result.stderr
    assert "Traceback" not in result.stderr


def test_burn_a_users_token(vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader) -> None:
    _add(vault, MINI)
    token = put_on_reader(serial=MINI, clock_offset=400)
    result = oathdesk("burn", UPN, typed=[token.code])
    assert result.returncode == 0, result.stderr
    # The clock is set in whole seconds: the read-back may land in the next one.
    assert re.fullmatch(
        f"burned token {MINI} \\(miniOTP-2-i\\) for {re.escape(UPN)}: sha1, 30 s, "
        "clock [+-][01] s; recorded in the vault\n",
        result.stdout,
    ), result.stdout
    assert f"Press the button of token {MINI} (miniOTP-2-i)" in result.stderr
    assert _codes_agree(token, vault, MINI)
    assert vault.get_token(MINI).state is TokenState.BURNED


def test_burn_with_the_entra_qr_code(
    vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader, tmp_path: Path
) -> None:
    uri = build_otpauth_uri(SEED, account=UPN, issuer="Microsoft")
    segno.make(uri, error="m").save(str(tmp_path / "mfasetup.png"), scale=6)
    token = put_on_reader(serial=C302, t0=True)
    result = oathdesk("burn", UPN, "--qr-image", str(tmp_path / "mfasetup.png"), typed=[token.code])
    assert result.returncode == 0, result.stderr
    assert f"burned token {C302} (C302-i) for {UPN}" in result.stdout
    assert token.seed == SEED
    assert vault.get_token(C302).model == "C302-i"


def test_burn_with_a_pasted_secret_and_a_typo(
    vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader
) -> None:
    token = put_on_reader(serial=MINI)
    typed: list[Line] = [base64.b32encode(SEED).decode().lower(), "12 345", token.code]
    result = oathdesk("burn", UPN, "--secret", typed=typed)
    assert result.returncode == 0, result.stderr
    assert "type the code it shows again" in result.stderr
    assert _codes_agree(token, vault, MINI)
    assert SEED.hex() not in result.stdout + result.stderr
    assert base64.b32encode(SEED).decode() not in (result.stdout + result.stderr).upper()


def test_burn_errors_are_one_line(
    vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader
) -> None:
    _add(vault, MINI)
    _one_line_error(oathdesk("burn", UPN, "--timeout", "1"), "no token on the reader")
    _one_line_error(oathdesk("burn", UPN, "--reader", "ACR122"), "no reader named like 'ACR122'")
    _one_line_error(oathdesk("burn"), "name one of: a UPN, --serial SERIAL")
    secret = base64.b32encode(SEED).decode()
    result = oathdesk("burn", UPN, "--secret", secret)
    _one_line_error(result, "secrets are never read from the command line")
    assert secret not in result.stderr
    _one_line_error(oathdesk("burn", "--count", "1", "--generate"), "needs the UPN")
    put_on_reader(device="fido")
    result = oathdesk("burn", UPN)
    _one_line_error(result, "this is a FIDO security key (passkey), not a TOTP token")
    assert result.returncode == 5
    assert vault.get_token(MINI).state is TokenState.ASSIGNED


def test_no_code_typed(vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader) -> None:
    _add(vault, MINI)
    put_on_reader(serial=MINI)
    _one_line_error(oathdesk("burn", "--serial", MINI), "no code on standard input")
    assert vault.get_token(MINI).state is TokenState.ASSIGNED


def test_unsynchronised_host_clock_warns(
    vault: Vault, oathdesk: Oathdesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(vault, MINI)
    monkeypatch.setattr("oathdesk.nfc.hostclock.ntp_synchronised", lambda: False)
    result = oathdesk("burn", UPN, "--timeout", "1")
    assert result.stderr.startswith("warning: this computer's clock is not NTP-synchronised")
    assert "error: no token on the reader" in result.stderr


def test_count_burns_tokens_waiting_in_the_vault(
    vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader
) -> None:
    _add(vault, MINI)
    token = put_on_reader(serial=MINI)
    result = oathdesk("burn", "--count", "1", typed=[token.code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "burned 1 of 1 tokens",
        f"  burned   {MINI} (miniOTP-2-i) {UPN}",
    ]
    assert "[1/1] present the next token (any token awaiting its burn)" in result.stderr


def test_batch_reports_the_failed_ones(
    vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader, tmp_path: Path
) -> None:
    queue = tmp_path / "queue.txt"
    queue.write_text(f"# this morning's tokens\n{UPN}\n")
    put_on_reader(serial=MINI, locked=True)
    result = oathdesk("burn", "--batch", str(queue), "--generate")
    assert result.returncode != 0
    assert "burned 0 of 1 tokens" in result.stdout
    assert f"  failed   {UPN}: the token refused authentication" in result.stdout
    assert result.stderr.splitlines()[-1].startswith("error: 1 of 1 tokens are not burned")
    assert vault.list_tokens() == []


def test_token_info_and_resync(
    vault: Vault, oathdesk: Oathdesk, put_on_reader: PutOnReader
) -> None:
    _add(vault, MINI)
    token = put_on_reader(serial=MINI)
    assert oathdesk("burn", UPN, typed=[token.code]).returncode == 0
    token.clock_offset = -75
    info = oathdesk("token", "info")
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert lines[0] == f"serial        {MINI}"
    assert lines[1] == "model         miniOTP-2-i (programmable; the seed survives a clock resync)"
    assert lines[3] in {f"drift         {d:+d} s (token behind this computer)" for d in (-76, -75)}
    assert lines[4] == f"vault         {UPN}, burned"
    resynced = oathdesk("token", "resync", MINI, typed=[token.code])
    assert resynced.returncode == 0, resynced.stderr
    assert resynced.stdout.startswith(f"token {MINI} (miniOTP-2-i): clock was -7")
    assert re.search("off, now [+-][01] s\n$", resynced.stdout), resynced.stdout
    # The token keeps whole seconds: its offset from this computer, as the line above says.
    # (Comparing its floored clock with time.time() added up to a second more: a flaky 1.07.)
    assert abs(token.clock_offset) <= 1


def test_no_pcsc_service(tmp_path: Path) -> None:
    """A machine without pcscd (here: a client pointed at a socket nobody serves)."""
    result = run_cli(
        "token", "info", env={"PCSCLITE_CSOCK_NAME": str(tmp_path / "none.comm")}, timeout=30
    )
    assert_one_line_error(result)
    assert "the PC/SC service is not running; start the PC/SC service" in result.stderr
