"""The TOTP toolset page in real Chromium: the codes it shows are the engine's, the secret never
leaves the browser, its QR code scans, and it refuses the same mistakes as the CLI's parser."""

from __future__ import annotations

import base64
import io
import random
import secrets
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Route

from oathdesk.errors import SeedError
from oathdesk.otp import Algorithm, totp
from oathdesk.seed import build_otpauth_uri, encode_base32, parse_seed
from tests.web.browser.conftest import PageWatch, Shoot, qr_codes_in

pytestmark = pytest.mark.browser

RFC6238_SEED = b"12345678901234567890"
# RFC 6238 appendix B, SHA-1, 8 digits, 30 s: (Unix time, code).
RFC6238_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
MOMENTS = [1111111109, 1234567890, 1764000000, 2000000000, 20000000000]


@dataclass(frozen=True)
class SeedCase:
    name: str
    typed: str  # what the operator pastes
    secret: bytes
    algorithm: str = "sha1"
    digits: int = 6
    period: int = 30
    from_uri: bool = False  # the URI sets the parameters; otherwise the test sets the controls


def _random_hex_secret(size: int) -> bytes:
    """A secret whose hex form the parser reads as hex (it holds a 0, 1, 8 or 9)."""
    while True:
        secret = secrets.token_bytes(size)
        text = secret.hex()
        if any(char in text for char in "0189") and not text.isdigit():
            return secret


def _seed_cases() -> list[SeedCase]:
    random_b32 = secrets.token_bytes(20)
    grouped = " ".join(encode_base32(random_b32).lower()[i : i + 4] for i in range(0, 32, 4))
    hex_secret = _random_hex_secret(64)
    uri_secret = secrets.token_bytes(32)
    uri = build_otpauth_uri(
        uri_secret,
        account="helga@contoso.com",
        issuer="Contoso",
        algorithm="sha256",
        digits=8,
        period=60,
    )
    return [
        SeedCase("rfc6238", encode_base32(RFC6238_SEED), RFC6238_SEED, digits=8),
        SeedCase("random-base32", grouped, random_b32),
        SeedCase("hex", hex_secret.hex(), hex_secret, algorithm="sha512", digits=10),
        SeedCase("otpauth-uri", uri, uri_secret, "sha256", 8, 60, from_uri=True),
    ]


SEED_CASES = _seed_cases()


def open_toolset(page: Page, base_url: str, at: float = 1_700_000_000) -> None:
    page.clock.install(time=at)
    page.clock.set_fixed_time(at)
    page.goto(f"{base_url}/toolset")
    page.wait_for_selector("body[data-toolset-ready]")


def shown_codes(page: Page, at: float) -> dict[int, str]:
    """The table's codes by step offset, once the page has computed them for the instant ``at``."""
    page.wait_for_function(
        "at => document.getElementById('codes-table').dataset.computedAt === String(at)", arg=at
    )
    rows = page.eval_on_selector_all(
        "#codes-body tr", "rows => rows.map(r => [Number(r.dataset.offset), r.dataset.code])"
    )
    return {int(offset): str(code) for offset, code in rows}


def set_control(page: Page, selector: str, value: str) -> None:
    if page.locator(selector).evaluate("e => e.tagName") == "SELECT":
        page.select_option(selector, value)
    else:
        page.fill(selector, value)
        page.locator(selector).dispatch_event("change")


def forms_of(case: SeedCase) -> list[bytes]:
    """Every way the secret could travel: raw, base32 (both cases, grouped), hex, the typed text."""
    b32 = encode_base32(case.secret)
    forms = {
        case.secret,
        b32.encode(),
        b32.lower().encode(),
        base64.b32encode(case.secret),
        case.secret.hex().encode(),
        case.secret.hex().upper().encode(),
        base64.b64encode(case.secret),
        case.typed.encode(),
        urllib.parse.quote(case.typed).encode(),
        urllib.parse.quote_plus(case.typed).encode(),
        b32[:16].encode(),  # half of it is already too much
    }
    return sorted(forms)


