"""The Jinja2 environment for the console's pages (templates shipped in the package).

Autoescaping is on for everything; templates extend ``base.html`` and carry no inline script or
style, so the Content-Security-Policy can forbid both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

import jinja2
from markupsafe import Markup

from oathdesk.people import phone_text
from oathdesk.vault.operators import password_rules
from oathdesk.web.audit_rows import audit_rows_html


def time_element(moment: datetime | str, *, seconds: bool) -> Markup:
    """``<time datetime="...Z" title="... UTC">... UTC</time>``: the moment in UTC, which
    static/localtime.js rewrites into the operator's own zone (from the browser) with the zone's
    name, keeping UTC in the title for a hover. Without JavaScript the page still says UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    shown = utc.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
    precision = "seconds" if seconds else "minutes"
    stamp = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Safe without escaping: digits and fixed text only. Markup.format, which escapes each
    # value, cost 40 µs a call: 4 ms of an audit page's 100 rows (issue 15).
    return Markup(  # noqa: S704
        f'<time datetime="{stamp}" title="{shown}" data-local="{precision}">{shown}</time>'
    )


def when(moment: datetime | None, empty: str = "") -> Markup | str:
    """A stored time as operators read it: to the minute, in their zone (UTC without JS)."""
    if moment is None:
        return empty
    return time_element(moment, seconds=False)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("oathdesk.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["when_seconds"] = partial(time_element, seconds=True)
    # The password rules forms show before submitting: the policy object that checks them.
    env.globals["password_rules"] = password_rules()
    env.filters["phone"] = phone_text  # E.164 as stored, grouped as people read it
    env.globals["audit_rows_html"] = audit_rows_html  # an audit table's rows in one pass
    return env


def render_page(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)


def qr_data_uri(text: str) -> str:
    """A QR code as a PNG data URI for an <img> (the CSP allows data: images, nothing inline);
    PNG rather than SVG so that tests and screen readers of QR codes can decode it."""
    import segno

    uri: str = segno.make(text, error="m").png_data_uri(scale=5, border=2)
    return uri


def enrolment_view(otpauth_uri: str) -> dict[str, str]:
    """What an enrolment page shows for an operator's new TOTP secret: the QR code, and for
    an authenticator that cannot scan ("can't scan?") the secret as text in groups of four
    and the otpauth URI. Only ever in the body of the one answer that shows it (no-store)."""
    from oathdesk.seed import encode_base32, parse_seed

    text = encode_base32(parse_seed(otpauth_uri).secret)
    return {
        "qr": qr_data_uri(otpauth_uri),
        "secret_text": " ".join(text[i : i + 4] for i in range(0, len(text), 4)),
        "otpauth_uri": otpauth_uri,
    }
