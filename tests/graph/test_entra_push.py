"""`oathdesk entra push`: batches, throttling, the activation limit, interruption and resume.

The fake checks every activation code against the seed with Entra's window, so a device the
fake reports 'activated' proves oathdesk computed the right code at that moment.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections import Counter
from typing import Any

import pytest

from oathdesk.graph.api import HardwareOath
from oathdesk.otp import totp, totp_codes
from oathdesk.vault.lifecycle import TokenKind, TokenState
from tests.conftest import CliResult, assert_one_line_error
from tests.graph.entra_helpers import ADMIN, EntraWorld, pg_world, world
from tests.window_codes import totp_code, window_codes

__all__ = ["pg_world", "world"]

ACTIVATE = "/hardwareOathMethods/assignAndActivate"


def _users_with_tokens(world: EntraWorld, users: int, each: int) -> dict[str, list[str]]:
    owned = {}
    for index in range(users):
        upn = f"user{index}@contoso.onmicrosoft.com"
        owned[upn] = world.add_tokens(upn, each, first=index * 100)
    return owned


def _assert_no_secret_leaked(world: EntraWorld, *texts: str) -> None:
    """No seed, client secret or activation code in the output, the audit log or the DB."""
    leaks = [world.fake.client_secret]
    for seed in world.seeds.values():
        leaks += [base64.b32encode(seed).decode().rstrip("="), seed.hex()]
    haystack = "\n".join(texts) + world.audit_text()
    for secret in leaks:
        assert secret not in haystack
        assert secret.lower() not in haystack.lower()
    stored = world.db_bytes()
    assert world.fake.client_secret.encode() not in stored
    for seed in world.seeds.values():
        assert seed not in stored
        assert base64.b32encode(seed) not in stored
    now = time.time()
    for seed in world.seeds.values():
        for offset in range(-10, 3):  # every code shown since the run started
            code = totp(seed, now + offset * 30)
            assert not re.search(rf"\b{code}\b", haystack), "an activation code leaked"


def _activation_calls(world: EntraWorld) -> list[tuple[str, str, int]]:
    return [r for r in world.fake.requests if r[0] == "POST" and ACTIVATE in r[1]]


def test_push_twelve_tokens_in_batches_under_throttling_and_the_limit(
    world: EntraWorld,
) -> None:
    owned = _users_with_tokens(world, 4, 3)
    world.login()
    world.fake.delta_batch_limit = 5
    world.fake.throttle(2, retry_after=0.5, path_contains="hardwareOathDevices")
    # The service refuses a 5th activation within a second; oathdesk's own limiter must keep
    # below it, so no activation is ever answered 429.
    world.fake.limit_activations(4, 1.0)
    started = time.monotonic()
    result = world.cli("entra", "push", "--batch-size", "5", "--activations", "4", "--per", "1.5")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result
    assert "12 registered, 0 failed" in result.stdout
    waited = re.search(
        r"waited ([0-9.]+) s for the activation limit and ([0-9.]+) s", result.stdout
    )
    assert waited is not None
    # 12 activations at 4 per 1.5 s (a margin over the fake's 1.0 s for slow requests): the
    # limiter held the run back twice, minus the time the calls took.
    assert float(waited.group(1)) >= 1.0
    assert float(waited.group(2)) >= 1.0  # two Retry-After: 0.5 honoured
    assert elapsed >= 3.0
    statuses = [status for _, _, status in _activation_calls(world)]
    assert statuses == [204] * 12
    throttled = [r for r in world.fake.requests if r[2] == 429]
    assert len(throttled) == 2, throttled
    deltas = [r for r in world.fake.request_bodies if r[0] == "PATCH"]
    assert [len(body["value"]) for _, _, body in deltas] == [5, 5, 2]
    for upn, serials in owned.items():
        user_id = world.fake.user_id(upn)
        for serial in serials:
            device = world.fake.device(serial)
            assert device["status"] == "activated"
            assert device["assignedTo"]["id"] == user_id
            # The fake holds the seed oathdesk uploaded: the vault's own.
            assert base64.b32decode(device["secretKey"]) == world.seeds[serial]
            assert world.vault.get_token(serial).state is TokenState.REGISTERED
    audit = world.audit_text()
    assert audit.count("token.registered") == 12
    for operation in ("graph.call", "devices.create", "methods.activate"):
        assert operation in audit
    _assert_no_secret_leaked(world, result.stdout, result.stderr)
    # Nothing left to do: a second run changes nothing.
    again = world.cli("entra", "push")
    assert "nothing to push" in again.stdout
    assert len(_activation_calls(world)) == 12


def test_dry_run_says_what_would_happen_and_changes_nothing(world: EntraWorld) -> None:
    serials = world.add_tokens("ann@contoso.onmicrosoft.com", 2, first=1)
    world.login()
    result = world.cli("entra", "push", "--dry-run")
    assert result.returncode == 0, result
    assert result.stdout.count("would create") == 2
    assert world.fake.devices == []
    assert all(world.vault.get_token(s).state is TokenState.ASSIGNED for s in serials)
    assert not [r for r in world.fake.requests if r[0] != "GET" and "/beta/" in r[1]]


def _seed_that_cannot_match(vault_seed: bytes) -> bytes:
    now = time.time()
    ours = set(totp_codes(vault_seed, now, behind=0, ahead=20))
    for number in range(1000):
        other = f"another seed {number:07d}".encode()
        if ours.isdisjoint(totp_codes(other, now, behind=2900, ahead=2900)):
            return other
    raise AssertionError("no seed found whose window avoids the vault's codes")


def test_a_wrong_seed_fails_activation_with_the_reason_and_stays_assigned(
    world: EntraWorld,
) -> None:
    good, bad = world.add_tokens("bo@contoso.onmicrosoft.com", 2, first=10)
    # Entra already holds `bad` with another seed (uploaded by someone else, say). A random
    # code falls in the +-1 day activation window of any seed 0.6 % of the time, as on Entra;
    # pick a seed none of whose window codes equals the vault's codes of the next few minutes.
    other = _seed_that_cannot_match(world.seeds[bad])
    world.fake.add_device(bad, base64.b32encode(other).decode())
    world.login()
    result = world.cli("entra", "push")
    assert result.returncode == 1, result
    assert "1 registered, 1 failed" in result.stdout
    assert "invalidVerificationCode" in result.stdout
    assert world.fake.device(good)["status"] == "activated"
    assert world.fake.device(bad)["status"] == "failedActivation"
    assert world.vault.get_token(bad).state is TokenState.ASSIGNED
    assert world.vault.get_token(good).state is TokenState.REGISTERED


def test_a_dropped_answer_to_an_activation_is_checked_not_repeated(world: EntraWorld) -> None:
    serials = world.add_tokens("cy@contoso.onmicrosoft.com", 3, first=20)
    world.login()
    # Graph activates the first token but the answer never arrives.
    world.fake.fail_next(drop_connection=True, path_contains=ACTIVATE, after_processing=True)
    result = world.cli("entra", "push")
    assert result.returncode == 0, result
    assert "confirmed after a dropped connection" in result.stdout
    assert len(_activation_calls(world)) == 3  # one each; the dropped one was not resent
    assert all(world.fake.device(s)["status"] == "activated" for s in serials)
    assert all(world.vault.get_token(s).state is TokenState.REGISTERED for s in serials)


class Interrupt:
    """Raise KeyboardInterrupt (Ctrl-C) right after the n-th call of a function succeeded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, after: int):
        self.calls = 0
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.calls += 1
            if self.calls == after:
                raise KeyboardInterrupt
            return result

        monkeypatch.setattr(owner, name, wrapper)
        self._restore = (monkeypatch, owner, name, original)

    def undo(self) -> None:
        monkeypatch, owner, name, original = self._restore
        monkeypatch.setattr(owner, name, original)


