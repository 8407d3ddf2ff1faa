"""A printable HTML sheet of otpauth QR codes, one block per token, for burning. Pure.

Every text from the vault (serial, UPN, manufacturer, model) is HTML-escaped; the QR codes are
inline SVG made by segno, so the page loads nothing, and its Content-Security-Policy forbids it
to load anything: a sheet full of secrets must not talk to the network when opened.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from oathdesk.formats.records import SeedRecord
from oathdesk.seed import build_otpauth_uri

_STYLE = (
    "body{font-family:sans-serif;margin:1cm}"
    ".warning{border:2px solid #b00;padding:.5em;font-weight:bold}"
    ".token{display:inline-block;width:6.5cm;margin:.3cm;padding:.3cm;border:1px dashed #999;"
    "text-align:center;vertical-align:top;break-inside:avoid;page-break-inside:avoid}"
    ".serial{font-size:1.2em;font-weight:bold;font-family:monospace}"
    ".meta{font-size:.8em;color:#444}"
    "@media print{.warning{border-color:#000}}"
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def qr_block(record: SeedRecord, *, issuer: str) -> str:
    import segno

    uri = build_otpauth_uri(
        record.secret,
        account=record.upn or record.serial or "token",
        issuer=issuer,
        algorithm=record.algorithm,
        digits=record.digits,
        period=record.period,
    )
    svg = segno.make(uri, error="m").svg_inline(scale=3, border=2)
    device = " ".join(part for part in (record.manufacturer, record.model) if part)
    meta = f"{record.algorithm.upper()}, {record.digits} digits, {record.period} s"
    return (
        '<section class="token">'
        f'<div class="serial">{_escape(record.serial or "no serial")}</div>'
        f"<div>{_escape(record.upn or 'unassigned')}</div>"
        f"{svg}"
        f'<div class="meta">{_escape(device)}{" · " if device else ""}{_escape(meta)}</div>'
        "</section>"
    )


def qr_sheet(
    records: Iterable[SeedRecord], *, issuer: str = "Microsoft", title: str = "oathdesk QR sheet"
) -> str:
    """The whole page: a warning, then one block per token."""
    blocks = "".join(qr_block(record, issuer=issuer) for record in records)
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_escape(title)}</h1>"
        '<p class="warning">Contains secrets: every QR code is a token seed. Burn the tokens, '
        "then shred this sheet and delete the file.</p>"
        f"{blocks}</body></html>"
    )
