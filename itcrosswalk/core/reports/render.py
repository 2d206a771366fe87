"""Rendering a report's data: self-contained HTML, Markdown, CSV, XLSX and JSON.

Everything that came from a platform is untrusted: HTML escapes it (Jinja2 autoescape) and
links only ``http(s)`` URLs; Markdown escapes its markup; CSV and XLSX neutralize cells a
spreadsheet would run as a formula.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..output import jsonable, neutralize, write_csv

FORMATS = ("html", "md", "csv", "json", "xlsx")
EXTENSIONS = {"html": "html", "md": "md", "csv": "csv", "json": "json", "xlsx": "xlsx"}
TEMPLATES = Path(__file__).parent / "templates"


def safe_url(value: Any) -> str | None:
    """``value`` when it is an http(s) URL; None for anything else (``javascript:``, junk)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if re.match(r"^https?://[^\s<>\"']+$", text, re.I) else None


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["percent"] = _percent
    env.filters["refs"] = _refs
    env.filters["num"] = _value
    from . import formats

    env.filters["when"] = formats.moment
    env.filters["day"] = formats.day
    env.filters["money"] = formats.money
    env.filters["count"] = lambda n: formats.value(n, "count")
    env.filters["pct"] = lambda n: formats.value(n, "%")
    env.filters["unit_value"] = formats.value
    env.filters["delta"] = lambda n, unit, currency="USD": formats.value(
        abs(n) if unit != "%" else abs(n), unit, currency
    ).replace("%", " points")
    return env


def _refs(references: Mapping[str, Sequence[str]] | None) -> str:
    if not references:
        return ""
    names = {"cis": "CIS v8", "nist": "NIST 800-53", "city": "City"}
    return "; ".join(f"{names.get(k, k)} {', '.join(v)}" for k, v in references.items() if v)


# -- compliance ------------------------------------------------------------------------------


def _compliance_charts(data: Mapping[str, Any]) -> dict[str, str]:
    from . import charts

    controls = [c for c in data["controls"] if sum(c["counts"].values())]
    departments = [d for d in data["by_department"] if d["alarm"] or d["unverified"]][:15]
    out = {
        "controls": charts.stacked_bars(
            [c["id"] for c in controls],
            {
                "alarm": [c["counts"]["alarm"] for c in controls],
                "unverified": [c["counts"]["unverified"] for c in controls],
                "ok": [c["counts"]["ok"] for c in controls],
            },
            title="Findings by control",
            salt="controls",
        ),
        "departments": charts.stacked_bars(
            [d["department"] for d in departments],
            {
                "alarm": [d["alarm"] for d in departments],
                "unverified": [d["unverified"] for d in departments],
            },
            title="Alarms and unverified findings by department",
            salt="departments",
        ),
    }
    if len(data["trend"]) >= 1:
        out["trend"] = charts.trend(data["trend"], salt="trend")
    return out


EXAMPLES = 10
"""Findings shown per group in the HTML; every one of them is in the CSV, XLSX and JSON."""


