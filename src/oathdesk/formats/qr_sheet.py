"""A printable HTML sheet of otpauth QR codes, one block per token, for burning. Pure."""

from __future__ import annotations

import html
from collections.abc import Iterable

from oathdesk.formats.records import SeedRecord
from oathdesk.seed import build_otpauth_uri


def qr_sheet(records: Iterable[SeedRecord], *, issuer: str = "Microsoft") -> str:
    import segno

    blocks = []
    for record in records:
        uri = build_otpauth_uri(
            record.secret,
            account=record.upn or record.serial or "token",
            issuer=issuer,
            algorithm=record.algorithm,
            digits=record.digits,
            period=record.period,
        )
        svg = segno.make(uri, error="m").svg_inline(scale=3, border=2)
        blocks.append(
            f"<section><h2>{html.escape(record.serial or '')}</h2>"
            f"<p>{html.escape(record.upn or 'unassigned')}</p>{svg}</section>"
        )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>oathdesk QR sheet</title>"
        "<style>body{font-family:sans-serif}section{display:inline-block;margin:1em;"
        "page-break-inside:avoid;text-align:center}</style></head><body>"
        "<p><strong>Contains secrets.</strong> Burn the tokens, then shred this sheet.</p>"
        + "".join(blocks)
        + "</body></html>"
    )
