"""A PSKC file with TOTP and HOTP keys mixed: HOTP keys are problems of their key by default, or,
with skip_hotp, left out and listed by serial while the TOTP keys are read."""

from __future__ import annotations

import io

import pskc

from oathdesk.formats.problems import Code
from oathdesk.formats.pskc import HOTP_URN, TOTP_URN, parse_pskc
from oathdesk.formats.reader import read_seed_file

# serial -> (algorithm, seed)
MIXED = {
    "70000001": (TOTP_URN, bytes([1]) * 20),
    "70000002": (HOTP_URN, bytes([2]) * 20),
    "70000003": (TOTP_URN, bytes([3]) * 20),
    "70000004": (HOTP_URN, bytes([4]) * 20),
}


def mixed_pskc(keys: dict[str, tuple[str, bytes]] = MIXED, *, users: bool = False) -> bytes:
    container = pskc.PSKC()
    for serial, (algorithm, secret) in keys.items():
        key = container.add_key(
            id=serial,
            serial=serial,
            secret=secret,
            algorithm=algorithm,
            manufacturer="Token2",
            model="C202",
        )
        key.response_length = 6
        if algorithm == TOTP_URN:
            key.time_interval = 30
        else:
            key.counter = 0
        if users:
            key.key_userid = f"u{serial}@contoso.com"
    buffer = io.BytesIO()
    container.write(buffer)
    return buffer.getvalue()


def key_lines(data: bytes) -> list[int]:
    return [n for n, text in enumerate(data.decode().splitlines(), 1) if "<pskc:Key " in text]


def test_without_skip_each_hotp_key_is_a_problem_of_its_key() -> None:
    data = mixed_pskc()
    parsed = parse_pskc(data)
    lines = key_lines(data)
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [
        (lines[1], "Algorithm", Code.NOT_TOTP),
        (lines[3], "Algorithm", Code.NOT_TOTP),
    ]
    assert parsed.skipped == []


def test_with_skip_the_totp_keys_are_read_and_the_hotp_ones_listed() -> None:
    data = mixed_pskc()
    parsed = read_seed_file(data, skip_hotp=True)
    lines = key_lines(data)
    assert parsed.problems == []
    assert [(r.serial, r.secret, r.period) for r in parsed.records] == [
        ("70000001", bytes([1]) * 20, 30),
        ("70000003", bytes([3]) * 20, 30),
    ]
    assert [(k.line, k.serial) for k in parsed.skipped] == [
        (lines[1], "70000002"),
        (lines[3], "70000004"),
    ]


def test_a_skipped_hotp_key_takes_no_part_in_the_checks_across_keys() -> None:
    # The HOTP key holds the seed of a TOTP key: skipped, it is not a duplicate of it.
    keys = {**MIXED, "70000002": (HOTP_URN, bytes([1]) * 20)}
    parsed = parse_pskc(mixed_pskc(keys), skip_hotp=True)
    assert parsed.problems == []
    assert [k.serial for k in parsed.skipped] == ["70000002", "70000004"]
