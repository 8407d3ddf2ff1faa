"""A text file of otpauth:// URIs, one per line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from oathdesk.formats.otpauth_list import looks_like_otpauth_list, parse_otpauth_list
from oathdesk.formats.problems import Code
from oathdesk.seed import build_otpauth_uri
from tests.formats.helpers import assert_no_secret, assert_well_formed

S1, S2, S3 = bytes([1]) * 20, bytes(range(20, 40)), bytes(range(200, 220))


def uri(secret: bytes, account: str, **kwargs: object) -> str:
    return build_otpauth_uri(secret, account=account, issuer="Microsoft", **kwargs)  # type: ignore[arg-type]


def test_a_list_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "uris.txt"
    path.write_bytes(
        (
            "# exported from the old tool\r\n"
            f"{uri(S1, 'Helga@contoso.com')}\r\n"
            "\r\n"
            f"   {uri(S2, 'olaf@contoso.com', period=60, digits=8, algorithm='sha256')}  \r\n"
            "  # indented comment\r\n"
        ).encode()
    )
    data = path.read_bytes()
    assert looks_like_otpauth_list(data.decode())
    result = parse_otpauth_list(data)
    assert result.problems == []
    assert [(r.line, r.upn, r.secret, r.period, r.digits, r.algorithm) for r in result.records] == [
        (2, "helga@contoso.com", S1, 30, 6, "sha1"),
        (4, "olaf@contoso.com", S2, 60, 8, "sha256"),
    ]


def test_every_bad_line_is_reported_with_its_number() -> None:
    lines = [
        uri(S1, "helga@contoso.com"),  # 1
        uri(S2, "not a upn"),  # 2
        "otpauth://hotp/x:a@b.cd?secret=JBSWY3DPEHPK3PXP&counter=1",  # 3
        "JBSWY3DPEHPK3PXPJBSWY3DP",  # 4: a bare secret
        uri(S1, "olaf@contoso.com"),  # 5: line 1's secret
        "otpauth-migration://offline?data=abc",  # 6
        "\f" + uri(S3, "anna@contoso.com"),  # 7: a form feed does not start a new line
    ]
    result = parse_otpauth_list("\n".join(lines).encode())
    assert [(p.line, p.code) for p in result.problems] == [
        (2, Code.UPN_INVALID),
        (3, Code.URI_INVALID),
        (4, Code.URI_INVALID),
        (5, Code.SECRET_DUPLICATE),
        (6, Code.URI_INVALID),
    ]
    assert (
        result.problems[0]
        .render("uris.txt")
        .startswith("uris.txt:2: the URI's account is not a UPN; label it")
    )
    assert "HOTP" in result.problems[1].message
    assert [r.line for r in result.records] == [1, 7]
    assert_well_formed(result.problems)
    assert_no_secret([p.render("u") for p in result.problems], [S1, S2, S3])
    assert_no_secret(
        [p.render("u") for p in result.problems], [bytes.fromhex("48656c6c6f21deadbeef")]
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "otpauth://totp/",
                "a@b.cd",
                "?secret=",
                "JBSWY3DP",
                "&",
                "%",
                "\n",
                "#",
                ":",
                "=",
                "é",
            ]
        ),
        max_size=30,
    )
)
def test_any_text_gives_records_or_problems(pieces: list[str]) -> None:
    result = parse_otpauth_list("".join(pieces).encode())
    assert_well_formed(result.problems)


def test_unusual_digits_in_parameters_are_a_problem_not_a_crash() -> None:
    # '²' is a digit to str.isdigit() but not to int()
    line = f"otpauth://totp/Microsoft:helga@contoso.com?secret={'A' * 32}&period=3²"
    result = parse_otpauth_list(line.encode())
    assert [(p.line, p.code) for p in result.problems] == [(1, Code.URI_INVALID)]


def test_a_list_of_comments_only() -> None:
    result = parse_otpauth_list(b"# nothing yet\n\n")
    assert [(p.line, p.code) for p in result.problems] == [(0, Code.EMPTY_FILE)]


def test_digits_of_other_scripts_are_not_a_period() -> None:
    """int() reads Arabic-Indic '٣٠' as 30; a URI parameter is ASCII digits only."""
    base = "otpauth://totp/Microsoft:helga@contoso.com?secret=AEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIB"
    for parameter in ("period=\u0663\u0660", "digits=\u0666", "period=\uff13\uff10"):
        result = parse_otpauth_list(f"{base}&{parameter}\n".encode())
        assert [(p.line, p.code) for p in result.problems] == [(1, Code.URI_INVALID)]
        assert "must be a whole number" in result.problems[0].message
        assert result.records == []
