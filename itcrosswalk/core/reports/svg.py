"""Charts for people who read them at a glance, drawn as plain inline SVG (no network, no script).

The rules every chart here keeps: an axis starts at zero; a percentage is drawn on 0-100, so a
20 % bar fills a fifth of the axis whatever the others are, and charts compared side by side
share one scale; time runs along the horizontal axis; counts tick at whole numbers; health is red, amber
and green. Each chart carries its values as data (``data-values`` on the ``<svg>``, ``data-value``
on each mark), so a test can hold what is drawn against the report's JSON.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from typing import Any

RAG = {"green": "#2e7d32", "amber": "#ef8f00", "red": "#c62828"}
NEUTRAL = "#1f4e79"
MUTED = "#9aa5b1"
HEALTH_COLOURS = {**RAG, "unknown": MUTED, "(none)": MUTED}


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_ticks(low: float, high: float, *, integer: bool = False, count: int = 5) -> list[float]:
    """Round tick values covering ``low``..``high`` (zero included); whole numbers for counts."""
    low, high = min(0.0, low), max(0.0, high)
    if high == low:
        high = low + (1.0 if integer else 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def scale_for(values: Sequence[float | None], unit: str) -> tuple[float, float]:
    """The axis range of ``values``: 0-100 for percentages, else from zero to the extremes."""
    if unit == "%":
        return 0.0, 100.0
    present = [float(v) for v in values if v is not None]
    ticks = nice_ticks(
        min(present, default=0.0), max(present, default=0.0), integer=unit == "count"
    )
    return ticks[0], ticks[-1]


def _label(value: float, unit: str) -> str:
    if unit == "currency":
        size = abs(value)
        sign = "-" if value < 0 else ""
        if size >= 1e6:
            return f"{sign}${size / 1e6:g}M"
        if size >= 1e3:
            return f"{sign}${size / 1e3:g}k"
        return f"{sign}${size:g}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "%":
        return f"{value:g}%"
    return f"{value:,.6g}"


def _open(chart_id: str, kind: str, width: int, height: int, title: str, data: Any) -> str:
    return (
        f'<svg class="chart" data-chart="{_e(chart_id)}" data-kind="{kind}" '
        f'data-values=\'{_e(json.dumps(data))}\' role="img" aria-label="{_e(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">'
        f"<title>{_e(title)}</title>"
    )


def bars(
    chart_id: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    unit: str,
    title: str,
    colours: Sequence[str] | None = None,
    domain: tuple[float, float] | None = None,
    width: int = 560,
) -> str:
    """Horizontal bars, one per category (platforms, departments, health): never for time."""
    low, high = domain or scale_for(values, unit)
    shares = unit == "%" and domain is None
    ticks = [0, 25, 50, 75, 100] if shares else nice_ticks(low, high, integer=unit == "count")
    low, high = min(low, ticks[0]), max(high, ticks[-1])
    left, right, top, row = 170, 20, 24, 22
    height = top + row * max(1, len(labels)) + 28
    plot = width - left - right

    def x(v: float) -> float:
        return left + plot * (v - low) / (high - low)

    data = [{"label": str(k), "value": v} for k, v in zip(labels, values, strict=True)]
    out = [_open(chart_id, "bars", width, height, title, data)]
    out.append(f'<text x="0" y="14" font-size="12" font-weight="600">{_e(title)}</text>')
    for tick in ticks:
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{height - 24}" stroke="#e3e7ec"/>'
            f'<text x="{tx:.1f}" y="{height - 10}" text-anchor="middle" class="tick">'
            f"{_e(_label(tick, unit))}</text>"
        )
    zero = x(0.0)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + row * index
        out.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{_e(_short(str(label)))}</text>'
        )
        if value is None:
            out.append(
                f'<text x="{zero + 4:.1f}" y="{y + 15}" fill="{MUTED}" class="mark" '
                f'data-label="{_e(label)}" data-value="">n/a</text>'
            )
            continue
        colour = colours[index] if colours else NEUTRAL
        start, end = sorted((zero, x(float(value))))
        out.append(
            f'<rect class="mark" data-label="{_e(label)}" data-value="{float(value):g}" '
            f'x="{start:.1f}" y="{y + 4}" width="{max(end - start, 0.5):.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{_e(label)}: {_e(_label(float(value), unit))}</title></rect>'
        )
    out.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{height - 24}" stroke="#555"/>'
    )
    out.append("</svg>")
    return "".join(out)


def columns(
    chart_id: str,
    periods: Sequence[str],
    values: Sequence[float | None],
    *,
    unit: str,
    title: str,
    width: int = 720,
    height: int = 220,
) -> str:
    """Vertical columns over time (months), oldest on the left."""
    low, high = scale_for(values, unit)
    ticks = nice_ticks(low, high, integer=unit == "count") if unit != "%" else [0, 25, 50, 75, 100]
    low, high = min(low, ticks[0]), max(high, ticks[-1])
    left, right, top, bottom = 52, 12, 24, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(periods))

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    data = [{"label": str(k), "value": v} for k, v in zip(periods, values, strict=True)]
    out = [_open(chart_id, "columns", width, height, title, data)]
    out.append(f'<text x="0" y="14" font-size="12" font-weight="600">{_e(title)}</text>')
    for tick in ticks:
        ty = y(tick)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e3e7ec"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" class="tick">'
            f"{_e(_label(tick, unit))}</text>"
        )
    every = max(1, math.ceil(len(periods) / 12))
    for index, (period, value) in enumerate(zip(periods, values, strict=True)):
        cx = left + step * index
        if index % every == 0:
            out.append(
                f'<text x="{cx + step / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{_e(period)}</text>"
            )
        if value is None:
            continue
        top_y, base = sorted((y(float(value)), y(0.0)))
        out.append(
            f'<rect class="mark" data-label="{_e(period)}" data-value="{float(value):g}" '
            f'x="{cx + step * 0.15:.1f}" y="{top_y:.1f}" width="{step * 0.7:.1f}" '
            f'height="{max(base - top_y, 0.5):.1f}" fill="{NEUTRAL}">'
            f"<title>{_e(period)}: {_e(_label(float(value), unit))}</title></rect>"
        )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y(0.0):.1f}" y2="{y(0.0):.1f}" stroke="#555"/>'
    )
    out.append("</svg>")
    return "".join(out)


def sparkline(
    chart_id: str,
    moments: Sequence[str],
    values: Sequence[float | None],
    *,
    unit: str,
    colour: str = NEUTRAL,
    width: int = 170,
    height: int = 40,
) -> str:
    """A KPI's recorded values, oldest on the left, on the KPI's own axis from zero."""
    low, high = scale_for(values, unit)
    pad = 3
    step = (width - 2 * pad) / max(1, len(values) - 1)

    def y(v: float) -> float:
        return pad + (height - 2 * pad) * (1 - (v - low) / ((high - low) or 1.0))

    data = [{"label": str(m), "value": v} for m, v in zip(moments, values, strict=True)]
    title = f"trend over the last {len(values)} snapshots"
    out = [_open(chart_id, "sparkline", width, height, title, data)]
    out.append(f'<line x1="0" x2="{width}" y1="{y(low):.1f}" y2="{y(low):.1f}" stroke="#e3e7ec"/>')
    points = [(pad + step * i, y(float(v))) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    for i, (moment, value) in enumerate(zip(moments, values, strict=True)):
        if value is None:
            continue
        out.append(
            f'<circle class="mark" data-label="{_e(moment)}" data-value="{float(value):g}" '
            f'cx="{pad + step * i:.1f}" cy="{y(float(value)):.1f}" r="2" fill="{colour}">'
            f"<title>{_e(moment)}: {_e(_label(float(value), unit))}</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)
