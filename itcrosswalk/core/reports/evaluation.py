"""The platform evaluation rendered for the selection committee: within each role the ranking,
the criteria matrix, the fit-gap against the City's requirements with the evidence behind each
cell, and which weight changes would flip the ranking; as one self-contained HTML page,
Markdown, XLSX and JSON.

Everything that came from a platform, a criteria or a requirements file is escaped (Jinja2
autoescape; XLSX cells neutralized).
"""

from __future__ import annotations

import io
from typing import Any

from ..evaluate import Criterion, SourceEvaluation, load_criteria


def _band(value: float | None) -> str:
    if value is None:
        return ""
    return "hi" if value >= 75 else "mid" if value >= 40 else "lo"


def pack(
    results: list[SourceEvaluation],
    criteria: dict[str, Criterion] | None = None,
    requirements: list[Any] | None = None,
) -> dict[str, Any]:
    """The committee's pack (see :func:`..fitgap.committee_pack`), default criteria if none."""
    from ..fitgap import committee_pack

    return committee_pack(results, criteria or load_criteria(None), requirements)


def matrix(results: list[SourceEvaluation]) -> tuple[list[str], list[dict[str, Any]]]:
    """Criteria rows x source columns (n/a outside a source's roles), then each role's total."""
    sources = [r.source for r in results]
    criteria: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, info in result.scores.items():
            row = criteria.setdefault(
                name,
                {"key": name, "criterion": info["title"], "weight": info["weight"], "scores": {}},
            )
            row["scores"][result.source] = info["score"] if info.get("applies", True) else "n/a"
    rows = list(criteria.values())
    from ..evaluate import ROLES

    for role, info in ROLES.items():
        if any(role in r.roles for r in results):
            rows.append(
                {
                    "key": f"total:{role}",
                    "criterion": f"Total as {info.title} (rank)",
                    "weight": None,
                    "scores": {
                        r.source: f"{r.roles[role]['total']:g} (#{r.roles[role]['rank']})"
                        if role in r.roles and r.roles[role]["total"] is not None
                        else "n/a"
                        for r in results
                    },
                }
            )
    return sources, rows


def _md(text: Any) -> str:
    """Text from a platform, safe inside a Markdown table or list."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_markdown(
    results: list[SourceEvaluation],
    criteria: dict[str, Criterion] | None = None,
    requirements: list[Any] | None = None,
) -> str:
    data = pack(results, criteria, requirements)
    lines = ["# Platform evaluation by role", ""]
    for role, r in data["roles"].items():
        names = [row["source"] for row in r["ranking"]]
        lines += [f"## {_md(r['title'])}", ""]
        lines.append("| criterion | weight | " + " | ".join(_md(s) for s in names) + " |")
        lines.append("|---|---:|" + "---:|" * len(names))
        for c in r["criteria"]:
            cells = " | ".join(
                "-" if row["scores"][c["key"]] is None else f"{row['scores'][c['key']]:g}"
                for row in r["ranking"]
            )
            lines.append(f"| {_md(c['title'])} | {c['weight']:g} | {cells} |")
        totals = " | ".join(
            f"**{row['total']:g}** (#{row['rank']})" if row["total"] is not None else "-"
            for row in r["ranking"]
        )
        lines.append(f"| Total (rank) | | {totals} |")
        fg = data["fit_gap"].get(role)
        if fg:
            lines += ["", "### Fit-gap", ""]
            lines.append(
                "| requirement | priority | " + " | ".join(_md(s) for s in fg["candidates"]) + " |"
            )
            lines.append("|---|---|" + "---|" * len(fg["candidates"]))
            for row in fg["rows"]:
                cells = " | ".join(
                    f"**{row['cells'][s]['verdict']}**: "
                    + _md("; ".join(e["why"] for e in row["cells"][s]["evidence"]))
                    for s in fg["candidates"]
                )
                lines.append(
                    f"| {_md(row['id'])} {_md(row['text'])} | {row['priority']} | {cells} |"
                )
        sv = data["sensitivity"].get(role)
        if sv and sv.get("flips"):
            lines += ["", "### Sensitivity", ""]
            lines += [f"- {_md(f['words'])}" for f in sv["flips"]]
        lines.append("")
    for result in results:
        roles = (
            ", ".join(f"{i['title']} rank {i['rank']}" for i in result.roles.values()) or "no role"
        )
        lines += ["", f"## {_md(result.source)} ({_md(result.platform)}): {_md(roles)}", ""]
        lines.append(f"Status: {_md(result.status)}")
        for info in result.scores.values():
            shown = "n/a" if info["score"] is None else f"{info['score']:g}"
            lines += ["", f"### {_md(info['title'])}: {shown}", ""]
            for item in info["evidence"]:
                lines.append(f"- {_md(item['why'])}")
    return "\n".join(lines) + "\n"


def charts(data: dict[str, Any]) -> dict[str, str]:
    """One chart per role: the candidates' totals, every role on the same 0-100 scale."""
    from . import svg

    out = {}
    for role, r in data["roles"].items():
        out[f"total-{role}"] = svg.bars(
            f"total-{role}",
            [row["source"] for row in r["ranking"]],
            [row["total"] for row in r["ranking"]],
            unit="score",
            title=f"{r['title']}: weighted total (0-100)",
            domain=(0.0, 100.0),
        )
    return out


