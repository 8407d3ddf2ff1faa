"""The Jinja2 environment for the console's pages (templates shipped in the package).

Autoescaping is on for everything; templates extend ``base.html`` and carry no inline script or
style, so the Content-Security-Policy can forbid both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2

from oathdesk.people import phone_text


def when(moment: datetime | None, empty: str = "") -> str:
    """A stored time as operators read it: UTC, to the minute."""
    if moment is None:
        return empty
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("oathdesk.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["phone"] = phone_text  # E.164 as stored, grouped as people read it
    return env


def render_page(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)


def qr_data_uri(text: str) -> str:
    """A QR code as a PNG data URI for an <img> (the CSP allows data: images, nothing inline);
    PNG rather than SVG so that tests and screen readers of QR codes can decode it."""
    import segno

    uri: str = segno.make(text, error="m").png_data_uri(scale=5, border=2)
    return uri