def test_push_interrupted_twice_resumes_without_doing_anything_twice(
    world: EntraWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned = _users_with_tokens(world, 3, 4)
    serials = [s for group in owned.values() for s in group]
    world.login()
    # Run 1: Ctrl-C right after Graph created the 2nd batch (the journal still says 'creating').
    stop = Interrupt(monkeypatch, HardwareOath, "create_devices", after=2)
    first = world.cli("entra", "push", "--batch-size", "5")
    # Ctrl-C ends the command with the shell's exit status for it.
    assert first.returncode == 130
    assert "error: interrupted" in first.stderr
    stop.undo()
    assert len(world.fake.devices) == 10
    # Run 2: Ctrl-C after Entra activated the 6th token but before the vault recorded it.
    stop = Interrupt(monkeypatch, HardwareOath, "assign_and_activate", after=6)
    second = world.cli("entra", "push", "--batch-size", "5")
    assert second.returncode == 130, second
    stop.undo()
    registered = [s for s in serials if world.vault.get_token(s).state is TokenState.REGISTERED]
    assert len(registered) == 5
    # Run 3 finishes the job.
    third = world.cli("entra", "push", "--batch-size", "5")
    assert third.returncode == 0, third
    assert "already activated" in third.stdout
    created = Counter(
        item["serialNumber"]
        for method, _, body in world.fake.request_bodies
        if method == "PATCH"
        for item in body["value"]
    )
    assert sorted(created) == sorted(serials)
    assert set(created.values()) == {1}  # no device created twice
    assert len(world.fake.devices) == 12
    activations = [r for r in _activation_calls(world) if r[2] == 204]
    assert len(activations) == 12  # no token activated twice
    assert all(world.fake.device(s)["status"] == "activated" for s in serials)
    assert all(world.vault.get_token(s).state is TokenState.REGISTERED for s in serials)
    _assert_no_secret_leaked(world, first.stdout, second.stdout, third.stdout)


def test_a_second_push_on_the_same_vault_is_refused_while_the_first_runs(
    world: EntraWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two desks pushing at once would create and activate the same tokens twice: the second
    is told who is pushing and waits; once the first has finished, a push runs again."""
    serials = world.add_tokens("fi@contoso.onmicrosoft.com", 2, first=40)
    world.login()
    meanwhile: list[CliResult] = []
    original = HardwareOath.assign_and_activate

    def activate_while_another_desk_pushes(*args: Any, **kwargs: Any) -> Any:
        if not meanwhile:
            meanwhile.append(world.cli("entra", "push"))
        return original(*args, **kwargs)

    monkeypatch.setattr(HardwareOath, "assign_and_activate", activate_while_another_desk_pushes)
    first = world.cli("entra", "push")
    assert first.returncode == 0, first
    assert "2 registered, 0 failed" in first.stdout
    (second,) = meanwhile
    assert_one_line_error(second)
    assert "`oathdesk entra push` is already running on this vault" in second.stderr
    assert f" on {socket.gethostname()}, since " in second.stderr
    assert len(_activation_calls(world)) == 2  # the refused push reached no Entra endpoint
    assert all(world.vault.get_token(s).state is TokenState.REGISTERED for s in serials)
    monkeypatch.setattr(HardwareOath, "assign_and_activate", original)
    again = world.cli("entra", "push")  # the first push let go of the job when it ended
    assert again.returncode == 0, again


def test_push_picks_only_tokens_that_wait_for_entra(world: EntraWorld) -> None:
    (classic,) = world.add_tokens("di@contoso.onmicrosoft.com", 1, first=30)
    (unburned,) = world.add_tokens(
        "di@contoso.onmicrosoft.com", 1, first=31, kind=TokenKind.PROGRAMMABLE
    )
    (burned,) = world.add_tokens(
        "di@contoso.onmicrosoft.com", 1, first=32, kind=TokenKind.PROGRAMMABLE
    )
    world.vault.move(ADMIN, burned, TokenState.BURNED)
    world.login()
    result = world.cli("entra", "push", "--serial", unburned)
    assert result.returncode == 1
    assert "push takes assigned classic tokens and burned programmable ones" in result.stdout
    result = world.cli("entra", "push")
    assert result.returncode == 0, result
    assert {d["serialNumber"] for d in world.fake.devices} == {classic, burned}


def test_push_without_permission_stops_with_the_permission_named(world: EntraWorld) -> None:
    world.add_tokens("ed@contoso.onmicrosoft.com", 1, first=40)
    world.fake.revoke("UserAuthenticationMethod.ReadWrite.All")
    world.login()
    result = world.cli("entra", "push")
    assert "UserAuthenticationMethod.ReadWrite.All" in result.stderr
    assert_one_line_error(result)
    assert "Grant admin consent" in result.stderr


def test_push_with_the_method_disabled_says_how_to_enable_it(world: EntraWorld) -> None:
    (serial,) = world.add_tokens("fay@contoso.onmicrosoft.com", 1, first=70)
    world.fake.set_policy(False)
    world.login()
    result = world.cli("entra", "push")
    assert_one_line_error(result)
    assert result.stdout == ""
    assert "run `oathdesk entra enable`" in result.stderr
    assert world.fake.devices == []
    assert world.cli("entra", "enable").returncode == 0
    assert world.cli("entra", "push").returncode == 0
    assert world.fake.device(serial)["status"] == "activated"


def test_by_serial_activation_and_json_output(world: EntraWorld) -> None:
    serials = world.add_tokens("gus@contoso.onmicrosoft.com", 2, first=80)
    world.login()
    planned = json.loads(world.cli("entra", "push", "--dry-run", "--json").stdout)
    assert [o["result"] for o in planned["outcomes"]] == ["would create"] * 2
    result = world.cli("entra", "push", "--by-serial", "--json")
    assert result.returncode == 0, result
    report = json.loads(result.stdout)
    assert [o["serial"] for o in report["outcomes"]] == serials
    assert {o["result"] for o in report["outcomes"]} == {"activated"}
    assert report["stopped"] == ""
    by_serial = [r for r in world.fake.requests if "assignAndActivateBySerialNumber" in r[1]]
    assert [status for _, _, status in by_serial] == [204, 204]


def _days_off_whose_window_avoids(seed: bytes, days: float) -> float:
    """A clock offset of about ``days`` (a little more if need be) at which none of the seed's
    codes of the next 10 minutes is a code of Entra's +-1 day window: at exactly 3 days the
    code the push sends is one, by chance, about 0.6% of the time, and the fake accepts it."""
    now = int(time.time()) // 30
    ours = {totp_code(seed, step) for step in range(now, now + 21)}
    for extra in range(0, 100_000, 100):
        ahead = int(days * 2880) + extra
        if ours.isdisjoint(window_codes(seed, now + ahead, 2880, 2880)):
            return ahead * 30.0
    raise AssertionError("no offset found whose window avoids the vault's codes")


def test_a_clock_far_off_is_named_as_a_possible_cause(world: EntraWorld) -> None:
    (near, far) = world.add_tokens("hal@contoso.onmicrosoft.com", 2, first=90)
    world.login()
    world.fake.clock_offset = 6 * 3600  # Entra's clock 6 hours ahead: inside the 1-day window
    assert world.cli("entra", "push", "--serial", near).returncode == 0
    # about 3 days: outside it
    world.fake.clock_offset = _days_off_whose_window_avoids(world.seeds[far], 3)
    result = world.cli("entra", "push", "--serial", far)
    assert result.returncode == 1
    assert "clock is more than a day off" in result.stdout
    assert world.fake.device(near)["status"] == "activated"
    assert world.fake.device(far)["status"] == "failedActivation"


def test_a_gateway_timeout_on_an_activation_is_checked_not_resent(world: EntraWorld) -> None:
    (serial,) = world.add_tokens("ida@contoso.onmicrosoft.com", 1, first=95)
    world.login()
    world.fake.fail_next(status=504, path_contains=ACTIVATE)
    first = world.cli("entra", "push")
    assert_one_line_error(first)
    assert "timed out (504)" in first.stderr
    assert len(_activation_calls(world)) == 1
    second = world.cli("entra", "push")
    assert second.returncode == 0, second
    assert world.fake.device(serial)["status"] == "activated"


def test_push_interrupted_and_resumed_on_a_postgresql_vault(
    pg_world: EntraWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    serials = pg_world.add_tokens("jo@contoso.onmicrosoft.com", 3, first=1)
    pg_world.login()
    stop = Interrupt(monkeypatch, HardwareOath, "assign_and_activate", after=2)
    assert pg_world.cli("entra", "push").returncode == 130
    stop.undo()
    again = pg_world.cli("entra", "push")
    assert again.returncode == 0, again
    assert len([r for r in _activation_calls(pg_world) if r[2] == 204]) == 3
    assert all(pg_world.vault.get_token(s).state is TokenState.REGISTERED for s in serials)
    assert "entra.login" in pg_world.audit_text()
