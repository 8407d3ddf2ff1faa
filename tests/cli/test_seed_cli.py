"""`oathdesk seed ...` through the real console script."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from oathdesk.seed import encode_base32, parse_seed
from tests.conftest import RunCli, assert_one_line_error
from tests.core.test_qr import screenshot_with_qr

SECRET_BYTES = bytes(range(100, 120))
SECRET = encode_base32(SECRET_BYTES)


def test_seed_new(cli: RunCli) -> None:
    first = json.loads(cli("seed", "new", "--json").stdout)
    second = json.loads(cli("seed", "new", "--json", "--algorithm", "sha256").stdout)
    assert first["bytes"] == 20
    assert second["bytes"] == 32
    assert second["algorithm"] == "sha256"
    assert first["base32"] != second["base32"]
    assert parse_seed(first["otpauth_uri"]).secret.hex() == first["hex"]


def test_seed_show(cli: RunCli) -> None:
    spaced = " ".join(SECRET[i : i + 4] for i in range(0, len(SECRET), 4)).lower()
    result = cli("seed", "show", "-", "--account", "helga@contoso.com", "--json", input=spaced)
    payload = json.loads(result.stdout)
    assert payload["base32"] == SECRET
    assert payload["hex"] == SECRET_BYTES.hex()
    assert (payload["bytes"], payload["bits"]) == (20, 160)
    assert payload["form"] == "base32"
    assert payload["otpauth_uri"].startswith("otpauth://totp/helga@contoso.com?secret=" + SECRET)
    text = cli("seed", "show", env={"OATHDESK_SECRET": SECRET_BYTES.hex()})
    assert "form         hex" in text.stdout
    assert SECRET in text.stdout


def test_seed_qr_file_and_from_image(cli: RunCli, tmp_path: Path) -> None:
    target = tmp_path / "token.png"
    result = cli(
        "seed", "qr", "-", "--account", "helga@contoso.com", "-o", str(target), input=SECRET
    )
    assert result.returncode == 0, result.stderr
    assert "0600" in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    decoded = json.loads(cli("seed", "from-image", str(target), "--json").stdout)
    assert decoded["base32"] == SECRET
    assert decoded["account"] == "helga@contoso.com"
    assert decoded["form"] == "otpauth-uri"


def test_seed_qr_terminal(cli: RunCli) -> None:
    result = cli("seed", "qr", "-", input=SECRET)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) > 10


def test_from_image_rejects_the_authenticator_push_qr(cli: RunCli, tmp_path: Path) -> None:
    shot = tmp_path / "mfasetup.png"
    screenshot_with_qr("phonefactor://activate_account?code=123456789&url=https://x", shot, "PNG")
    result = cli("seed", "from-image", str(shot))
    assert_one_line_error(result)
    assert "I want to use a different authenticator app" in result.stderr


def test_from_image_errors(cli: RunCli, tmp_path: Path) -> None:
    assert_one_line_error(cli("seed", "from-image", str(tmp_path / "nope.png")))
    bad = cli("seed", "show", "-", input="1234 5678 9012")
    assert_one_line_error(bad)
    assert "serial number" in bad.stderr
