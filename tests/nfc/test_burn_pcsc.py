"""Burning, reading and resyncing tokens end to end: the service, pyscard, the real pcscd, the
vpcd driver and a simulated token on TCP, exactly the path a real reader takes."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest

from oathdesk.errors import Conflict, NotFound, PolicyRefused
from oathdesk.nfc.errors import (
    NoReader,
    NoToken,
    NotProgrammable,
    TokenLocked,
    TokenRefused,
    TokenRemoved,
    WrongDevice,
)
from oathdesk.nfc.transport import PcscReader
from oathdesk.otp import Algorithm, totp
from oathdesk.services.burn import (
    BurnTarget,
    CodeRequest,
    SeedInput,
    burn,
    resync,
    token_info,
)
from oathdesk.services.burn_batch import burn_queue
from oathdesk.vault.config import VaultLocation
from oathdesk.vault.keys import MasterKey, write_key_file
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.vault import Actor, NewToken, Vault
from tests.nfc.conftest import PutOnReader, wait_until_empty
from tests.nfc.simulated_token import SimulatedToken, VirtualCard, mid_step

pytestmark = [pytest.mark.pcsc, pytest.mark.xdist_group("pcsc")]

ADMIN = Actor("local:test", "admin")
HELPDESK = Actor("ops:anna", "helpdesk")
UPN = "helga@contoso.com"
SEED = bytes.fromhex("3132333435363738393031323334353637383930")
MINI = "8659600000101"  # miniOTP-2-i: the seed survives a clock resync
C301 = "8659610000202"  # C301-i: restricted sync, a config write erases the seed


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    path = tmp_path / "vault.sqlite3"
    location = VaultLocation(f"sqlite:///{path}", tmp_path / "vault.key", path)
    key = MasterKey.generate()
    write_key_file(location.key_file, key)
    opened = Vault.create(location, key, ADMIN)
    opened.add_user(ADMIN, UPN)
    yield opened
    opened.close()


@pytest.fixture
def reader(pcsc_reader: str) -> Iterator[PcscReader]:
    with PcscReader(pcsc_reader) as opened:
        yield opened


def _add(vault: Vault, serial: str, *, seed: bytes = SEED, upn: str | None = UPN) -> None:
    vault.add_token(
        ADMIN,
        NewToken(serial, "Token2", "programmable", TokenKind.PROGRAMMABLE, seed, upn=upn),
    )


def _operator(token: SimulatedToken) -> Callable[[CodeRequest], str]:
    """Presses the button and types what the display shows."""

    def read(request: CodeRequest) -> str:
        assert request.serial == token.serial
        return token.code()

    return read


def _vault_code(vault: Vault, serial: str, at: float) -> str:
    stored = vault.get_token(serial)
    with vault.transaction() as conn:
        secret = vault.read_secret(conn, ADMIN, stored, purpose="test", audit=False)
    return totp(secret, at, algorithm=stored.algorithm, period=stored.period)


def _audit_actions(vault: Vault) -> list[str]:
    return [record["action"] for record in vault.export_audit()]


def test_burn_from_the_vault(vault: Vault, reader: PcscReader, put_on_reader: PutOnReader) -> None:
    _add(vault, MINI)
    token = put_on_reader(serial=MINI, clock_offset=-3600)
    result = burn(vault, HELPDESK, reader, BurnTarget(upn=UPN), _operator(token), timeout=5)
    assert token.seed == SEED
    assert abs(result.drift_seconds) <= 2
    assert result.token.state is TokenState.BURNED
    assert result.token.drift_seconds == result.drift_seconds
    for at in (mid_step(), mid_step() + 30, mid_step() + 3600):
        assert token.code(at) == _vault_code(vault, MINI, at)
        assert token.code(at) == pyotp.TOTP(base64.b32encode(SEED).decode()).at(at)
    records = list(vault.export_audit())
    burned = records[-1]
    assert (burned["action"], burned["actor"], burned["serial"], burned["upn"]) == (
        "token.burned",
        "ops:anna",
        MINI,
        UPN,
    )
    assert burned["details"]["model"] == "miniOTP-2-i"
    assert burned["details"]["seed_source"] == "vault"
    assert not [r for r in records if r["action"] == "token.secret_read"]
    token.seed = None  # burned again (say, the first burn was interrupted by a dead battery)
    burn(vault, ADMIN, reader, BurnTarget(serial=MINI), _operator(token), timeout=5)
    assert token.seed == SEED
    assert _audit_actions(vault)[-1] == "token.reburned"
    assert vault.get_token(MINI).state is TokenState.BURNED


def test_burn_with_a_new_seed_creates_the_record_from_the_device_serial(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    token = put_on_reader(serial=C301, t0=True)
    seed = SeedInput(bytes(range(32)), "generated")
    target = BurnTarget(upn=UPN, new_seed=seed, hash_name="sha256", period=60)
    result = burn(vault, ADMIN, reader, target, _operator(token), timeout=5)
    assert result.added
    stored = vault.get_token(C301)
    assert (stored.model, stored.state, stored.upn) == ("C301-i", TokenState.BURNED, UPN)
    assert (stored.algorithm, stored.period) == (Algorithm.SHA256, 60)
    assert (token.hash_name, token.period) == ("sha256", 60)
    at = mid_step(60)
    assert token.code(at) == _vault_code(vault, C301, at)
    assert _audit_actions(vault)[-2:] == ["token.added", "token.burned"]


def test_seeds_given_to_the_burn_need_admin_rights(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    token = put_on_reader(serial=MINI)
    target = BurnTarget(upn=UPN, new_seed=SeedInput(SEED, "entered"))
    before = _audit_actions(vault)
    with pytest.raises(Exception, match="may not manage tokens"):
        burn(vault, HELPDESK, reader, target, _operator(token), timeout=5)
    assert _audit_actions(vault) == before
    assert token.commands == []


def test_a_seed_the_vault_holds_already_is_refused_before_writing(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    _add(vault, MINI)
    token = put_on_reader(serial=C301)
    target = BurnTarget(upn=UPN, new_seed=SeedInput(SEED, "qr"))
    with pytest.raises(Conflict, match=f"token {MINI} already has this seed"):
        burn(vault, ADMIN, reader, target, _operator(token), timeout=5)
    vault.update_settings(ADMIN, max_tokens_per_user=1)
    target = BurnTarget(upn=UPN, new_seed=SeedInput(bytes(20), "qr"))
    with pytest.raises(Conflict, match="already has 1 tokens, the limit"):
        burn(vault, ADMIN, reader, target, _operator(token), timeout=5)
    assert token.commands == []


def test_the_serial_on_the_reader_must_be_the_vaults(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    _add(vault, MINI)
    token = put_on_reader(serial="8659600000999")
    with pytest.raises(Conflict, match="8659600000999, not 8659600000101; present"):
        burn(vault, ADMIN, reader, BurnTarget(serial=MINI), _operator(token), timeout=5)
    assert token.config_writes == 0


def test_a_wrong_code_records_nothing(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    _add(vault, MINI)
    put_on_reader(serial=MINI)
    typed: list[int] = []

    def wrong(request: CodeRequest) -> str:
        typed.append(request.attempt)
        return "12345"  # five digits: never one of the token's codes

    with pytest.raises(PolicyRefused, match="does not match token 8659600000101 \\(3 tries\\)"):
        burn(vault, ADMIN, reader, BurnTarget(upn=UPN), wrong, timeout=5)
    assert typed == [1, 2, 3]
    assert vault.get_token(MINI).state is TokenState.ASSIGNED


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"device": "fido"}, WrongDevice, "FIDO security key"),
        ({"device": "yubikey"}, WrongDevice, "YubiKey"),
        ({"serial": "60234567"}, NotProgrammable, "not a programmable model"),
        ({"locked": True}, TokenLocked, "6983: locked"),
        ({"remove_during_seed_write": True}, TokenRemoved, "left the reader"),
        ({"config_answer": 0x6700}, TokenRefused, "6700 \\(wrong length\\) to the configuration"),
        ({"config_answer": 0x6F00}, TokenRefused, "answered 6F00 to the configuration write"),
    ],
)
def test_failures_leave_the_vault_unchanged(
    vault: Vault,
    reader: PcscReader,
    put_on_reader: PutOnReader,
    fields: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    _add(vault, MINI)
    before = (vault.get_token(MINI), _audit_actions(vault))
    token = put_on_reader(**{"serial": MINI, **fields})
    with pytest.raises(error, match=message) as caught:
        burn(vault, ADMIN, reader, BurnTarget(upn=UPN), _operator(token), timeout=5)
    assert "\n" not in str(caught.value)
    assert (vault.get_token(MINI), _audit_actions(vault)) == before


def test_after_a_removal_mid_write_the_next_try_starts_over(
    vault: Vault, reader: PcscReader, cards: list[VirtualCard]
) -> None:
    _add(vault, MINI)
    token = SimulatedToken(serial=MINI, remove_during_seed_write=True)
    cards.append(VirtualCard(token).insert())
    with pytest.raises(TokenRemoved):
        burn(vault, ADMIN, reader, BurnTarget(upn=UPN), _operator(token), timeout=5)
    wait_until_empty(reader.name)
    token.remove_during_seed_write = False
    cards.append(VirtualCard(token).insert())
    burn(vault, ADMIN, reader, BurnTarget(upn=UPN), _operator(token), timeout=5)
    assert token.seed == SEED
    assert token.config_writes == 2
    assert vault.get_token(MINI).state is TokenState.BURNED


def test_no_token_times_out(vault: Vault, reader: PcscReader) -> None:
    _add(vault, MINI)
    started = time.monotonic()
    with pytest.raises(NoToken, match="no token on the reader 'Virtual PCD 00 00' after 1 s"):
        burn(vault, ADMIN, reader, BurnTarget(upn=UPN), lambda r: "", timeout=1)
    assert time.monotonic() - started < 3


def test_no_reader_of_that_name(pcsc_reader: str) -> None:
    with pytest.raises(NoReader, match="no reader named like 'ACR122'; connected: Virtual PCD"):
        PcscReader("ACR122")


def test_vault_mistakes_are_found_before_the_token_is_touched(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    token = put_on_reader(serial=MINI)
    with pytest.raises(NotFound, match=r"helga@contoso\.com has no programmable token waiting"):
        burn(vault, ADMIN, reader, BurnTarget(upn=UPN), _operator(token), timeout=5)
    _add(vault, "8659600000777", upn=None, seed=bytes(range(200, 220)))
    with pytest.raises(Conflict, match="is in stock; assign it first"):
        burn(vault, ADMIN, reader, BurnTarget(serial="8659600000777"), _operator(token), timeout=5)
    _add(vault, MINI)
    with pytest.raises(Exception, match="stored as sha1/30 s"):
        burn(vault, ADMIN, reader, BurnTarget(serial=MINI, period=60), _operator(token), timeout=5)
    assert token.commands == [] or all(c[1] == 0x41 for c in token.commands)


def test_token_info_changes_nothing(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    _add(vault, C301)
    token = put_on_reader(serial=C301, clock_offset=-95)
    report = token_info(reader, vault=vault, timeout=5)
    assert (report.device.serial, report.device.model.name) == (C301, "C301-i")
    assert -97 <= report.drift_seconds <= -93
    assert report.stored is not None
    assert report.stored.upn == UPN
    assert {command[1] for command in token.commands} == {0x41}


@pytest.mark.parametrize(("serial", "reburned"), [(MINI, False), (C301, True)])
def test_resync(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader, serial: str, reburned: bool
) -> None:
    _add(vault, serial)
    token = put_on_reader(serial=serial)
    burn(vault, ADMIN, reader, BurnTarget(serial=serial), _operator(token), timeout=5)
    token.clock_offset = 150  # months later, the token runs ahead
    result = resync(vault, HELPDESK, reader, serial, _operator(token), timeout=5)
    assert 148 <= result.drift_before <= 152
    assert abs(result.drift_after) <= 2
    assert result.reburned is reburned
    assert token.seed_writes == (2 if reburned else 1)
    assert token.seed == SEED
    at = mid_step()
    assert token.code(at) == _vault_code(vault, serial, at)
    record = list(vault.export_audit())[-1]
    assert (record["action"], record["actor"]) == ("token.resynced", "ops:anna")
    assert record["details"]["seed_reburned"] is reburned
    assert vault.get_token(serial).drift_seconds == result.drift_after


def test_resync_refuses_restricted_models_whose_seed_is_gone(
    vault: Vault, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    _add(vault, C301)
    token = put_on_reader(serial=C301)
    burn(vault, ADMIN, reader, BurnTarget(serial=C301), _operator(token), timeout=5)
    for state in (TokenState.REGISTERED, TokenState.DELIVERED):
        vault.move(ADMIN, C301, state)
    vault.purge(ADMIN, C301, reason="delivered")
    writes = token.config_writes
    with pytest.raises(Conflict, match="erases its seed, and the vault no longer holds"):
        resync(vault, ADMIN, reader, C301, _operator(token), timeout=5)
    assert token.config_writes == writes
    assert token.seed == SEED


def test_a_queue_keeps_what_succeeded_and_reports_what_failed(
    vault: Vault, reader: PcscReader, cards: list[VirtualCard]
) -> None:
    vault.add_user(ADMIN, "bob@contoso.com")
    _add(vault, "8659600000301")
    _add(vault, "8659632000302", seed=bytes(range(40, 60)), upn="bob@contoso.com")
    tokens = [
        SimulatedToken(serial="8659600000301"),
        SimulatedToken(serial="8659632000302", locked=True),
        SimulatedToken(serial="8659632000302"),
    ]
    pending = iter(tokens)
    current: list[SimulatedToken] = []
    messages: list[str] = []

    def operator_hears(text: str) -> None:
        messages.append(text)
        if "present the next token" in text:
            current[:] = [next(pending)]
            cards.append(VirtualCard(current[0]).insert())
        elif "take the token off" in text:
            cards[-1].remove()

    def reads(request: CodeRequest) -> str:
        return current[0].code()

    targets = [BurnTarget(serial="8659600000301"), BurnTarget(upn="bob@contoso.com")] * 1
    targets.append(BurnTarget(upn="bob@contoso.com"))
    report = burn_queue(vault, ADMIN, reader, targets, reads, announce=operator_hears, timeout=5)
    assert [r.token.serial for r in report.burned] == ["8659600000301", "8659632000302"]
    assert [(p, m.split(" (")[0]) for p, _, m in report.failed] == [
        (2, "the token refused authentication at the authentication")
    ]
    assert report.not_attempted == []
    assert vault.get_token("8659632000302").state is TokenState.BURNED
    at = mid_step()
    assert tokens[2].code(at) == _vault_code(vault, "8659632000302", at)
    assert any("[2/3] failed" in m for m in messages)


def test_burn_and_resync_on_sqlite_and_postgresql(
    location: VaultLocation, master_key: MasterKey, reader: PcscReader, put_on_reader: PutOnReader
) -> None:
    """The burn's record is one unit of work on either storage (``location`` is parametrized)."""
    opened = Vault.create(location, master_key, ADMIN)
    try:
        opened.add_user(ADMIN, UPN)
        token = put_on_reader(serial=C301)
        seed = SeedInput(bytes(range(60, 80)), "generated")
        burn(opened, ADMIN, reader, BurnTarget(upn=UPN, new_seed=seed), _operator(token), timeout=5)
        token.clock_offset = 40
        resync(opened, ADMIN, reader, C301, _operator(token), timeout=5)
        at = mid_step()
        assert token.code(at) == _vault_code(opened, C301, at)
        assert _audit_actions(opened)[-3:] == ["token.added", "token.burned", "token.resynced"]
        assert opened.verify_audit() == []
    finally:
        opened.close()
