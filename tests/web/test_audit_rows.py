"""An audit table's rows built in one pass (issue 15): the same HTML the template's loop drew,
every text escaped and every link quoted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2

from oathdesk.web.audit_rows import audit_rows_html
from oathdesk.web.pages.helpdesk_common import short_time

# The loop _audit_rows.html ran before the rows were built in one pass: the reference output.
LOOP = """\
  {% for record in records %}
    <tr class="hd-audit-row" data-action="{{ record.action }}">
      <td>{{ record.seq }}</td>
      <td class="hd-nowrap">{{ short_time(record.at) }}</td>
      <td>{{ record.actor }}</td>
      <td>{{ record.action }}</td>
      <td>{% if record.upn %}<a href="/users/{{ record.upn | urlencode }}">{{ record.upn }}</a>{% endif %}</td>
      <td>{% if record.serial %}<a href="/tokens/{{ record.serial | urlencode }}">{{ record.serial }}</a>{% endif %}</td>
      <td class="hd-details">{% for key, value in record.details | dictsort %}{% if value not in (None, "", [], {}) %}<span><b>{{ key }}</b> {{ value }}</span> {% endif %}{% endfor %}</td>
    </tr>
  {% else %}
    <tr><td colspan="7">No records.</td></tr>
  {% endfor %}
"""  # noqa: E501

AT = datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)


def _reference(records: list[dict[str, Any]]) -> str:
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(LOOP).render(records=records, short_time=short_time)


def test_the_rows_are_what_the_template_loop_drew() -> None:
    records = [
        {
            "seq": 7,
            "at": AT,
            "actor": "helpdesk:<hugo>",
            "action": "token.revealed",
            "upn": "o'brien & co@contoso.com",
            "serial": "TOK/1 2?#",
            "details": {
                "ticket": "INC<1>",
                "Channel": "phone",
                "empty": "",
                "none": None,
                "list": [],
                "map": {},
                "zero": 0,
                "serials": ["A", "B"],
                "flags": {"x": '"y"'},
            },
        },
        {
            "seq": 8,
            "at": AT,
            "actor": "cli",
            "action": "vault.created",
            "upn": None,
            "serial": "",
            "details": {},
        },
    ]
    assert audit_rows_html(records, short_time) + "\n" == _reference(records)


def test_no_records_is_one_row_saying_so() -> None:
    assert audit_rows_html([], short_time) + "\n" == _reference([])
    assert "No records." in audit_rows_html([], short_time)
