"""The capacity heatmap: rows (people, roles, ...) by periods, coloured by utilization, as one
self-contained HTML page and as an XLSX workbook, both from :func:`report_data`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..output import neutralize
from .engine import OVER_ALLOCATED, CapacityPlan

BANDS: list[tuple[float | None, str, str]] = [
    (0.5, "#e3f2fd", "under 50 %"),
    (0.85, "#c8e6c9", "50-85 %"),
    (1.0, "#fff59d", "85-100 %"),
    (OVER_ALLOCATED, "#ffcc80", "100-110 %"),
    (None, "#ef9a9a", "over 110 %"),
]
NO_CAPACITY = "#eceff1"


def colour(utilization: float | None) -> str:
    """The band colour of a utilization (a fraction); grey where there is no capacity."""
    if utilization is None:
        return NO_CAPACITY
    for upper, shade, _label in BANDS:
        if upper is None or utilization <= upper:
            return shade
    return BANDS[-1][1]


def report_data(result: CapacityPlan, *, generated_at: datetime | None = None) -> dict[str, Any]:
    """Everything the heatmap shows, as plain data (the JSON output is the same)."""
    body = result.as_json()
    double = {f.person for f in result.findings}
    heat = []
    for key, periods in body["rows"].items():
        platforms = sorted({p for c in periods.values() for p in c["by_platform"]})
        cells = []
        for label in body["periods"]:
            c = periods[label]
            cells.append(
                {
                    "period": label,
                    "demand": c["demand_hours"],
                    "capacity": c["capacity_hours"],
                    "utilization": c["utilization"],
                    "colour": colour(c["utilization"]),
                    "title": "; ".join(f"{k} {v} h" for k, v in c["by_platform"].items()),
                }
            )
        heat.append(
            {
                "key": key,
                "label": body["labels"].get(key, key),
                "double": result.by == "person" and key in double,
                "platforms": platforms,
                "cells": cells,
            }
        )
    return {
        **body,
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "threshold": OVER_ALLOCATED,
        "heat": heat,
        "findings": body["multi_platform_overbooked"],
        "double_booked": sorted(double),
        "generic": body["generic_demand"],
        "bands": [{"colour": shade, "label": label} for _u, shade, label in BANDS],
    }


def render_html(data: dict[str, Any]) -> str:
    from ..reports.render import _environment

    return str(_environment().get_template("capacity.html.j2").render(data=data))


def write_xlsx(data: dict[str, Any], path: Path) -> Path:
    """The heatmap as a workbook: one sheet of utilization coloured as the page is, one of
    hours, one of cross-platform findings, one of reported records."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook()
    heat = book.active
    heat.title = "Utilization"
    heat.append([data["by"], *data["periods"]])
    for cell in heat[1]:
        cell.font = Font(bold=True)
    hours = book.create_sheet("Hours")
    hours.append([data["by"], "period", "demand_hours", "capacity_hours", "utilization"])
    for row in data["heat"]:
        heat.append([neutralize(row["label"]), *[c["utilization"] for c in row["cells"]]])
        for index, c in enumerate(row["cells"], start=2):
            target = heat.cell(row=heat.max_row, column=index)
            target.fill = PatternFill("solid", fgColor=c["colour"].lstrip("#").upper())
            target.number_format = "0%"
            hours.append(
                [
                    neutralize(row["label"]),
                    c["period"],
                    c["demand"],
                    c["capacity"],
                    c["utilization"],
                ]
            )
    found = book.create_sheet("Across platforms")
    found.append(["person", "name", "period", "demand_hours", "capacity_hours", "utilization",
                  "by_platform", "hidden"])  # fmt: skip
    for f in data["findings"]:
        found.append(
            [
                neutralize(f["person"]), neutralize(f["name"] or ""), f["period"],
                f["demand_hours"], f["capacity_hours"], f["utilization"],
                "; ".join(f"{k} {v}" for k, v in f["by_platform"].items()), f["hidden"],
            ]
        )  # fmt: skip
    problems = book.create_sheet("Reported")
    problems.append(["kind", "source", "entity", "source_id", "message"])
    for p in data["problems"]:
        problems.append(
            [neutralize(p[k]) for k in ("kind", "source", "entity", "source_id", "message")]
        )
    book.save(path)
    return path


def write(data: dict[str, Any], folder: Path) -> list[Path]:
    """``capacity.html``, ``capacity.xlsx`` and ``capacity.json`` in ``folder``."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "capacity.html"
    page.write_text(render_html(data), encoding="utf-8")
    book = write_xlsx(data, folder / "capacity.xlsx")
    raw = folder / "capacity.json"
    raw.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return [page, book, raw]
