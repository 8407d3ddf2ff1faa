"""The drift chart's bars and the report's rows, drawn in Python in one pass (issue 15): the same
HTML the template's loops drew, every text escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jinja2

from oathdesk.otp import Algorithm
from oathdesk.services.drift import DriftRow
from oathdesk.vault.lifecycle import TokenKind, TokenState
from oathdesk.vault.models import Token
from oathdesk.web.pages.drift import Bar, BarChart, Sparkline, drift_rows_html, sparkline

# The loop drift.html ran before the bars were drawn in one pass: the reference output.
LOOP = """\
  {% for bar in chart.bars %}
  <g class="hd-bar" data-serial="{{ bar.serial }}">
    <title>{{ bar.serial }} {{ bar.upn }}: {{ "%+d" | format(bar.drift) }} s (window ±{{ bar.window }} s)</title>
    <text x="4" y="{{ bar.y + 11 }}" font-size="11" fill="#222">{{ bar.serial[:18] }}</text>
    <rect x="{{ bar.window_left }}" y="{{ bar.y + 1 }}" width="{{ bar.window_width }}" height="{{ 12 }}" fill="#e6f4ea"/>
    <rect x="{{ bar.x }}" y="{{ bar.y + 3 }}" width="{{ bar.width }}" height="8" fill="{{ {'ok': '#2e7d32', 'near': '#ed6c02', 'outside': '#c62828'}[bar.status] }}"/>
  </g>
  {% endfor %}
"""  # noqa: E501


def _chart(*bars: Bar) -> BarChart:
    return BarChart(640, 100, 375.0, 90, list(bars), 130.0, 620.0)


def test_the_bars_are_what_the_template_loop_drew() -> None:
    chart = _chart(
        Bar("TOK-0001", "ada@contoso.com", 5, 30, "ok", 20, 375.0, 10.2, 293.3, 163.3),
        Bar("TOK-0002-A-LONG-SERIAL-NUMBER", "", -40, 60, "near", 36, 266.1, 108.9, 211.7, 326.7),
        Bar("TOK-0003", "bo@contoso.com", 95, 60, "outside", 52, 375.0, 258.6, 211.7, 326.7),
    )
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    assert chart.bars_svg + "\n" == env.from_string(LOOP).render(chart=chart)
    assert chart.bars_svg.count('fill="#c62828"') == 1


def test_the_bars_escape_their_texts() -> None:
    svg = _chart(
        Bar('A<b>&"c', "x'<y>@contoso.com", 5, 30, "ok", 20, 375.0, 10.2, 293.3, 163.3)
    ).bars_svg
    assert "<b>" not in svg
    assert "<y>" not in svg
    assert 'data-serial="A&lt;b&gt;&amp;&#34;c"' in svg
    assert "x&#39;&lt;y&gt;@contoso.com" in svg


# The loop drift.html ran before the report's rows were drawn in one pass.
ROW_LOOP = """\
  {% for row in overview.rows %}
    <tr class="hd-drift-{{ row.status }}" data-serial="{{ row.token.serial }}">
      <td><a href="/tokens/{{ row.token.serial | urlencode }}">{{ row.token.serial }}</a></td>
      <td>{% if row.token.upn %}<a href="/users/{{ row.token.upn | urlencode }}">{{ row.token.upn }}</a>{% endif %}</td>
      <td>{{ "%+d" | format(row.drift_seconds) }} s</td>
      <td>±{{ row.window_seconds }} s</td>
      <td><span class="badge {{ 'bad' if row.status == 'outside' else '' }}">{{ row.status }}</span></td>
      <td>{% if row.rate_seconds_per_day is not none %}{{ "%+.2f" | format(row.rate_seconds_per_day) }} s/day{% endif %}</td>
      <td>{% if row.predicted_outside %}{{ row.predicted_outside.strftime("%Y-%m-%d") }}{% endif %}</td>
      <td>
      {% set line = lines.get(row.token.serial) %}
      {% if line %}
        <svg class="hd-spark" width="{{ line.width }}" height="{{ line.height }}" viewBox="0 0 {{ line.width }} {{ line.height }}" role="img" aria-label="drift of {{ row.token.serial }} from {{ line.first.strftime('%Y-%m-%d') }} to {{ line.last.strftime('%Y-%m-%d') }}">
          <rect x="0" y="{{ line.window_top }}" width="{{ line.width }}" height="{{ line.window_bottom - line.window_top }}" fill="#e6f4ea"/>
          <line x1="0" y1="{{ line.zero }}" x2="{{ line.width }}" y2="{{ line.zero }}" stroke="#bbb" stroke-dasharray="2,2"/>
          <polyline points="{{ line.points }}" fill="none" stroke="#1a5fb4" stroke-width="1.5"/>
          {% for x, y in line.dots %}<circle cx="{{ x }}" cy="{{ y }}" r="2.5" fill="#1a5fb4"/>{% endfor %}
        </svg>
      {% endif %}
      </td>
    </tr>
  {% endfor %}
"""  # noqa: E501

MOMENT = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)


def _token(serial: str, upn: str | None) -> Token:
    return Token(
        id=serial,
        serial=serial,
        manufacturer="Token2",
        model="C202",
        kind=TokenKind.CLASSIC,
        algorithm=Algorithm.SHA1,
        digits=6,
        period=30,
        state=TokenState.ASSIGNED,
        upn=upn,
        carrier="",
        tracking="",
        drift_seconds=None,
        drift_measured_at=None,
        created_at=MOMENT,
        updated_at=MOMENT,
        assigned_at=None,
        burned_at=None,
        registered_at=None,
        shipped_at=None,
        delivered_at=None,
        purged_at=None,
        closed_at=None,
        has_secret=True,
        version=1,
    )


def _report() -> tuple[list[DriftRow], dict[str, Sparkline]]:
    rows = [
        DriftRow(_token("TOK 1/a", "ada@contoso.com"), 75, 60, "outside", None, None),
        DriftRow(_token('A<b>&"c', "x'<y>@contoso.com"), -31, 60, "near", -1.25, MOMENT),
        DriftRow(_token("TOK-3", None), 40, 60, "near", 0.5, MOMENT + timedelta(days=40)),
    ]
    history = [(MOMENT - timedelta(days=9), 10), (MOMENT - timedelta(days=2), 25), (MOMENT, 40)]
    lines = {
        "TOK 1/a": sparkline([(MOMENT, 75)], 60),
        "TOK-3": sparkline(history, 60),
    }
    return rows, lines


def test_the_report_rows_are_what_the_template_loop_drew() -> None:
    rows, lines = _report()
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    drawn = env.from_string(ROW_LOOP).render(overview={"rows": rows}, lines=lines)
    assert drift_rows_html(rows, lines) + "\n" == drawn
    assert drawn.count("<circle") == 4


def test_the_report_rows_escape_their_texts() -> None:
    rows, lines = _report()
    html = drift_rows_html(rows, lines)
    assert "<b>" not in html
    assert "<y>" not in html
    assert 'data-serial="A&lt;b&gt;&amp;&#34;c"' in html
    assert 'href="/tokens/A%3Cb%3E%26%22c"' in html
    assert 'href="/users/x%27%3Cy%3E%40contoso.com"' in html
    assert 'href="/tokens/TOK%201/a"' in html
