"""`oathdesk burn --batch FILE` run again: finished tokens are skipped, the queue's tokens come in
any order, and what is left over goes to a file the next run takes as its --batch.

The operator is simulated at the announcements: "present the next token" puts the next token of
the box on the (real, virtual) reader, "take the token off" takes it off, and every code prompt is
answered with what the token on the reader shows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import pytest

from oathdesk.otp import totp
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.vault import NewToken, Vault
from tests.nfc.conftest import ADMIN, UPN, Line, Oathdesk, wait_until_empty
from tests.nfc.simulated_token import SimulatedToken, VirtualCard

pytestmark = [pytest.mark.pcsc, pytest.mark.xdist_group("pcsc")]

BOB = "bob@contoso.com"
CAROL = "carol@contoso.com"
A, B, C = "8659600000701", "8659632000702", "8659612000703"  # seeds survive a clock write


class Operator:
    """Takes tokens out of the box in the order given and answers the prompts."""

    def __init__(self, pcsc_reader: str, cards: list[VirtualCard]) -> None:
        self.reader_name = pcsc_reader
        self.cards = cards
        self.box: list[SimulatedToken] = []
        self.current: SimulatedToken | None = None
        self.interrupt_at: str | None = None  # press Ctrl-C at the prompt of this serial
        # serial -> a seed this token must provably not be taken to show (see ``code``)
        self.not_showing: dict[str, bytes] = {}

    def hears(self, text: str) -> None:
        if "present the next token" in text and self.box:
            self.current = self.box.pop(0)
            self.cards.append(VirtualCard(self.current).insert())
        elif "take the token off" in text and self.current is not None:
            self.cards[-1].remove()
            self.current = None

    def code(self) -> str:
        assert self.current is not None, "asked for a code with no token on the reader"
        if self.current.serial == self.interrupt_at:
            raise KeyboardInterrupt
        code = self.current.code()
        other = self.not_showing.get(self.current.serial)
        if other is None or self.current.seed == other:
            return code
        # A token with another seed shows the other seed's code (within the ±1 step accepted)
        # about 3 times in a million: type a code provably outside that window, at every moment.
        now = time.time()
        window = {totp(other, now + step * 30) for step in range(-3, 4)}
        while code in window:
            code = f"{(int(code) + 1) % 1_000_000:06d}"
        return code

    def lines(self) -> list[Line]:
        return [self.code] * 20

    def done(self) -> None:
        for card in self.cards:
            card.remove()
        self.current = None
        wait_until_empty(self.reader_name)


@pytest.fixture
def operator(
    pcsc_reader: str, cards: list[VirtualCard], monkeypatch: pytest.MonkeyPatch
) -> Operator:
    person = Operator(pcsc_reader, cards)
    echo = click.echo

    def echo_and_listen(message: Any = None, *args: Any, **kwargs: Any) -> None:
        echo(message, *args, **kwargs)
        if kwargs.get("err") and isinstance(message, str):
            person.hears(message)

    monkeypatch.setattr(click, "echo", echo_and_listen)
    return person


def _add(vault: Vault, serial: str, upn: str, seed: bytes) -> None:
    vault.add_token(
        ADMIN, NewToken(serial, "Token2", "programmable", TokenKind.PROGRAMMABLE, seed, upn=upn)
    )


@pytest.fixture
def three(vault: Vault) -> dict[str, SimulatedToken]:
    """Three tokens waiting in the vault (one per user), and the same three in a box."""
    vault.add_user(ADMIN, BOB)
    vault.add_user(ADMIN, CAROL)
    for serial, upn, first in ((A, UPN, 10), (B, BOB, 40), (C, CAROL, 70)):
        _add(vault, serial, upn, bytes(range(first, first + 20)))
    return {serial: SimulatedToken(serial=serial) for serial in (A, B, C)}


def _queue(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "queue.txt"
    path.write_text("# this morning's tokens\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _holds_the_vaults_seed(token: SimulatedToken, vault: Vault) -> bool:
    stored = vault.get_token(token.serial)
    with vault.transaction() as conn:
        secret = vault.read_secret(conn, ADMIN, stored, purpose="test", audit=False)
    return token.seed == secret


def _writes(box: dict[str, SimulatedToken]) -> dict[str, int]:
    return {serial: token.config_writes + token.seed_writes for serial, token in box.items()}


def test_a_rerun_skips_the_tokens_already_burned(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    queue = _queue(tmp_path, A, B, C)
    operator.box = [three[A], three[B], three[C]]
    first = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert first.returncode == 0, first.stderr
    assert "burned 3 of 3 tokens" in first.stdout
    operator.done()
    before = _writes(three)
    # The same command again, the same box: each token is named as done, none is written.
    operator.box = [three[A], three[B], three[C]]
    again = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert again.returncode == 0, again.stderr
    assert _writes(three) == before
    assert "burned 0 of 3 tokens; 3 already burned (skipped)" in again.stdout
    for serial in (A, B, C):
        assert f"  skipped  {serial}: already burned with the seed the vault holds" in again.stdout
        assert vault.get_token(serial).state is TokenState.BURNED
    assert "present the next token" not in again.stderr  # nothing was left to present
    assert not (tmp_path / "queue.left.txt").exists()
    actions = [r["action"] for r in vault.export_audit()]
    assert actions.count("token.burned") == 3
    assert "token.reburned" not in actions


def test_the_queues_tokens_come_in_any_order(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    queue = _queue(tmp_path, A, UPN.upper(), BOB)  # a serial and two users' waiting tokens
    # A is helga's; the second line (helga again, in capitals) is her other waiting token.
    _add(vault, "8659600000704", UPN, bytes(range(100, 120)))
    fourth = SimulatedToken(serial="8659600000704")
    operator.box = [three[B], fourth, three[A]]  # as they came out of the box
    result = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert result.returncode == 0, result.stderr
    assert "burned 3 of 3 tokens" in result.stdout
    for token in (three[A], three[B], fourth):
        assert vault.get_token(token.serial).state is TokenState.BURNED
        assert _holds_the_vaults_seed(token, vault)
    assert three[C].config_writes == 0


def test_left_over_entries_go_to_a_file_the_next_run_takes(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    queue = _queue(tmp_path, A, B, C)
    queue.chmod(0o640)
    three[B].locked = True  # a failed write
    operator.box = [three[A], three[B], three[C]]
    first = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert first.returncode != 0
    left = tmp_path / "queue.left.txt"
    assert f"left over: 1 entry written to {left}" in first.stdout
    assert first.stderr.splitlines()[-1].startswith("error: 1 of 3 tokens are not burned")
    assert f"oathdesk burn --batch {left}" in first.stderr.splitlines()[-1]
    entries = [ln for ln in left.read_text().splitlines() if ln and not ln.startswith("#")]
    assert entries == [B]
    assert left.stat().st_mode & 0o777 == 0o640  # as the operator protected the queue
    operator.done()
    three[B].locked = False
    before = _writes(three)
    operator.box = [three[B]]
    second = oathdesk("burn", "--batch", str(left), "--timeout", "5", typed=operator.lines())
    assert second.returncode == 0, second.stderr
    assert "burned 1 of 1 tokens" in second.stdout
    assert not left.exists()  # nothing is left: no stale file to run again
    after = _writes(three)
    assert (after[A], after[C]) == (before[A], before[C])
    assert _holds_the_vaults_seed(three[B], vault)


def test_ctrl_c_mid_batch_leaves_exactly_the_rest(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    queue = _queue(tmp_path, A, B, C)
    operator.box = [three[A], three[B], three[C]]
    operator.interrupt_at = B  # Ctrl-C at B's code prompt: B is written, not recorded
    first = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert first.returncode == 130
    assert first.stderr.splitlines()[-1].startswith("error: interrupted; 2 of 3 tokens are not")
    left = tmp_path / "queue.left.txt"
    entries = [ln for ln in left.read_text().splitlines() if ln and not ln.startswith("#")]
    assert entries == [B, C]
    assert vault.get_token(A).state is TokenState.BURNED
    assert vault.get_token(B).state is TokenState.ASSIGNED
    operator.done()
    operator.interrupt_at = None
    writes_of_a = three[A].config_writes
    # Rerunning the original file does what is left: B and C, in the order they come.
    operator.box = [three[C], three[B]]
    second = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert second.returncode == 0, second.stderr
    assert "burned 2 of 3 tokens; 1 already burned (skipped)" in second.stdout
    assert three[A].config_writes == writes_of_a
    for serial in (B, C):
        assert _holds_the_vaults_seed(three[serial], vault)


def test_a_removal_mid_write_is_left_over_and_redone(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    queue = _queue(tmp_path, A, B)
    three[A].remove_during_seed_write = True
    operator.box = [three[A], three[B]]
    first = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert first.returncode != 0
    failed = [line for line in first.stdout.splitlines() if line.startswith("  failed ")]
    assert len(failed) == 1
    assert failed[0].startswith(f"  failed   {A}: the token")
    assert "left the reader" in failed[0]
    left = tmp_path / "queue.left.txt"
    assert [ln for ln in left.read_text().splitlines() if not ln.startswith("#")] == [A]
    operator.done()
    three[A].remove_during_seed_write = False
    operator.box = [three[A]]
    second = oathdesk("burn", "--batch", str(left), "--timeout", "5", typed=operator.lines())
    assert second.returncode == 0, second.stderr
    assert _holds_the_vaults_seed(three[A], vault)
    assert three[B].config_writes == 1


def test_a_finished_token_put_back_is_checked_by_its_code_not_burned(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    """The token cannot say over NFC which seed it holds; the code it shows can."""
    queue = _queue(tmp_path, A, B)
    operator.box = [three[A]]
    first = oathdesk("burn", "--batch", str(queue), "--timeout", "2", typed=operator.lines())
    assert first.returncode != 0  # B never came
    operator.done()
    writes_of_a = three[A].config_writes
    # The operator picks A again by mistake (from the same box), then B.
    operator.box = [three[A], three[B]]
    second = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert second.returncode == 0, second.stderr
    assert f"token {A} is already burned with the seed the vault holds (its code matches)" in (
        second.stderr
    )
    assert three[A].config_writes == writes_of_a
    assert _holds_the_vaults_seed(three[B], vault)
    # A token that lost its seed (a dead battery, say) shows no matching code: burned again.
    operator.done()
    three[A].seed = bytes(20)
    with vault.transaction() as conn:
        stored = vault.read_secret(conn, ADMIN, vault.get_token(A), purpose="test", audit=False)
    operator.not_showing[A] = stored
    queue = _queue(tmp_path, A, C)
    operator.box = [three[A], three[C]]
    third = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert third.returncode == 0, third.stderr
    assert f"token {A} does not show the code of the seed the vault holds: burning it again" in (
        third.stderr
    )
    assert "burned 2 of 2 tokens" in third.stdout
    assert _holds_the_vaults_seed(three[A], vault)
    assert _holds_the_vaults_seed(three[C], vault)


def test_a_generate_batch_rerun_gives_no_user_a_second_token(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    tmp_path: Path,
) -> None:
    vault.add_user(ADMIN, BOB)
    queue = _queue(tmp_path, UPN, BOB)
    new = [SimulatedToken(serial="8659600000801"), SimulatedToken(serial="8659600000802")]
    operator.box = [new[0]]
    first = oathdesk(
        "burn", "--batch", str(queue), "--generate", "--timeout", "2", typed=operator.lines()
    )
    assert first.returncode != 0
    left = tmp_path / "queue.left.txt"
    body = left.read_text()
    assert [ln for ln in body.splitlines() if not ln.startswith("#")] == [BOB]
    assert new[0].seed is not None
    assert new[0].seed.hex() not in body
    operator.done()
    operator.box = [new[1]]
    again = oathdesk(
        "burn", "--batch", str(queue), "--generate", "--timeout", "5", typed=operator.lines()
    )
    assert again.returncode == 0, again.stderr
    assert f"  skipped  {UPN}: already burned with the seed the vault holds" in again.stdout
    assert [t.upn for t in vault.list_tokens()] == [UPN, BOB]
    assert new[0].config_writes == 1


def test_nothing_is_burned_twice_over_reruns(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    """Fail, interrupt and rerun in turn until the queue is done: each token written once."""
    queue = _queue(tmp_path, A, B, C)
    three[C].locked = True
    operator.box = [three[C], three[A], three[B]]
    operator.interrupt_at = B
    oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    operator.done()
    three[C].locked, operator.interrupt_at = False, None
    left = tmp_path / "queue.left.txt"
    operator.box = [three[B], three[C]]
    result = oathdesk("burn", "--batch", str(left), "--timeout", "5", typed=operator.lines())
    assert result.returncode == 0, result.stderr
    assert three[A].config_writes == 1
    assert three[C].config_writes == 1
    assert three[B].config_writes == 2  # written, then Ctrl-C before its code: written again
    actions = [r["action"] for r in vault.export_audit()]
    assert actions.count("token.burned") == 3
    assert "token.reburned" not in actions
    assert not left.exists()


def test_a_registered_token_without_its_seed_is_left_over_not_rewritten(
    vault: Vault,
    oathdesk: Oathdesk,
    operator: Operator,
    three: dict[str, SimulatedToken],
    tmp_path: Path,
) -> None:
    """Past `burned` (here: registered with Entra) a token is not burned again by a queue."""
    queue = _queue(tmp_path, A)
    operator.box = [three[A]]
    assert oathdesk("burn", "--batch", str(queue), typed=operator.lines()).returncode == 0
    operator.done()
    vault.move(ADMIN, A, TokenState.REGISTERED)
    with vault.transaction() as conn:
        stored = vault.read_secret(conn, ADMIN, vault.get_token(A), purpose="test", audit=False)
    three[A].seed, operator.not_showing[A] = bytes(20), stored
    writes = three[A].config_writes
    queue = _queue(tmp_path, A, B)
    operator.box = [three[A], three[B]]
    result = oathdesk("burn", "--batch", str(queue), "--timeout", "5", typed=operator.lines())
    assert result.returncode != 0
    assert f"  failed   {A}: token {A} is registered" in result.stdout
    assert three[A].config_writes == writes
    left = tmp_path / "queue.left.txt"
    assert [ln for ln in left.read_text().splitlines() if not ln.startswith("#")] == [A]
    assert vault.get_token(B).state is TokenState.BURNED


def test_the_left_over_file_keeps_the_queues_id() -> None:
    from datetime import UTC, datetime

    from oathdesk.cli.burn import left_over_path
    from oathdesk.services.burn_batch import left_over_text, parse_batch

    original = parse_batch(f"# tokens\n{UPN}\n\n{A}  # the spare\n{BOB}\n", "queue.txt")
    assert original.entries == [UPN, A, BOB]
    assert parse_batch(f"{UPN.upper()}\n{A}\n{BOB}\n", "copy.txt").batch_id == original.batch_id
    text = left_over_text(original.batch_id, [BOB], "queue.txt", datetime(2026, 12, 4, tzinfo=UTC))
    again = parse_batch(text, "queue.left.txt")
    assert (again.batch_id, again.entries) == (original.batch_id, [BOB])
    assert left_over_path(Path("/q/queue.txt")) == Path("/q/queue.left.txt")
    assert left_over_path(Path("/q/queue.left.txt")) == Path("/q/queue.left.txt")
    assert left_over_path(Path("/q/queue")) == Path("/q/queue.left")
