"""`oathdesk entra push --serial A --serial B`, interrupted (a 500, Ctrl-C, kill -9 at chosen
points) and then run again, identically, as a script's retry would: the rerun finishes what is
left, reports what an earlier run finished as "already done", and exits 0.

Interruptions are real: the CLI runs as a subprocess against the fake Graph (a real HTTPS server
in this process), which holds the chosen request's answer back while the test sends the signal,
after Graph carried the request out.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from oathdesk.vault.lifecycle import TokenState
from tests.conftest import OATHDESK, assert_one_line_error
from tests.graph.entra_helpers import ADMIN, EntraWorld, world

__all__ = ["world"]

ACTIVATE = "/hardwareOathMethods/assignAndActivate"
INVENTORY = "/hardwareOathDevices"
UPN = "rerun@contoso.onmicrosoft.com"
FINISHED = {"activated", "already activated", "already done"}


def _push_args(serials: list[str]) -> list[str]:
    args = ["entra", "push", "--json"]
    for serial in serials:
        args += ["--serial", serial]
    return args


def _start(world: EntraWorld, serials: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(OATHDESK), *_push_args(serials)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**world.env, "PATH": "/usr/bin:/bin"},
    )


def _run(world: EntraWorld, serials: list[str]) -> tuple[int, dict[str, Any], str]:
    process = _start(world, serials)
    out, err = process.communicate(timeout=120)
    return process.returncode, json.loads(out) if out.strip() else {}, err


def _wait_for(world: EntraWorld, method: str, path: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = [r for r in world.fake.requests if r[0] == method and path in r[1]]
        if len(seen) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the push never sent {method} {path} #{count}")


def _results(report: dict[str, Any]) -> dict[str, str]:
    return {o["serial"]: o["result"] for o in report["outcomes"]}


def _assert_each_done_once(world: EntraWorld, serials: list[str], *, unanswered: int = 0) -> None:
    """Each serial created once and activated once (``unanswered``: activations Graph carried
    out but answered with an error, so they are not logged as 204)."""
    created = Counter(
        item["serialNumber"]
        for method, path, body in world.fake.request_bodies
        if method == "PATCH" and INVENTORY in path
        for item in body["value"]
    )
    assert created == Counter(serials), "a device was created twice (or not at all)"
    activated = [r for r in world.fake.requests if ACTIVATE in r[1] and r[2] == 204]
    # An activation whose answer was held back while the client was killed is logged as 204.
    assert len(activated) + unanswered == len(serials), "a token was activated twice"
    # Activating an activated token is a 400: none was tried.
    assert not [r for r in world.fake.requests if ACTIVATE in r[1] and r[2] == 400]
    for serial in serials:
        assert world.fake.device(serial)["status"] == "activated"
        assert world.vault.get_token(serial).state is TokenState.REGISTERED


def test_a_rerun_after_a_500_reports_the_finished_serials_as_already_done(
    world: EntraWorld,
) -> None:
    first, second = world.add_tokens(UPN, 2, first=1)
    world.login()
    args = _push_args([first, second])
    # The first activation answers 500 before Graph did anything; the second one works.
    world.fake.fail_next(status=500, path_contains=ACTIVATE)
    half = world.cli(*args)
    assert half.returncode == 1, half
    results = _results(json.loads(half.stdout))
    assert results == {first: "failed", second: "activated"}, results
    again = world.cli(*args)
    assert again.returncode == 0, again
    results = _results(json.loads(again.stdout))
    assert results == {first: "activated", second: "already done"}, results
    third = world.cli(*args)
    assert third.returncode == 0, third
    assert _results(json.loads(third.stdout)) == {first: "already done", second: "already done"}
    table = world.cli(*args[:2], "--serial", first, "--serial", second)
    assert table.returncode == 0, table
    assert "failed " not in table.stdout
    assert ", 0 failed" in table.stdout
    assert "2 already done" in table.stdout
    _assert_each_done_once(world, [first, second])


def test_a_rerun_after_a_500_that_graph_carried_out_finishes_the_job(world: EntraWorld) -> None:
    serials = world.add_tokens(UPN, 2, first=11)
    world.login()
    # Entra activates the first token, then answers 500: the vault does not know it worked.
    world.fake.fail_next(status=500, path_contains=ACTIVATE, after_processing=True)
    broken = world.cli(*_push_args(serials))
    assert broken.returncode == 1, broken
    again = world.cli(*_push_args(serials))
    assert again.returncode == 0, again
    results = _results(json.loads(again.stdout))
    assert results == {serials[0]: "already activated", serials[1]: "already done"}, results
    _assert_each_done_once(world, serials, unanswered=1)


# Where the run is interrupted: (HTTP method, path, which request of them); the answer to that
# request is held back, so Graph has carried it out when the signal arrives.
POINTS = {
    # both devices created in Entra; the journal still says 'creating'
    "during-create": ("PATCH", INVENTORY, 1),
    # the first token activated in Entra, not in the vault; the second created, not activated
    "during-first-activation": ("POST", ACTIVATE, 1),
    # the first token finished everywhere; the second activated in Entra, not in the vault
    "during-second-activation": ("POST", ACTIVATE, 2),
}


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("point", list(POINTS))
def test_an_identical_rerun_after_an_interruption_finishes_and_exits_0(
    world: EntraWorld, point: str, how: signal.Signals
) -> None:
    serials = world.add_tokens(UPN, 2, first=21)
    world.login()
    method, path, nth = POINTS[point]
    for _ in range(nth - 1):
        world.fake.delay_next(seconds=0.3, path_contains=path, method=method)
    world.fake.delay_next(seconds=5, path_contains=path, method=method)
    process = _start(world, serials)
    try:
        _wait_for(world, method, path, nth)
        process.send_signal(how)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == (-signal.SIGKILL if how is signal.SIGKILL else 130)
    code, report, err = _run(world, serials)
    assert code == 0, (report, err)
    results = _results(report)
    assert set(results) == set(serials)
    assert set(results.values()) <= FINISHED, results
    if point == "during-second-activation":
        assert results[serials[0]] == "already done"
    assert report["stopped"] == ""
    _assert_each_done_once(world, serials)
    # Nothing left: one more identical run is all "already done".
    code, report, err = _run(world, serials)
    assert code == 0, (report, err)
    assert set(_results(report).values()) == {"already done"}
    audit = world.audit_text()
    if how is signal.SIGKILL:
        # The killed run's lease was taken over at once (same host, its process gone), audited.
        assert "lease.taken_over" in audit
    else:
        assert "lease.taken_over" not in audit  # Ctrl-C gave the lease back


def test_a_spare_device_with_the_same_serial_does_not_stop_a_push_or_its_rerun(
    world: EntraWorld,
) -> None:
    """Someone uploaded a spare device with the serial after the first run created ours (and
    before it was activated): the rerun activates the one oathdesk created, not the spare."""
    serials = world.add_tokens(UPN, 2, first=31)
    world.login()
    world.fake.fail_next(status=500, path_contains=ACTIVATE)  # the first serial stays created
    assert world.cli(*_push_args(serials)).returncode == 1
    ours = world.fake.device(serials[0])["id"]
    spare = world.fake.add_device(serials[0], "JBSWY3DPEHPK3PXP", allow_duplicate_serial=True)
    again = world.cli(*_push_args(serials))
    assert again.returncode == 0, again
    assert _results(json.loads(again.stdout)) == {
        serials[0]: "activated",
        serials[1]: "already done",
    }
    states = {d["id"]: d["status"] for d in world.fake.devices}
    assert states[ours] == "activated"
    assert states[spare] == "available"


def test_a_lease_left_by_another_machine_is_taken_over_only_when_confirmed(
    world: EntraWorld,
) -> None:
    (serial,) = world.add_tokens(UPN, 1, first=41)
    world.login()
    gone = world.vault.lease("oathdesk entra push", ADMIN, host="desk-far", ttl=timedelta(hours=1))
    gone.__enter__()  # never left: that desk was switched off mid-push
    blocked = world.cli("entra", "push")
    assert_one_line_error(blocked)
    assert "`oathdesk entra push --take-over-lease`" in blocked.stderr
    no_tty = world.cli("entra", "push", "--take-over-lease")
    assert_one_line_error(no_tty)
    assert "add --yes once you are sure" in no_tty.stderr
    assert "lease.taken_over" not in world.audit_text()
    taken = world.cli("entra", "push", "--take-over-lease", "--yes")
    assert taken.returncode == 0, taken
    assert "took over the lease of the push by local:test on desk-far" in taken.stderr
    assert world.vault.get_token(serial).state is TokenState.REGISTERED
    assert "lease.taken_over" in world.audit_text()
