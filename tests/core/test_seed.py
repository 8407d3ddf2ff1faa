"""Seed parsing: every form operators paste, and every mistake Token2's burners see."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oathdesk.errors import SeedError
from oathdesk.seed import (
    SeedForm,
    base32_to_hex,
    build_otpauth_uri,
    encode_base32,
    generate_secret,
    hex_to_base32,
    normalize_base32,
    parse_seed,
)

SECRET = bytes(range(1, 21))
B32 = encode_base32(SECRET)  # AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU


@pytest.mark.parametrize(
    "text",
    [
        B32,
        B32.lower(),
        " ".join(B32[i : i + 4] for i in range(0, len(B32), 4)),  # Entra's "Can't scan?" groups
        "-".join(B32[i : i + 4] for i in range(0, len(B32), 4)),
        f"  {B32}\n",
        f"base32:{B32}",
    ],
)
def test_base32_forms(text: str) -> None:
    seed = parse_seed(text)
    assert seed.secret == SECRET
    assert seed.form is SeedForm.BASE32


def test_base32_padding() -> None:
    ten = base64.b32encode(bytes(range(10, 20))).decode()  # 16 chars, no padding needed
    assert parse_seed(ten).secret == bytes(range(10, 20))
    eleven = base64.b32encode(bytes(range(11))).decode()
    assert eleven.endswith("=")
    assert parse_seed(eleven).secret == bytes(range(11))
    with pytest.raises(SeedError, match="padding"):
        parse_seed(eleven.rstrip("=") + "=")


@pytest.mark.parametrize(
    "text", [SECRET.hex(), SECRET.hex().upper(), "0x" + SECRET.hex(), "hex:" + SECRET.hex()]
)
def test_hex_forms(text: str) -> None:
    seed = parse_seed(text)
    assert seed.secret == SECRET
    assert seed.form is SeedForm.HEX


def test_otpauth_uri() -> None:
    uri = (
        "otpauth://totp/Contoso%20Ltd:helga%40contoso.com?secret="
        + B32
        + "&issuer=Contoso%20Ltd&algorithm=SHA256&digits=8&period=60"
    )
    seed = parse_seed(uri)
    assert seed.form is SeedForm.OTPAUTH_URI
    assert seed.secret == SECRET
    assert (seed.algorithm, seed.digits, seed.period) == ("sha256", 8, 60)
    assert seed.issuer == "Contoso Ltd"
    assert seed.account == "helga@contoso.com"


def test_uri_round_trip() -> None:
    uri = build_otpauth_uri(SECRET, account="a b@contoso.com", issuer="Microsoft", digits=6)
    seed = parse_seed(uri)
    assert (seed.secret, seed.account, seed.issuer) == (SECRET, "a b@contoso.com", "Microsoft")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "phonefactor://activate_account?code=123&url=x",
            "I want to use a different authenticator app",
        ),
        ("otpauth-migration://offline?data=abc", "Google Authenticator export"),
        ("FIDO:/1234567890", "passkey"),
        ("otpauth://hotp/x?secret=" + B32 + "&counter=1", "HOTP"),
        ("https://aka.ms/mfasetup", "web address"),
        ("86596120012345", "serial number"),
        ("8659 6120 0123", "serial number"),
        ("", "empty"),
        ("JBSWY3DP", "only 5 bytes"),
        ("JBSWY3DPEHPK3PX0", "0 is not base32; did you mean O?"),
        ("JBSWY3DPEHPK3PX1", "did you mean I or L?"),
        ("JBSWY3DPEHPK3PX8", "did you mean B?"),
        ("JBSWY3DP!HPK3PXP", "neither base32"),
        ("0x" + SECRET.hex()[:-1], "even number of digits"),
        ("hex:xyz", "not valid hex"),
        ("otpauth://totp/x?secret=" + B32 + "&algorithm=MD5", "only SHA1"),
        ("otpauth://totp/x?secret=" + B32 + "&digits=5", "6 to 10"),
        ("otpauth://totp/x?issuer=y", "no secret"),
        (B32 + "A", "characters long"),
    ],
)
def test_mistakes_are_refused_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(SeedError) as caught:
        parse_seed(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    if len(text) > 16:
        assert text not in str(caught.value)


def test_repr_hides_the_secret() -> None:
    seed = parse_seed(B32)
    for rendering in (repr(seed), str(seed)):
        assert B32 not in rendering
        assert SECRET.hex() not in rendering
        assert repr(SECRET) not in rendering


def test_conversions() -> None:
    assert base32_to_hex(B32.lower()) == SECRET.hex()
    assert hex_to_base32(SECRET.hex()) == B32
    assert normalize_base32("aeba gbaf-aydq qcik bmga 2dqp cair eeyu") == B32


@pytest.mark.parametrize(("algorithm", "size"), [("sha1", 20), ("sha256", 32), ("sha512", 64)])
def test_generate_secret(algorithm: str, size: int) -> None:
    first, second = generate_secret(algorithm), generate_secret(algorithm)
    assert len(first) == size
    assert first != second
    assert len(generate_secret("sha1", 16)) == 16
    with pytest.raises(SeedError):
        generate_secret("sha1", 5)


@given(st.binary(min_size=10, max_size=128))
def test_round_trips(secret: bytes) -> None:
    assert parse_seed(encode_base32(secret)).secret == secret
    assert parse_seed(encode_base32(secret).lower()).secret == secret
    assert parse_seed("hex:" + secret.hex()).secret == secret
    assert parse_seed(build_otpauth_uri(secret, account="u@x.y")).secret == secret


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_seed_error(text: str) -> None:
    message = ""
    try:
        seed = parse_seed(text)
    except SeedError as error:
        message = str(error)
    else:
        assert len(seed.secret) >= 10
    assert "\n" not in message
