"""QR codes in and out, through real image files."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageDraw

from oathdesk.errors import InvalidInput
from oathdesk.qr import decode_image, terminal_qr, write_qr

URI = "otpauth://totp/Contoso:helga%40contoso.com?secret=AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU&issuer=Contoso"


def screenshot_with_qr(text: str, path: Path, fmt: str) -> None:
    """A 'screen share' picture: window chrome, some text, and the QR code off-centre."""
    canvas = Image.new("RGB", (1280, 800), (240, 240, 245))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, 1280, 40), fill=(30, 60, 120))
    draw.text((60, 80), "Scan the QR code with your authenticator app", fill=(0, 0, 0))
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=5, border=4)
    canvas.paste(Image.open(buffer).convert("RGB"), (700, 250))
    canvas.save(path, format=fmt)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_decode_a_screenshot(tmp_path: Path, fmt: str) -> None:
    image = tmp_path / f"shot.{fmt.lower()}"
    screenshot_with_qr(URI, image, fmt)
    assert decode_image(image) == URI


def test_no_qr_and_not_an_image(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "white").save(blank)
    with pytest.raises(InvalidInput, match="no QR code found"):
        decode_image(blank)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InvalidInput, match="not a readable image"):
        decode_image(text)
    with pytest.raises(InvalidInput, match="no such file"):
        decode_image(tmp_path / "missing.png")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_write_is_private_and_readable(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"qr{suffix}"
    write_qr(URI, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    if suffix == ".png":
        assert decode_image(target) == URI
    else:
        assert target.read_text().startswith("<?xml")


def test_write_refuses_other_formats_and_terminal_renders(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"\.svg or \.png"):
        write_qr(URI, tmp_path / "qr.gif")
    drawing = terminal_qr(URI)
    assert len(drawing.splitlines()) > 10
