"""Charts as inline SVG (matplotlib, no pyplot state, no network), for self-contained HTML.

Labels come from platforms (department names, control titles), so math-text parsing is off
(a ``$`` in a name is text, not TeX) and matplotlib writes text as SVG ``<text>``, escaped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

COLORS = {"alarm": "#c62828", "unverified": "#ef8f00", "ok": "#2e7d32", "line": "#1f4e79"}
_RC: Any = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Any, salt: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline in HTML: drop the XML prolog and DOCTYPE, keep the <svg> element.
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96)


def _whole_numbers(axis: Any) -> None:
    """Counts tick at whole numbers (never 0.5 of a finding)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stacked_bars(
    labels: Sequence[str], series: dict[str, Sequence[int]], *, title: str, salt: str
) -> str:
    """Horizontal stacked bars, one per label (controls, departments)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.2, max(1.6, 0.28 * len(labels) + 0.9))
        ax = fig.add_subplot()
        positions = list(range(len(labels)))[::-1]
        left = [0] * len(labels)
        for name, values in series.items():
            ax.barh(positions, values, left=left, color=COLORS.get(name, "#777"), label=name)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_yticks(positions, [_short(label) for label in labels])
        ax.set_title(title, loc="left", fontsize=10)
        ax.set_xlabel("findings")
        _whole_numbers(ax.xaxis)
        if labels:
            ax.legend(loc="lower right", frameon=False, fontsize=8)
        return _svg(fig, salt)


def trend(points: Sequence[dict[str, Any]], *, salt: str) -> str:
    """Pass rate (line) and alarms (bars) over the last runs."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.2, 2.4)
        ax = fig.add_subplot()
        xs = list(range(len(points)))
        names = [str(p["at"])[:10] for p in points]
        ax.bar(xs, [p["alarm"] for p in points], color=COLORS["alarm"], alpha=0.45, label="alarms")
        ax.set_ylabel("alarms")
        _whole_numbers(ax.yaxis)
        ax.set_xlim(-1, max(len(points), 2))
        ax.set_xticks(xs, names, rotation=30, ha="right")
        right = ax.twinx()
        rates = [None if p["pass_rate"] is None else 100 * p["pass_rate"] for p in points]
        right.plot(
            xs,
            [r if r is not None else float("nan") for r in rates],
            color=COLORS["line"],
            marker="o",
            label="pass rate %",
        )
        right.set_ylim(0, 100)
        right.set_ylabel("pass rate %")
        right.spines["top"].set_visible(False)
        ax.set_title("Trend over the last runs", loc="left", fontsize=10)
        return _svg(fig, salt)


def metric_bars(labels: Sequence[str], values: Sequence[float], *, title: str, salt: str) -> str:
    """One horizontal bar per key of a metric's breakdown."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, max(1.4, 0.26 * len(labels) + 0.8))
        ax = fig.add_subplot()
        positions = list(range(len(labels)))[::-1]
        ax.barh(positions, values, color=COLORS["line"])
        ax.set_yticks(positions, [_short(label) for label in labels])
        ax.set_title(_short(title, 70), loc="left", fontsize=10)
        return _svg(fig, salt)
