"""Resource capacity across platforms: who is booked where, and who is booked twice.

:func:`plan` computes demand against capacity per person (or role, department, team,
platform) and week or month from the store (see :mod:`.engine` for the rules);
:func:`capacity_by_role` is the small answer the investment selection's capacity constraint
reads. The CLI (``crosswalk capacity``), the heatmap (:mod:`.report`), the metrics and the
controls are all computed by the same :func:`plan`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..store import Store
from .engine import (
    GRAINS,
    GROUPINGS,
    OVER_ALLOCATED,
    CapacityPlan,
    Cell,
    Finding,
    Inputs,
    Problem,
    compute,
    load,
    period_label,
)

__all__ = [
    "GRAINS",
    "GROUPINGS",
    "OVER_ALLOCATED",
    "CapacityPlan",
    "Cell",
    "Finding",
    "Inputs",
    "Problem",
    "capacity_by_role",
    "compute",
    "load",
    "plan",
]


def plan(
    store: Store,
    config: Any,
    *,
    start: date,
    end: date,
    by: str = "person",
    granularity: str = "month",
    source: str | None = None,
) -> CapacityPlan:
    """Demand against capacity from ``start`` up to, not including, ``end``, over the store.

    ``config`` is the loaded :class:`..config.Config` (its ``[metrics.calendar]`` is the City's
    working calendar for people no platform keeps capacity for).
    """
    return compute(
        load(store, source),
        config.metrics.calendar,
        start=start,
        end=end,
        by=by,
        granularity=granularity,
    )


def capacity_by_role(
    store: Store,
    config: Any,
    *,
    start: date,
    end: date,
    granularity: str = "month",
) -> dict[str, dict[str, dict[str, float]]]:
    """Hours by role and period, for the investment selection's capacity constraint.

    Returns ``{role: {period: {"capacity": h, "demand": h, "available": h}}}`` with periods
    labelled ``YYYY-MM`` (or ``YYYY-Www`` by week). A named person's capacity and bookings
    count under the role they are booked as most (by planned hours); demand for a role nobody
    is named on (generic) counts under that role with no capacity of its own. ``available`` is
    ``capacity - demand`` and may be negative (the role is over-booked already). People whose
    role no platform names are under ``(none)``.
    """
    result = compute(
        load(store), config.metrics.calendar, start=start, end=end, by="role",
        granularity=granularity,
    )  # fmt: skip
    out: dict[str, dict[str, dict[str, float]]] = {}
    for role, cells in [*result.rows.items(), *result.generic.items()]:
        into = out.setdefault(role, {})
        for period, cell in cells.items():
            label = period_label(period, granularity)
            slot = into.setdefault(label, {"capacity": 0.0, "demand": 0.0, "available": 0.0})
            slot["capacity"] += cell.capacity
            slot["demand"] += cell.demand
            slot["available"] = slot["capacity"] - slot["demand"]
    return {
        role: {p: {k: round(v, 2) for k, v in s.items()} for p, s in periods.items()}
        for role, periods in sorted(out.items())
    }
