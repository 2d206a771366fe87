"""What the capacity controls bind: the capacity plan's verdict per person, as JSON the
control's SQL reads (``capacity.over_allocated``), and the staffing horizon
(``capacity.unstaffed``).

The arithmetic of capacity (calendars, holidays, part-time, spreading buckets over working
days) is the engine's, once; the control's query only applies the rule — over 110 % for two
months running — to what the plan says, so a control and ``crosswalk capacity`` never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..config import CalendarConfig
from ..store import Store
from .engine import OVER_ALLOCATED, compute, default_window, load

STAFFING_DAYS = 60
"""An approved project starting within this many days needs an assignment."""


def capacity_parameters(
    store: Store, config: Any, now: datetime, controls: Sequence[Any]
) -> dict[str, Any]:
    """``:capacity_people`` (a JSON array, one object per person booked) and
    ``:capacity_staffing_before``; the plan is computed only when a control asks for it."""
    params: dict[str, Any] = {"capacity_staffing_before": now + timedelta(days=STAFFING_DAYS)}
    if not any(":capacity_people" in getattr(c, "query", "") for c in controls):
        return params
    metrics = getattr(config, "metrics", None)
    calendar = metrics.calendar if metrics is not None else CalendarConfig()
    inputs = load(store)
    if not inputs.assignments:
        params["capacity_people"] = json.dumps([{"resource": "(assignments)", "skip": 1}])
        return params
    start, end = default_window(now.astimezone(ZoneInfo(calendar.timezone)).date())
    plan = compute(inputs, calendar, start=start, end=end, granularity="month")
    runs = plan.over_allocated(OVER_ALLOCATED, months=1)
    hidden = {f.person for f in plan.findings if f.hidden}
    rows = []
    for key, cells in sorted(plan.person_cells.items()):
        info = plan.people[key]
        peak = max((c.utilization or 0.0 for c in cells.values()), default=0.0)
        rows.append(
            {
                "resource": key,
                "label": info.name or key,
                "department": info.department,
                "platforms": ", ".join(sorted(info.platforms)),
                "run": len(runs.get(key, [])),
                "months": ", ".join(runs.get(key, [])),
                "peak_percent": round(100 * peak, 1),
                # As text made here: the two stores print a float each their own way.
                "peak_text": f"{100 * peak:.1f}",
                "hidden": 1 if key in hidden else 0,
                "skip": 0,
            }
        )
    params["capacity_people"] = json.dumps(rows)
    return params