def render_html(
    results: list[SourceEvaluation],
    criteria: dict[str, Criterion] | None = None,
    requirements: list[Any] | None = None,
) -> str:
    from .render import _environment

    data = pack(results, criteria, requirements)
    template = _environment().get_template("evaluation.html.j2")
    return template.render(pack=data, results=results, charts=charts(data), band=_band)


def render_xlsx(
    results: list[SourceEvaluation],
    criteria: dict[str, Criterion] | None = None,
    requirements: list[Any] | None = None,
) -> bytes:
    """The committee's workbook: the ranking per role, the matrix, the fit-gap with its
    evidence, the sensitivity, and every score's evidence."""
    from openpyxl import Workbook

    from .render import _sheet

    data = pack(results, criteria, requirements)
    book = Workbook()
    book.remove(book.active)
    ranking = [
        {
            "role": r["title"],
            "rank": row["rank"],
            "source": row["source"],
            "platform": row["platform"],
            "status": row["status"],
            "total": row["total"],
            **{c["title"]: row["scores"][c["key"]] for c in r["criteria"]},
        }
        for r in data["roles"].values()
        for row in r["ranking"]
    ]
    titles: list[str] = []
    for r in data["roles"].values():
        titles += [c["title"] for c in r["criteria"] if c["title"] not in titles]
    _sheet(
        book, "Ranking", ["role", "rank", "source", "platform", "status", "total", *titles], ranking
    )
    fit_rows = [
        {
            "role": fg["title"],
            "requirement": row["id"],
            "text": row["text"],
            "priority": row["priority"],
            "source": source,
            "verdict": row["cells"][source]["verdict"],
            "evidence": "; ".join(e["why"] for e in row["cells"][source]["evidence"]),
        }
        for fg in data["fit_gap"].values()
        for row in fg["rows"]
        for source in fg["candidates"]
    ]
    _sheet(
        book,
        "Fit-gap",
        ["role", "requirement", "text", "priority", "source", "verdict", "evidence"],
        fit_rows,
    )
    flips = [
        {"role": sv["title"], "leader": sv["ranking"][0] if sv["ranking"] else None, **f}
        for sv in data["sensitivity"].values()
        for f in sv.get("flips", [])
    ]
    _sheet(
        book,
        "Sensitivity",
        ["role", "leader", "title", "weight", "flip_at", "challenger", "words"],
        flips,
    )
    evidence = [
        {
            "source": ev.source,
            "platform": ev.platform,
            "criterion": info["title"],
            "score": info["score"],
            "measure": item["measure"],
            "component": item["score"],
            "why": item["why"],
        }
        for ev in results
        for info in ev.scores.values()
        for item in info["evidence"]
    ]
    _sheet(
        book,
        "Evidence",
        ["source", "platform", "criterion", "score", "measure", "component", "why"],
        evidence,
    )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