def finding_groups(data: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per control, its findings that need attention grouped by status and reason, the largest
    group first, each with a few examples: a thousand findings read as a dozen lines."""
    groups: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for f in data["findings"]:
        if f["status"] not in ("alarm", "unverified"):
            continue
        key = (f["status"], str(f["reason"] or ""))
        group = groups.setdefault(f["control_id"], {}).setdefault(
            key,
            {
                "status": f["status"],
                "reason": f["reason"],
                "count": 0,
                "new": 0,
                "departments": {},
                "examples": [],
            },
        )
        group["count"] += 1
        group["new"] += 1 if f["new"] else 0
        department = f["department"] or "(none)"
        group["departments"][department] = group["departments"].get(department, 0) + 1
        if len(group["examples"]) < EXAMPLES:
            group["examples"].append(f)
    out: dict[str, list[dict[str, Any]]] = {}
    for control, found in groups.items():
        ordered = sorted(found.values(), key=lambda g: (g["status"] != "alarm", -g["count"]))
        for group in ordered:
            top = sorted(group["departments"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            group["top_departments"] = ", ".join(f"{d} {n}" for d, n in top)
        out[control] = ordered
    return out


def compliance_html(data: Mapping[str, Any], *, charts: bool = True) -> str:
    template = _environment().get_template("compliance.html.j2")
    return template.render(
        data=data,
        charts=_compliance_charts(data) if charts else {},
        groups=finding_groups(data),
        zone="UTC",
    )


def _md(value: Any) -> str:
    """Text safe inside a Markdown table cell: markup and HTML escaped, one line."""
    text = "" if value is None else str(value)
    text = html.escape(text, quote=False)
    text = re.sub(r"([\\`*_\[\]{}|#!~])", r"\\\1", text)
    return " ".join(text.split())


def _md_link(text: Any, url: Any) -> str:
    target = safe_url(url)
    return f"[{_md(text)}](<{target}>)" if target else _md(text)


def compliance_md(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    lines = [
        f"# Compliance report — {_md(data['benchmark'] or 'controls')}",
        "",
        f"Run {data['run_id']} at {data['as_of']}.",
        "",
        f"- **Pass rate:** {_percent(s['pass_rate'])} "
        f"({s['ok']} ok, {s['alarm']} alarms, {s['unverified']} unverified)",
        f"- **Controls:** {s['controls']} — {s['controls_passed']} passed, "
        f"{s['controls_failed']} failed, {s['controls_unverified']} unverified, "
        f"{s['controls_error']} could not run",
        "- **Alarms by severity:** "
        + ", ".join(f"{k} {v}" for k, v in s["alarms_by_severity"].items()),
        f"- **New since the last run:** {s['new_alarms']}; **fixed:** {s['fixed']}",
        "",
        "## Controls",
        "",
        "| Control | Severity | Verdict | Alarms | Unverified | OK | New | Fixed |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in data["controls"]:
        lines.append(
            f"| {_md(c['id'])}: {_md(c['title'])} | {_md(c['severity'])} | {c['verdict']} | "
            f"{c['counts']['alarm']} | {c['counts']['unverified']} | {c['counts']['ok']} | "
            f"{c['new']} | {c['fixed']} |"
        )
    errors = [c for c in data["controls"] if c.get("error")]
    if errors:
        lines += ["", "## Controls that could not run", ""]
        lines += [f"- {_md(c['id'])}: {_md(c['error'])}" for c in errors]
    empty = [c for c in data["controls"] if c.get("verdict_reason")]
    if empty:
        lines += ["", "## Controls that checked nothing", ""]
        lines += [f"- {_md(c['id'])}: {_md(c['verdict_reason'])}" for c in empty]
    lines += [
        "",
        "## Findings that need attention",
        "",
        "| Status | Severity | Control | Resource | Reason | Department | Source | New |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in data["findings"]:
        if f["status"] not in ("alarm", "unverified"):
            continue
        lines.append(
            f"| {f['status']} | {_md(f['severity'])} | {_md(f['control_id'])} | "
            f"{_md_link(f['label'], f['url'])} | {_md(f['reason'])} | {_md(f['department'])} | "
            f"{_md(f['source'])} | {'yes' if f['new'] else ''} |"
        )
    if data["fixed"]:
        lines += ["", "## Fixed since the last run", ""]
        lines += [
            f"- {_md(x['control_id'])}: {_md_link(x['label'], x['url'])} (was: {_md(x['was'])})"
            for x in data["fixed"]
        ]
    r = data.get("remediation") or {}
    if any(r.get(k) for k in ("opened", "existing", "cleared", "problems")):
        lines += ["", "## Tickets", ""]
        for what, key in (
            ("opened", "opened"),
            ("already open", "existing"),
            ("cleared: resolve it", "cleared"),
        ):
            lines += [
                f"- {what}: {_md(t['control_id'])} {_md(t['resource'])} — "
                f"{_md_link(t.get('ticket_id') or 'ticket', t.get('url'))}"
                for t in r.get(key, [])
            ]
        lines += [f"- problem: {_md(p)}" for p in r.get("problems", [])]
    lines += ["", "## Data sources", ""]
    for name, item in data["sources"].items():
        problems = "; ".join(item.get("problems") or []) or "read completely"
        lines.append(f"- {_md(name)} ({_md(item.get('platform'))}): {_md(problems)}")
    return "\n".join(lines) + "\n"


FINDING_COLUMNS = [
    "control_id",
    "title",
    "severity",
    "status",
    "new",
    "label",
    "resource",
    "reason",
    "department",
    "source",
    "url",
    "dimensions",
]


def compliance_csv(data: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    write_csv(data["findings"], buffer, FINDING_COLUMNS)
    return buffer.getvalue()


def _xlsx_cell(value: Any) -> Any:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = jsonable(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str):
        return neutralize(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


def _sheet(
    book: Any, title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    from openpyxl.styles import Font

    sheet = book.create_sheet(title)
    sheet.append(list(columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_xlsx_cell(row.get(c)) for c in columns])
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns, start=1):
        longest = max([len(str(row.get(column) or "")) for row in rows[:200]] + [len(column)])
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = min(longest + 2, 60)


def compliance_xlsx(data: Mapping[str, Any]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    s = data["summary"]
    summary_rows = [
        {"measure": "run", "value": data["run_id"]},
        {"measure": "run at", "value": data["run_at"]},
        {"measure": "benchmark", "value": data["benchmark"]},
        {"measure": "pass rate", "value": s["pass_rate"]},
        *[
            {"measure": k.replace("_", " "), "value": s[k]}
            for k in (
                "controls",
                "controls_passed",
                "controls_failed",
                "controls_unverified",
                "controls_error",
                "findings",
                "alarm",
                "unverified",
                "ok",
                "info",
                "skip",
                "new_alarms",
                "fixed",
            )
        ],
        *[{"measure": f"alarms {k}", "value": v} for k, v in s["alarms_by_severity"].items()],
    ]
    _sheet(book, "Summary", ["measure", "value"], summary_rows)
    control_rows = [
        {
            **{
                k: c.get(k)
                for k in ("id", "title", "severity", "domain", "verdict", "new", "fixed")
            },
            **{f"{k}": v for k, v in c["counts"].items()},
            "pass_rate": c["pass_rate"],
            "references": _refs(c.get("references")),
            "remediation": c.get("remediation"),
            "error": c.get("error") or c.get("verdict_reason"),
        }
        for c in data["controls"]
    ]
    _sheet(
        book,
        "Controls",
        [
            "id",
            "title",
            "severity",
            "domain",
            "verdict",
            "alarm",
            "unverified",
            "ok",
            "info",
            "skip",
            "pass_rate",
            "new",
            "fixed",
            "references",
            "remediation",
            "error",
        ],
        control_rows,
    )
    _sheet(book, "Findings", FINDING_COLUMNS, data["findings"])
    _sheet(book, "New", FINDING_COLUMNS, [f for f in data["findings"] if f["new"]])
    _sheet(
        book,
        "Fixed",
        [
            "control_id",
            "title",
            "severity",
            "label",
            "resource",
            "was",
            "now",
            "department",
            "source",
            "url",
        ],
        data["fixed"],
    )
    _sheet(
        book,
        "Departments",
        ["department", "alarm", "unverified", "ok", "pass_rate"],
        data["by_department"],
    )
    _sheet(book, "Trend", ["run_id", "at", "pass_rate", "alarm", "unverified", "ok"], data["trend"])
    _sheet(
        book,
        "Sources",
        ["source", "platform", "problems", "last_run"],
        [
            {
                "source": name,
                "platform": item.get("platform"),
                "problems": "; ".join(item.get("problems") or []) or "read completely",
                "last_run": (item.get("last_run") or {}).get("outcome"),
            }
            for name, item in data["sources"].items()
        ],
    )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_json(data: Mapping[str, Any]) -> str:
    return json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n"


# -- metric reports (portfolio, service) ------------------------------------------------------


SIGNED_SHARES = {"ppm.budget_variance"}
"""Percentages that deviate either way (over or under budget): not drawn on 0-100."""


def metric_charts(data: Mapping[str, Any]) -> dict[str, str]:
    """Each metric's breakdowns as charts: months as columns (time runs left to right), other
    keys as bars; shares on 0-100, counts on whole numbers, health in its colours; and each
    metric's recorded trend."""
    from . import svg

    figures: dict[str, str] = {}
    for metric in data["metrics"]:
        unit = metric["unit"]
        if metric.get("trend"):
            figures[f"trend-{metric['id']}"] = svg.sparkline(
                f"trend-{metric['id']}",
                [p["at"][:10] for p in metric["trend"]],
                [p["value"] for p in metric["trend"]],
                unit=unit,
                width=130,
            )
        if metric.get("unsupported"):
            continue
        for dimension, values in (metric.get("breakdown") or {}).items():
            numeric = {str(k): v for k, v in values.items() if isinstance(v, int | float)}
            if not numeric:
                continue
            key = f"m-{metric['id']}-{dimension}"
            shown_unit = "count" if dimension == "state" and unit == "count" else unit
            if dimension == "health" and unit == "%":
                shown_unit = "%"
            title = f"{metric['title']} by {dimension}"
            if dimension == "month":
                months = sorted(numeric)
                figures[key] = svg.columns(
                    key, months, [numeric[m] for m in months], unit=shown_unit, title=title
                )
                continue
            items = list(numeric.items())[:20]
            domain = None
            if metric["id"] in SIGNED_SHARES:
                # a deviation, not a share: its own axis from zero, not 0-100
                ticks = svg.nice_ticks(min(v for _, v in items), max(v for _, v in items))
                domain = (ticks[0], ticks[-1])
            colours = None
            if dimension == "health":
                colours = [svg.HEALTH_COLOURS.get(k, svg.MUTED) for k, _ in items]
            figures[key] = svg.bars(
                key,
                [k for k, _ in items],
                [float(v) for _, v in items],
                unit=shown_unit,
                title=title,
                colours=colours,
                domain=domain,
            )
    return figures


def metrics_html(data: Mapping[str, Any], *, charts: bool = True) -> str:
    figures = metric_charts(data) if charts else {}
    return _environment().get_template("metrics.html.j2").render(data=data, charts=figures)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, dict | list):
        return json.dumps(jsonable(value), ensure_ascii=False, sort_keys=True)
    return "" if value is None else str(value)