@pytest.mark.parametrize("case", SEED_CASES, ids=lambda case: case.name)
def test_codes_equal_the_engine_and_the_seed_never_leaves(
    case: SeedCase, page: Page, page_watch: PageWatch, module_server: str
) -> None:
    open_toolset(page, module_server, at=MOMENTS[0])
    if not case.from_uri:
        set_control(page, "#algorithm", case.algorithm)
        set_control(page, "#digits", str(case.digits))
        set_control(page, "#period", str(case.period))
    set_control(page, "#past", "3")
    set_control(page, "#future", "4")
    page.fill("#seed", case.typed)
    page.press("#seed", "Enter")  # no form: Enter submits nothing anywhere
    assert page.input_value("#algorithm") == case.algorithm
    assert page.input_value("#digits") == str(case.digits)
    assert page.input_value("#period") == str(case.period)

    for moment in MOMENTS:
        page.clock.set_fixed_time(moment)
        codes = shown_codes(page, moment)
        assert sorted(codes) == list(range(-3, 5))
        for offset, code in codes.items():
            expected = totp(
                case.secret,
                moment + offset * case.period,
                algorithm=Algorithm(case.algorithm),
                digits=case.digits,
                period=case.period,
            )
            assert code == expected, (case.name, moment, offset)
        current = page.get_attribute("#current-code", "data-code")
        assert current == codes[0]

    # hex <-> base32 of the same secret
    assert page.inner_text("#as-hex") == case.secret.hex()
    assert page.inner_text("#as-base32").replace(" ", "") == encode_base32(case.secret)

    # Every request the page made: only the page and its static files, none with the secret.
    assert page_watch.requests, "the request recorder saw nothing"
    for request in page_watch.requests:
        assert request.method == "GET", request.url
        path = urllib.parse.urlsplit(request.url).path
        assert path == "/toolset" or path.startswith("/static/"), request.url
        for form in forms_of(case):
            assert not request.carries(form), f"{request.url} carries the secret"
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert page.evaluate("document.getElementById('seed').form") is None
    assert page_watch.errors == []


