"""QR codes out (segno) and in (zxing-cpp): an adapter, since it reads and writes images.

A helpdesk on a screen share takes a screenshot of the Entra QR code; ``decode_image`` finds the
code anywhere in that screenshot. Files written here hold secrets, so they are created 0600.
"""

from __future__ import annotations

import io
from pathlib import Path

from oathdesk.errors import InvalidInput
from oathdesk.platform_io import open_private

QR_SUFFIXES = (".svg", ".png")
# A screenshot of three 4K screens is 25 million pixels; 40 million leaves room and keeps the
# decoded image under 120 MiB. Pillow's own bound (89 million) only warns, and past twice that
# raises an error of its own, so the size an image declares is checked here before decoding.
MAX_PIXELS = 40_000_000


def decode_image(path: Path) -> str:
    """The text of the one QR code in a PNG/JPEG image (a screenshot is fine)."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidInput(
                    f"{path}: the image is {width} x {height} pixels, larger than any screenshot "
                    "(a crafted file?); crop it to the QR code and try again"
                )
            image.load()
            rgb = image.convert("RGB")
    except Image.DecompressionBombError:
        # Past twice Pillow's bound Image.open itself refuses, before the size can be read.
        raise InvalidInput(
            f"{path}: the image is far larger than any screenshot (a crafted file?); crop it to "
            "the QR code and try again"
        ) from None
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file; check the path of the screenshot") from None
    except (UnidentifiedImageError, OSError):
        raise InvalidInput(
            f"{path}: not a readable image; save the screenshot as PNG or JPEG"
        ) from None
    found = [
        result
        for result in zxingcpp.read_barcodes(rgb)
        if result.valid and result.text and result.format == zxingcpp.BarcodeFormat.QRCode
    ]
    texts = list(dict.fromkeys(result.text for result in found))
    if not texts:
        raise InvalidInput(
            f"{path}: no QR code found; take the screenshot again with the whole code visible"
        )
    if len(texts) > 1:
        raise InvalidInput(
            f"{path}: {len(texts)} different QR codes found; "
            "crop the screenshot to the one you mean"
        )
    return texts[0]


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable only by its owner (it holds a secret)."""
    with open_private(path) as handle:
        handle.write(data)


def write_qr(text: str, path: Path, *, scale: int = 6) -> None:
    """Write ``text`` as an SVG or PNG QR code, by the file's suffix, with mode 0600."""
    import segno

    suffix = path.suffix.lower()
    if suffix not in QR_SUFFIXES:
        raise InvalidInput(f"{path}: write the QR code to a .svg or .png file")
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind=suffix[1:], scale=scale, border=4)
    try:
        _write_private(path, buffer.getvalue())
    except OSError as exc:
        raise InvalidInput(
            f"{path}: cannot write the file ({exc.strerror}); choose another path"
        ) from None


def terminal_qr(text: str) -> str:
    """The QR code drawn with block characters, for a terminal."""
    import segno

    buffer = io.StringIO()
    segno.make(text, error="m").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


def svg_qr(text: str, *, scale: int = 4) -> str:
    """An inline SVG QR code (for HTML sheets and pages)."""
    import segno

    return str(segno.make(text, error="m").svg_inline(scale=scale, border=2))
