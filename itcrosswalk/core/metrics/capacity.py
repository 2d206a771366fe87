"""Capacity metrics: utilization of the people the platforms book, and how many are
over-allocated, computed by the same plan as ``crosswalk capacity`` (:mod:`..capacity`).

The window is ``--since``/``--until`` (local dates in the City's zone), else the six months from
the first of the current month. A store that holds no assignments at all cannot say anything
about utilization: both metrics are unsupported then, with the reason, never 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..capacity.engine import OVER_ALLOCATED, CapacityPlan, compute, default_window, load
from ..store import ENTITY_TABLES
from . import Explanation, Metric, MetricContext, MetricResult

_NO_ASSIGNMENTS = (
    "no synced source keeps assignments (resource plans, team allocations, project "
    "assignments): there is no demand to set against capacity, which is not a utilization of 0"
)


def _window(ctx: MetricContext) -> tuple[date, date]:
    zone = ZoneInfo(ctx.policy.calendar.timezone)
    first, end = default_window(ctx.as_of.astimezone(zone).date())
    start = ctx.since.astimezone(zone).date() if ctx.since else first
    if ctx.until:
        end = ctx.until.astimezone(zone).date()
    elif ctx.since:
        end = default_window(start)[1]
    return start, end if end > start else default_window(start)[1]


def _assignment_count(ctx: MetricContext) -> int:
    t = ENTITY_TABLES["assignment"]
    where: list[Any] = [t.c.deleted.is_(False)]
    if ctx.source:
        where.append(t.c.source == ctx.source)
    with ctx.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one())


class CapacityMetric(Metric):
    """A metric over the capacity plan of the window (people booked by name)."""

    domain = "portfolio"
    entity = "assignment"
    fields = ("person_upn", "planned_hours")

    def dimensions(self) -> list[str]:
        return ["platform", "department", "month"]

    def plan(self, ctx: MetricContext) -> CapacityPlan | None:
        """The capacity plan of the window; in a pack, computed once for its capacity metrics
        (each computed it again: 4 s apiece for 20,000 assignments)."""
        if ctx.shared is not None:
            return ctx.shared.built("capacity plan", lambda: self._plan(ctx))  # type: ignore[no-any-return]
        return self._plan(ctx)

    def _plan(self, ctx: MetricContext) -> CapacityPlan | None:
        if not _assignment_count(ctx):
            return None
        start, end = _window(ctx)
        return compute(load(ctx.store, ctx.source), ctx.policy.calendar, start=start, end=end)

    def explain(self, ctx: MetricContext) -> Iterator[Explanation]:
        result = self.plan(ctx)
        if result is None:
            return
        over = result.over_allocated()
        for key, cells in sorted(result.person_cells.items()):
            info = result.people[key]
            demand = sum(c.demand for c in cells.values())
            capacity = sum(c.capacity for c in cells.values())
            months = {
                label: {
                    "demand_hours": round(c.demand, 2),
                    "capacity_hours": round(c.capacity, 2),
                    "by_platform": {k: round(v, 2) for k, v in sorted(c.by_platform.items())},
                }
                for label, c in zip(result.period_labels(), cells.values(), strict=True)
            }
            counted = capacity > 0
            value = self.person_value(demand, capacity, key in over) if counted else None
            yield Explanation(
                source=",".join(sorted(info.platforms)) or "(capacity only)",
                source_id=key,
                label=info.name,
                counted=counted,
                reason=None if counted else "no working hours in the window (capacity 0)",
                value=value,
                detail={
                    "capacity_basis": result.capacity_basis.get(key),
                    "demand_hours": round(demand, 2),
                    "capacity_hours": round(capacity, 2),
                    "over_allocated_months": over.get(key, []),
                    "months": months,
                },
            )

    def person_value(self, demand: float, capacity: float, over: bool) -> float:
        raise NotImplementedError


def _by(result: CapacityPlan, dimension: str) -> dict[str, tuple[float, float, set[str]]]:
    """dimension key -> (demand, capacity, people)."""
    out: dict[str, tuple[float, float, set[str]]] = {}
    labels = result.period_labels()
    for key, cells in result.person_cells.items():
        info = result.people[key]
        for label, cell in zip(labels, cells.values(), strict=True):
            if dimension == "month":
                parts = [(label, cell.demand, cell.capacity)]
            elif dimension == "department":
                parts = [(info.department or "(none)", cell.demand, cell.capacity)]
            else:  # platform: the platform's bookings against the capacity of whom it books
                parts = [(p, h, cell.capacity) for p, h in cell.by_platform.items()]
            for group, demand, capacity in parts:
                d, c, people = out.get(group, (0.0, 0.0, set()))
                out[group] = (d + demand, c + capacity, people | {key})
    return out


class Utilization(CapacityMetric):
    id = "capacity.utilization"
    title = "Resource utilization"
    unit = "%"
    definition = (
        "Hours booked on named people across every platform, summed per person (a person "
        "booked on two platforms counts once, with both bookings), over those people's "
        "capacity in the window, in %. Capacity is the platform's calendar where one keeps it, "
        "else the City's working calendar ([metrics.calendar]: workdays, hours_per_day or "
        "end - start hours a day, less holidays). Window: --since/--until, else six months from this month's first. "
        "Demand for roles nobody is named on, and bookings whose person cannot be told, are "
        "left out (crosswalk capacity shows them apart)."
    )

    def compute(self, ctx: MetricContext, by: Sequence[str] = ()) -> MetricResult:
        out = MetricResult(self.id, self.title, self.unit, None, 0)
        result = self.plan(ctx)
        if result is None:
            out.unsupported = _NO_ASSIGNMENTS
            return out
        demand = sum(c.demand for cells in result.person_cells.values() for c in cells.values())
        capacity = sum(c.capacity for cells in result.person_cells.values() for c in cells.values())
        out.n = len(result.person_cells)
        out.value = 100 * demand / capacity if capacity else None
        out.excluded = {
            "generic role demand (hours)": round(
                sum(c.demand for cells in result.generic.values() for c in cells.values())
            ),
            "unresolved person (hours)": round(sum(c.demand for c in result.unresolved.values())),
        }
        out.excluded = {k: v for k, v in out.excluded.items() if v}
        for dimension in by:
            if dimension in self.dimensions():
                out.breakdown[dimension] = {
                    k: (100 * d / c if c else None)
                    for k, (d, c, _p) in sorted(_by(result, dimension).items())
                }
        out.detail = {"demand_hours": round(demand, 2), "capacity_hours": round(capacity, 2)}
        return out

    def person_value(self, demand: float, capacity: float, over: bool) -> float:
        return 100 * demand / capacity


class OverAllocatedPeople(CapacityMetric):
    id = "capacity.over_allocated_people"
    title = "People over-allocated"
    unit = "count"
    definition = (
        f"People whose bookings across every platform, summed, pass {OVER_ALLOCATED:.0%} of "
        "their capacity in two consecutive months or more of the window (capacity as in "
        "capacity.utilization). Detail: how many of them no single platform shows over capacity."
    )

    def compute(self, ctx: MetricContext, by: Sequence[str] = ()) -> MetricResult:
        out = MetricResult(self.id, self.title, self.unit, None, 0)
        result = self.plan(ctx)
        if result is None:
            out.unsupported = _NO_ASSIGNMENTS
            return out
        over = result.over_allocated()
        out.n = len(result.person_cells)
        out.value = float(len(over))
        hidden = {f.person for f in result.findings if f.hidden} & set(over)
        out.detail = {"people": sorted(over), "seen_by_no_single_platform": sorted(hidden)}
        for dimension in by:
            if dimension == "department":
                counts: dict[str, float] = {}
                for key in over:
                    dept = result.people[key].department or "(none)"
                    counts[dept] = counts.get(dept, 0.0) + 1
                out.breakdown[dimension] = dict(sorted(counts.items()))
            elif dimension == "platform":
                counts = {}
                for key in over:
                    for platform in result.people[key].platforms:
                        counts[platform] = counts.get(platform, 0.0) + 1
                out.breakdown[dimension] = dict(sorted(counts.items()))
        return out

    def person_value(self, demand: float, capacity: float, over: bool) -> float:
        return 1.0 if over else 0.0


CAPACITY = [Utilization(), OverAllocatedPeople()]