def test_rfc6238_vectors_at_eight_digits(page: Page, module_server: str, shoot: Shoot) -> None:
    open_toolset(page, module_server, at=59)
    set_control(page, "#digits", "8")
    page.fill("#seed", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq")  # lower case, grouped
    for moment, expected in RFC6238_VECTORS:
        page.clock.set_fixed_time(moment)
        assert shown_codes(page, moment)[0] == expected
    # The page as the docs show it: a known test seed at a fixed moment.
    page.clock.set_fixed_time(1_764_064_810)
    shown_codes(page, 1_764_064_810)
    page.fill("#account", "helga@contoso.com")
    page.fill("#issuer", "Contoso")
    shoot(page, "toolset")


def test_countdown_and_rollover(page: Page, module_server: str) -> None:
    open_toolset(page, module_server, at=1_700_000_020)  # 20 s left in a 30 s step
    page.fill("#seed", encode_base32(RFC6238_SEED))
    first = shown_codes(page, 1_700_000_020)
    assert page.inner_text("#countdown") == "next code in 20 s"
    page.clock.set_fixed_time(1_700_000_035)
    page.wait_for_function(
        "() => document.getElementById('countdown').textContent === 'next code in 5 s'"
    )
    page.clock.set_fixed_time(1_700_000_041)  # the next step: the table moves by one
    second = shown_codes(page, 1_700_000_041)
    assert second[0] == first[1]
    assert second[-1] == first[0]


def test_works_offline_once_loaded(
    page: Page, context: BrowserContext, page_watch: PageWatch, module_server: str
) -> None:
    open_toolset(page, module_server, at=1111111109)
    # Chromium fetches the favicon on its own after the page has loaded; counted before we go
    # offline, not during (it once landed in between).
    page.wait_for_load_state("networkidle")
    before = len(page_watch.requests)
    context.set_offline(True)
    set_control(page, "#digits", "8")
    page.fill("#seed", encode_base32(RFC6238_SEED))
    assert shown_codes(page, 1111111109)[0] == "07081804"
    page.click("#new-seed")
    page.wait_for_selector("#qr svg")
    context.set_offline(False)
    assert len(page_watch.requests) == before  # computing needed nothing from the network


def qr_text_from_screenshot(page: Page, tmp_path: Path) -> str:
    """Decode the page's QR code from a screenshot of it, as a phone would from the screen."""
    found: list[str] = []
    for attempt in range(3):  # a screenshot taken mid-repaint on a busy machine may miss it
        png = page.locator("#qr svg").screenshot(animations="disabled")
        (tmp_path / f"qr-{attempt}.png").write_bytes(png)
        with Image.open(io.BytesIO(png)) as image:
            found = qr_codes_in(image)
        if found:
            break
        page.wait_for_timeout(300)
    assert len(found) == 1, f"{len(found)} QR codes found (screenshots in {tmp_path})"
    return found[0]


@pytest.mark.parametrize(
    ("size", "algorithm", "digits", "period"),
    [(20, "sha1", 6, 30), (32, "sha256", 8, 60), (64, "sha512", 10, 30)],
)
def test_qr_code_scans_to_the_engines_uri(
    size: int,
    algorithm: str,
    digits: int,
    period: int,
    page: Page,
    module_server: str,
    tmp_path: Path,
) -> None:
    secret = secrets.token_bytes(size)
    open_toolset(page, module_server)
    set_control(page, "#algorithm", algorithm)
    set_control(page, "#digits", str(digits))
    set_control(page, "#period", str(period))
    page.fill("#seed", encode_base32(secret))
    page.fill("#account", "jürgen.o'brien@contoso.com")
    page.fill("#issuer", "Contoso & Co")
    expected = build_otpauth_uri(
        secret,
        account="jürgen.o'brien@contoso.com",
        issuer="Contoso & Co",
        algorithm=algorithm,
        digits=digits,
        period=period,
    )
    page.wait_for_function(
        "uri => document.getElementById('otpauth-uri').textContent === uri", arg=expected
    )
    assert qr_text_from_screenshot(page, tmp_path) == expected
    assert parse_seed(expected).secret == secret


def test_new_random_seeds(page: Page, module_server: str) -> None:
    open_toolset(page, module_server)
    seen = set()
    for _ in range(3):
        page.click("#new-seed")
        page.wait_for_selector("#codes-body tr")
        typed = page.input_value("#seed")
        parsed = parse_seed(typed)
        assert len(parsed.secret) == 20  # the default size
        seen.add(parsed.secret)
    assert len(seen) == 3
    page.select_option("#new-size", "64")
    page.click("#new-seed")
    page.wait_for_function("() => document.getElementById('as-hex').textContent.length === 128")
    assert len(parse_seed(page.input_value("#seed")).secret) == 64


PARSER_INPUTS = [
    # accepted
    "JBSWY3DPEHPK3PXPJBSWY3DP",
    "jbsw-y3dp-ehpk-3pxp-jbsw-y3dp",
    "JBSWY3DPEHPK3PXP====",
    "  JBSW Y3DP EHPK 3PXP  ",
    "48656c6c6f21deadbeef",
    "0x48656C6C6F21DEADBEEF",
    "hex:abcdefabcdefabcdefab",
    "base32:ABCDEFABCDEFABCDEFAB",
    "otpauth://totp/Contoso:helga%40contoso.com?secret=JBSWY3DPEHPK3PXP&issuer=Contoso",
    "otpauth://TOTP/x?secret=jbsw%20y3dp%20ehpk%203pxp&algorithm=sha-512&digits=7&period=45",
    "otpauth://totp/Only%20Account?secret=JBSWY3DPEHPK3PXP&digits=&period=",
    # refused, each with its own message
    "",
    "   ",
    "phonefactor://activate_account?code=123&url=https://example.com",
    "otpauth-migration://offline?data=CjEKCkhlbGxvIQ",
    "FIDO:/1234567890123456789",
    "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=1",
    "otpauth://steam/x?secret=JBSWY3DPEHPK3PXP",
    "otpauth://totp/x?issuer=Contoso",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=5",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=six",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0",
    "https://aka.ms/mfasetup",
    "www.contoso.com",
    "8659612000123",
    "8659 6120 0012 3",
    "JBSWY3DP",
    "JBSW0Y3DPEHPK3PXP",
    "JBSW1Y3DPEHPK3PXP",
    "JBSWY3DPEHPK3PX8",
    "JBSWY3DPEHPK3PX9",
    "JBSWY3DP=EHPK3PXP",
    "JBSWY3DPEHPK3PXPJ",
    "JBSWY3DPEHPK3PXP=",
    "JBSWY3DPEHPK3PX!",
    "48656c6c6f21deadbee",
    "hex:xyz",
    "0x12",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=%D9%A3%D9%A0",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=%EF%BC%98",
    "otpauth://totp/%E2%82%AC%20Bank:j%C3%BCrgen?secret=JBSWY3DPEHPK3PXP&issuer=%E2%82%AC+Bank",
    "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&secret=ignored&algorithm=SHA256",
    "otpauth://totp/x?secret=%ZZ",
]


def random_parser_inputs(count: int, seed: int = 6) -> list[str]:
    """Secrets as people paste them, with random slips (a fixed seed: reproducible)."""
    rng = random.Random(seed)
    b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    slips = [*"0189=-! \t", "%", ":", "%20", "0x"]
    params = ["&digits=", "&period=", "&algorithm=", "&issuer=", "&secret="]
    values = ["6", "8", "11", "0", "30", "x", "SHA256", "sha-512", "md5", "", "%41"]

    def secret_text() -> str:
        size = rng.choice([8, 10, 16, 20, 32, 64])
        text = encode_base32(secrets.token_bytes(size))
        if rng.random() < 0.3:
            text = text.lower()
        if rng.random() < 0.3:
            text = " ".join(text[i : i + 4] for i in range(0, len(text), 4))
        if rng.random() < 0.3:
            text += "=" * rng.randint(1, 6)
        return text

    def slipped(text: str) -> str:
        if text and rng.random() < 0.4:
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(slips) + text[at + rng.randint(0, 1) :]
        return text

    def one() -> str:
        kind = rng.randrange(5)
        if kind == 0:
            return slipped(secret_text())
        if kind == 1:
            text = secrets.token_bytes(rng.choice([5, 10, 20, 32])).hex()
            return slipped(rng.choice(["", "0x", "hex:", "HEX:"]) + text)
        if kind == 2:
            query = "secret=" + slipped(secret_text()).replace(" ", rng.choice(["%20", "+", ""]))
            for _ in range(rng.randint(0, 4)):
                query += rng.choice(params) + rng.choice(values)
            label = rng.choice(["", "x", "Contoso:helga%40contoso.com", "%E2%82%AC:j"])
            return f"{rng.choice(['otpauth://totp/', 'otpauth://TOTP/', 'otpauth://hotp/'])}{label}?{query}"
        if kind == 3:
            return "".join(rng.choices(b32 + "0189=- ", k=rng.randint(1, 40)))
        return rng.choice(["base32:", "phonefactor://", "FIDO:/", "https://", "www."]) + slipped(
            secret_text()
        )

    return [one() for _ in range(count)]


def python_parse(text: str) -> dict[str, object]:
    try:
        parsed = parse_seed(text)
    except SeedError as error:
        return {"error": error.message}
    return {
        "secret": parsed.secret.hex(),
        "form": parsed.form.value,
        "algorithm": parsed.algorithm,
        "digits": parsed.digits,
        "period": parsed.period,
        "issuer": parsed.issuer,
        "account": parsed.account,
    }


BROWSER_PARSE = """
async (inputs) => {
  const seed = await import('/static/toolset-seed.js');
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return inputs.map((text) => {
    try {
      const p = seed.parseSeed(text);
      return {secret: hex(p.secret), form: p.form, algorithm: p.algorithm, digits: p.digits,
              period: p.period, issuer: p.issuer, account: p.account};
    } catch (error) {
      if (!(error instanceof seed.SeedError)) throw error;
      return {error: error.message};
    }
  });
}
"""


def test_parser_agrees_with_the_cli_parser(page: Page, module_server: str) -> None:
    open_toolset(page, module_server)
    in_browser = page.evaluate(BROWSER_PARSE, PARSER_INPUTS)
    for text, browser_result in zip(PARSER_INPUTS, in_browser, strict=True):
        assert browser_result == python_parse(text), text
    refusals = [result for result in in_browser if "error" in result]
    assert len(refusals) >= 25


def test_parser_agrees_on_random_inputs(page: Page, module_server: str) -> None:
    inputs = random_parser_inputs(3000)
    open_toolset(page, module_server)
    in_browser = page.evaluate(BROWSER_PARSE, inputs)
    disagreements = [
        (text, got, python_parse(text))
        for text, got in zip(inputs, in_browser, strict=True)
        if got != python_parse(text)
    ]
    assert disagreements == []
    accepted = sum("secret" in result for result in in_browser)
    assert accepted >= 500  # the generator reaches the accepting paths, not only refusals


@pytest.mark.parametrize(
    ("typed", "message_start"),
    [
        ("phonefactor://activate_account?code=1", "this is the Microsoft Authenticator QR code"),
        ("otpauth-migration://offline?data=AA", "this is a Google Authenticator export"),
        ("FIDO:/123456", "this is a passkey (FIDO) QR code"),
        ("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP", "this is an HOTP (counter-based) secret"),
        ("8659612000123", "the input is all digits, which is usually the token's serial number"),
        ("JBSWY3DP", "the secret is only 5 bytes"),
    ],
)
def test_the_page_shows_one_line_refusals(
    typed: str, message_start: str, page: Page, module_server: str
) -> None:
    open_toolset(page, module_server)
    page.fill("#seed", encode_base32(RFC6238_SEED))
    page.wait_for_selector("#codes-body tr")
    page.fill("#seed", typed)
    error = page.locator("#seed-error")
    assert error.is_visible()
    text = error.inner_text()
    assert text.startswith(message_start)
    assert "\n" not in text
    with pytest.raises(SeedError) as raised:
        parse_seed(typed)
    assert text == raised.value.message
    # Nothing of the previous secret stays on screen.
    assert page.locator("#results").is_hidden()
    assert page.inner_text("#as-hex") == ""


QR_MATRIX = """
async ([text, level, mask]) => {
  const qr = await import('/static/toolset-qr.js');
  const code = qr.encodeQr(text, level, {mask});
  return {version: code.version, modules: code.modules};
}
"""


def _function_modules(version: int) -> list[tuple[int, int]]:
    """Modules that do not carry data: finders, separators, timing, alignment, format, version."""
    size = 17 + 4 * version
    reserved = set()
    for row in range(size):
        for column in range(size):
            corner = (
                (row < 9 and column < 9)
                or (row < 9 and column >= size - 8)
                or (row >= size - 8 and column < 9)
            )
            if corner or row == 6 or column == 6:
                reserved.add((row, column))
    if version >= 7:
        for a in range(size - 11, size - 8):
            for b in range(6):
                reserved.update({(a, b), (b, a)})
    if version >= 2:
        count = version // 7 + 2
        step = 26 if version == 32 else -(-(size - 13) // (2 * count - 2)) * 2
        centres = [6, *[size - 7 - i * step for i in range(count - 2, -1, -1)]]
        for r in centres:
            for c in centres:
                if (r, c) in {(6, 6), (6, centres[-1]), (centres[-1], 6)}:
                    continue
                reserved.update((r + dr, c + dc) for dr in range(-2, 3) for dc in range(-2, 3))
    return sorted(reserved)


def test_qr_encoder_structure_matches_segno(page: Page, module_server: str) -> None:
    """Same version as segno picks, and identical finder, timing, alignment, format and version
    modules for the same mask, for versions 1-40 and all four levels; the data itself is checked
    by zxing-cpp above (segno pads differently, so its data modules differ legitimately)."""
    open_toolset(page, module_server)
    texts = [
        "otpauth://totp/" + "x" * n + "?secret=JBSWY3DPEHPK3PXP"
        for n in (0, 10, 40, 90, 160, 250, 400, 600, 900, 1300, 1800, 2200)
    ]
    checked_versions = set()
    for text in texts:
        for level in "LMQH":
            try:
                reference = segno.make(
                    text, error=level, mode="byte", boost_error=False, micro=False
                )
            except segno.DataOverflowError:
                continue
            ours = page.evaluate(QR_MATRIX, [text, level, reference.mask])
            assert ours["version"] == reference.version, (len(text), level)
            theirs = [list(row) for row in reference.matrix]
            version = int(reference.version)
            for row, column in _function_modules(version):
                assert ours["modules"][row][column] == theirs[row][column], (
                    reference.version,
                    level,
                    row,
                    column,
                )
            checked_versions.add(version)
    assert len(checked_versions) >= 25


def test_served_without_sign_in_and_not_cached(page: Page, module_server: str) -> None:
    response = page.goto(f"{module_server}/toolset")
    assert response is not None
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers  # no session is started for it
    assert page.locator("form.signout").count() == 0


def test_without_a_secure_context_it_says_so_instead_of_computing(
    page: Page, module_server: str
) -> None:
    """Over plain HTTP to a host that is not this machine, browsers hide WebCrypto."""
    insecure_origin = "http://helpdesk-pc.example"

    def from_the_live_server(route: Route) -> None:
        url = route.request.url.replace(insecure_origin, module_server)
        route.fulfill(response=route.fetch(url=url))

    page.route(f"{insecure_origin}/**", from_the_live_server)
    page.goto(f"{insecure_origin}/toolset")
    assert page.evaluate("() => window.isSecureContext") is False
    page.wait_for_selector("#no-webcrypto", state="visible")
    assert "HTTPS" in page.inner_text("#no-webcrypto")
    assert page.locator("#seed").is_disabled()


WEB = Path(__file__).resolve().parents[3] / "src" / "oathdesk" / "web"
NETWORK_OR_STORAGE = (
    "fetch(",
    "XMLHttpRequest",
    "sendBeacon",
    "WebSocket",
    "EventSource",
    "localStorage",
    "sessionStorage",
    "indexedDB",
    "document.cookie",
    ".submit(",
    "innerHTML",
    "import(",
)


def test_the_toolset_code_has_no_way_to_send_or_keep_the_secret() -> None:
    """A static guard next to the request recorder: the toolset's scripts use no network or
    storage API at all, and its template has no form the secret could be submitted with."""
    scripts = sorted((WEB / "static").glob("toolset*.js"))
    assert len(scripts) == 4
    for script in scripts:
        lines = script.read_text(encoding="utf-8").splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith(("//", "*")))
        found = [api for api in NETWORK_OR_STORAGE if api in source]
        assert found == [], f"{script.name} uses {found}"
    template = (WEB / "templates" / "toolset.html").read_text(encoding="utf-8")
    assert "<form" not in template.replace("{# No <form>", "")
    assert '<script type="module" src="/static/toolset.js"></script>' in template
    assert "style=" not in template
