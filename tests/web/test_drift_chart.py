"""The drift chart's bars, drawn in Python in one pass (issue 15): the same SVG the template's
per-bar loop drew, every text escaped."""

from __future__ import annotations

import jinja2

from oathdesk.web.pages.drift import Bar, BarChart

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