def metrics_md(data: Mapping[str, Any]) -> str:
    lines = [f"# {_md(data['title'])}", "", f"Computed at {data['generated_at']}.", ""]
    lines += ["| Metric | Value | Unit | Records | Note |", "|---|---:|---|---:|---|"]
    for m in data["metrics"]:
        lines.append(
            f"| {_md(m['title'])} ({_md(m['id'])}) | {_md(_value(m['value']))} | {_md(m['unit'])} | "
            f"{_md(m['n'])} | {_md(m['unsupported'] or '')} |"
        )
    for m in data["metrics"]:
        for dimension, values in (m.get("breakdown") or {}).items():
            lines += [
                "",
                f"## {_md(m['title'])} by {_md(dimension)}",
                "",
                "| Key | Value |",
                "|---|---:|",
            ]
            lines += [f"| {_md(k)} | {_md(_value(v))} |" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _metric_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for m in data["metrics"]:
        rows.append(
            {
                "metric": m["id"],
                "title": m["title"],
                "unit": m["unit"],
                "dimension": "",
                "key": "",
                "value": m["value"],
                "n": m["n"],
                "unsupported": m["unsupported"],
            }
        )
        for dimension, values in (m.get("breakdown") or {}).items():
            for key, value in values.items():
                rows.append(
                    {
                        "metric": m["id"],
                        "title": m["title"],
                        "unit": m["unit"],
                        "dimension": dimension,
                        "key": key,
                        "value": value,
                        "n": None,
                        "unsupported": None,
                    }
                )
    return rows


METRIC_COLUMNS = ["metric", "title", "unit", "dimension", "key", "value", "n", "unsupported"]


def metrics_csv(data: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    write_csv(_metric_rows(data), buffer, METRIC_COLUMNS)
    return buffer.getvalue()


def metrics_xlsx(data: Mapping[str, Any]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    rows = _metric_rows(data)
    _sheet(book, "Metrics", METRIC_COLUMNS, [r for r in rows if not r["dimension"]])
    _sheet(book, "Breakdown", METRIC_COLUMNS, [r for r in rows if r["dimension"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- dashboards -------------------------------------------------------------------------------


def dashboard_html(data: Mapping[str, Any]) -> str:
    from .dashboard import charts

    template = _environment().get_template("dashboard.html.j2")
    return template.render(data=data, charts=charts(dict(data)))


# -- one entry point --------------------------------------------------------------------------


def render(data: Mapping[str, Any], fmt: str) -> bytes:
    """The report in ``fmt`` as bytes (UTF-8 for the text formats)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "json":
        return to_json(data).encode("utf-8")
    if data.get("report") == "dashboard":
        if fmt != "html":
            raise ValueError("a dashboard renders as html or json")
        return dashboard_html(data).encode("utf-8")
    compliance = data.get("report") == "compliance"
    if fmt == "xlsx":
        return compliance_xlsx(data) if compliance else metrics_xlsx(data)
    text = {
        ("html", True): compliance_html,
        ("md", True): compliance_md,
        ("csv", True): compliance_csv,
        ("html", False): metrics_html,
        ("md", False): metrics_md,
        ("csv", False): metrics_csv,
    }[(fmt, compliance)](data)
    return text.encode("utf-8")


def write(data: Mapping[str, Any], fmt: str, path: Path) -> Path:
    """Write the report to ``path`` (its folder is made); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = render(data, fmt)
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(payload)
    temporary.replace(path)
    return path
