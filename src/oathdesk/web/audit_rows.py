"""An audit table's rows as HTML, in one pass (issue 15).

Drawn by the template's loop, each of an audit page's 50 rows cost a dozen escapes, attribute
look-ups and URL quotes (about a third of the page's time). The rows are built here instead,
exactly as the loop drew them: every text escaped, every link quoted the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _details(details: Mapping[str, Any] | None) -> str:
    # Sorted by key without regard to case, empty values left out, as the dictsort loop did.
    return "".join(
        f"<span><b>{escape(key)}</b> {escape(value)}</span> "
        for key, value in sorted((details or {}).items(), key=lambda item: item[0].lower())
        if value not in _EMPTY
    )


def audit_rows_html(
    records: Iterable[Mapping[str, Any]], short_time: Callable[[Any], Markup]
) -> Markup:
    """The ``<tr>`` of each record (``No records.`` when there are none), one a line."""
    rows = []
    for record in records:
        upn, serial = record["upn"], record["serial"]
        user = f'<a href="/users/{quote(upn, safe="/")}">{escape(upn)}</a>' if upn else ""
        token = (
            f'<a href="/tokens/{quote(serial, safe="/")}">{escape(serial)}</a>' if serial else ""
        )
        action = escape(record["action"])
        rows.append(
            f'    <tr class="hd-audit-row" data-action="{action}">\n'
            f"      <td>{escape(record['seq'])}</td>\n"
            f'      <td class="hd-nowrap">{escape(short_time(record["at"]))}</td>\n'
            f"      <td>{escape(record['actor'])}</td>\n"
            f"      <td>{action}</td>\n"
            f"      <td>{user}</td>\n"
            f"      <td>{token}</td>\n"
            f'      <td class="hd-details">{_details(record["details"])}</td>\n'
            "    </tr>"
        )
    if not rows:
        rows.append('    <tr><td colspan="7">No records.</td></tr>')
    # Safe: every value above went through escape() or quote(); the rest is fixed text.
    return Markup("\n".join(rows))  # noqa: S704
