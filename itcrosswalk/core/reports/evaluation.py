"""The platform evaluation rendered for a committee: Markdown, and one self-contained HTML page
with the side-by-side matrix, the charts, and every score's evidence.

Everything that came from a platform or a criteria file is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment

from ..evaluate import SourceEvaluation

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)


def _cell(value: Any) -> str:
    if value is None:
        return "absent"
    return f"{value:g}%" if isinstance(value, float | int) else str(value)


def matrix(results: list[SourceEvaluation]) -> tuple[list[str], list[dict[str, Any]]]:
    """Criteria rows x source columns: the scores side by side."""
    sources = [r.source for r in results]
    criteria: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, info in result.scores.items():
            row = criteria.setdefault(
                name,
                {"key": name, "criterion": info["title"], "weight": info["weight"], "scores": {}},
            )
            row["scores"][result.source] = info["score"]
    rows = list(criteria.values())
    rows.append(
        {
            "key": "total",
            "criterion": "Weighted total",
            "weight": None,
            "scores": {r.source: None if r.total is None else round(r.total, 1) for r in results},
        }
    )
    return sources, rows


def render_markdown(results: list[SourceEvaluation]) -> str:
    sources, rows = matrix(results)
    lines = ["# Platform evaluation", ""]
    lines.append("| criterion | weight | " + " | ".join(_md(s) for s in sources) + " |")
    lines.append("|---|---:|" + "---:|" * len(sources))
    for row in rows:
        weight = "" if row["weight"] is None else f"{row['weight']:g}"
        cells = " | ".join(
            "-" if row["scores"].get(s) is None else f"{row['scores'][s]:g}" for s in sources
        )
        lines.append(f"| {_md(row['criterion'])} | {weight} | {cells} |")
    for result in results:
        lines += ["", f"## {_md(result.source)} ({_md(result.platform)}): rank {result.rank}", ""]
        lines.append(f"Status: {_md(result.status)}")
        for info in result.scores.values():
            lines += ["", f"### {_md(info['title'])}: {info['score']:g}", ""]
            for item in info["evidence"]:
                lines.append(f"- {_md(item['measure'])}: {item['score']:g} ({_md(item['why'])})")
        quality = result.quality
        lines += ["", "### Data quality", ""]
        for key in ("required_missing", "unknown_values"):
            found = quality.get(key) or {}
            shown = ", ".join(f"{k} {v}" for k, v in found.items()) or "none"
            lines.append(f"- {key.replace('_', ' ')}: {_md(shown)}")
        for key in ("dangling_references", "duplicate_serials", "duplicate_emails", "quarantined"):
            lines.append(f"- {key.replace('_', ' ')}: {quality.get(key, 0)}")
    return "\n".join(lines) + "\n"


def _md(text: Any) -> str:
    """Text from a platform, safe inside a Markdown table or list."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


_HTML = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Platform evaluation</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1b1b}
h1{margin-bottom:.2rem} .muted{color:#555}
table{border-collapse:collapse;margin:1rem 0} th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
td.s{font-variant-numeric:tabular-nums}
td.hi{background:#d9f0d9} td.mid{background:#fff3cd} td.lo{background:#f8d7da}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .charts>div{flex:1 1 420px}
details{margin:.3rem 0} section{page-break-inside:avoid}
@media print{details{display:block} details>summary{list-style:none}}
</style></head><body>
<h1>Platform evaluation</h1>
<p class="muted">{{ sources|length }} sources, ranked on {{ criteria_count }} weighted criteria. Every score is the mean of measured components; the evidence is below each source.</p>
<table id="matrix"><thead><tr><th>criterion</th><th>weight</th>
{% for s in sources %}<th>{{ s }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr><td>{{ row.criterion }}</td><td>{{ '' if row.weight is none else '%g'|format(row.weight) }}</td>
{% for s in sources %}{% set v = row.scores.get(s) %}<td class="s {{ band(v) }}" data-criterion="{{ row.key }}" data-source="{{ s }}">{{ '-' if v is none else '%g'|format(v) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<div class="charts">{% for chart in charts %}<div>{{ chart|safe }}</div>{% endfor %}</div>
{% for r in results %}
<section>
<h2>{{ r.rank }}. {{ r.source }} <span class="muted">({{ r.platform }})</span></h2>
<p>Status: <strong>{{ r.status }}</strong>. Total {{ '-' if r.total is none else '%.1f'|format(r.total) }}.</p>
{% for name, info in r.scores.items() %}
<details><summary>{{ info.title }}: {{ '%g'|format(info.score) }}</summary><ul>
{% for item in info.evidence %}<li>{{ item.measure }}: {{ '%g'|format(item.score) }} ({{ item.why }})</li>{% endfor %}
</ul></details>
{% endfor %}
<details><summary>Model coverage</summary>
<table><thead><tr><th>entity</th><th>records</th><th>fields (share filled; absent = not provided)</th></tr></thead><tbody>
{% for entity, cov in r.coverage.items() %}<tr><td>{{ entity }}</td><td>{{ cov.records if cov.provided else 'not provided' }}</td>
<td style="text-align:left">{% for f, v in cov.fields.items() %}{{ f }} {{ cell(v) }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}
</tbody></table></details>
<details><summary>Data quality</summary><ul>
{% for k, v in r.quality.items() %}<li>{{ k.replace('_', ' ') }}: {% if v is mapping %}{% for kk, vv in v.items() %}{{ kk }} {{ vv }}{% if not loop.last %}, {% endif %}{% else %}none{% endfor %}{% else %}{{ v }}{% endif %}</li>{% endfor %}
</ul></details>
<details><summary>API behaviour and integration</summary><ul>
{% for k, v in r.api.items() %}<li>{{ k.replace('_', ' ') }}: {{ v }}</li>{% endfor %}
<li>auth types: {{ r.integration.get('auth_types', [])|join(', ') }}</li>
<li>write operations: {{ r.integration.get('writes', [])|join(', ') or 'none' }}</li>
<li>permissions: {{ r.integration.get('permissions', [])|join('; ') }}</li>
</ul></details>
</section>
{% endfor %}
</body></html>
"""
)


def _band(value: float | None) -> str:
    if value is None:
        return ""
    return "hi" if value >= 75 else "mid" if value >= 40 else "lo"


def render_html(results: list[SourceEvaluation]) -> str:
    from .charts import metric_bars

    sources, rows = matrix(results)
    charts = []
    if results:
        totals = [r.total or 0.0 for r in results]
        charts.append(metric_bars(sources, totals, title="Weighted total (0-100)", salt="total"))
        for name in results[0].scores:
            values = [r.scores.get(name, {}).get("score", 0.0) for r in results]
            title = results[0].scores[name]["title"]
            charts.append(metric_bars(sources, values, title=title, salt=f"c-{name}"))
    return _HTML.render(
        sources=sources,
        rows=rows,
        results=results,
        charts=charts,
        criteria_count=max(0, len(rows) - 1),
        band=_band,
        cell=_cell,
    )
