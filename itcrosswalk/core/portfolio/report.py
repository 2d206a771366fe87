"""The review board's report of a selection: self-contained HTML (with the efficient frontier
as a chart) and XLSX, one section or sheet per scenario and the scenarios side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..reports import charts
from ..reports.render import _sheet, safe_url

TEMPLATES = Path(__file__).parent / "templates"


def frontier_chart(selections: Sequence[Mapping[str, Any]], *, salt: str = "frontier") -> str:
    """Optimal value for each budget level, one line per scenario, as inline SVG."""
    import matplotlib

    with matplotlib.rc_context(charts._RC):
        fig = charts._figure(7.2, 3.0)
        ax = fig.add_subplot()
        for index, selection in enumerate(selections):
            points = [p for p in selection["frontier"] if p["value"] is not None]
            ax.plot(
                [p["budget"] / 1e6 for p in points],
                [p["value"] for p in points],
                marker="o",
                drawstyle="steps-post",
                label=charts._short(str(selection["scenario"])),
                color=[
                    charts.COLORS["line"],
                    charts.COLORS["ok"],
                    charts.COLORS["unverified"],
                    charts.COLORS["alarm"],
                ][index % 4],  # fmt: skip
            )
        ax.set_xlabel("budget (millions)")
        ax.set_ylabel(f"total {selections[0]['objective'] if selections else 'score'}")
        ax.set_title("Efficient frontier: the best value each budget buys", loc="left", fontsize=10)
        ax.legend(loc="lower right", frameon=False, fontsize=8)
        return charts._svg(fig, salt)


def comparison(selections: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Scenarios side by side: one row per candidate, one column per scenario."""
    names = [s["scenario"] for s in selections]
    rows: dict[str, dict[str, Any]] = {}
    for s in selections:
        for key, verdict in (("funded", "funded"), ("unfunded", "—")):
            for r in s[key]:
                row = rows.setdefault(r["candidate"], {"candidate": r["candidate"],
                                                       "platform": r["platform"], "name": r["name"]})  # fmt: skip
                row[s["scenario"]] = verdict
    out = sorted(
        rows.values(), key=lambda r: (-sum(r.get(n) == "funded" for n in names), r["candidate"])
    )
    return out


def to_html(data: Mapping[str, Any], *, chart: bool = True) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(TEMPLATES)),
                jinja2.FileSystemLoader(str(charts.__file__).rsplit("/", 1)[0] + "/templates"),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["money"] = lambda v: "—" if v is None else f"{v:,.0f}"
    figure = frontier_chart(data["selections"]) if chart and data["selections"] else ""
    return env.get_template("portfolio.html.j2").render(
        data=data, chart=figure, comparison=comparison(data["selections"])
    )


FUNDED = ["candidate", "platform", "name", "value", "cost", "per_million", "must_fund", "url"]
UNFUNDED = ["candidate", "platform", "name", "value", "cost", "per_million", "reason", "url"]


def to_xlsx(data: Mapping[str, Any]) -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    selections = data["selections"]
    names = [s["scenario"] for s in selections]
    _sheet(book, "Scenarios", ["candidate", "platform", "name", *names], comparison(selections))
    for s in selections:
        tag = s["scenario"][:20]
        _sheet(book, f"Funded {tag}"[:31], FUNDED, s["funded"])
        _sheet(book, f"Unfunded {tag}"[:31], UNFUNDED, s["unfunded"])
        _sheet(
            book,
            f"Budget {tag}"[:31],
            ["constraint", "limit", "used", "left"],
            s["years"] + s["capacity"],
        )
        _sheet(
            book,
            f"Frontier {tag}"[:31],
            ["budget_factor", "budget", "value", "funded", "spend", "status"],
            s["frontier"],
        )
    if data.get("excluded"):
        _sheet(
            book,
            "Excluded",
            ["candidate", "platform", "name", "reason_kind", "reason"],
            data["excluded"],
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
