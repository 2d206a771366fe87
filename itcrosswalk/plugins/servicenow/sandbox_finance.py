"""The emulator's SPM financial tables: fiscal periods, cost plans and benefit plans of demands,
and their per-period breakdowns, as docs/platforms/servicenow_spm_finance.md describes them.

The traps kept: breakdowns are per fiscal *month* (a fiscal year is twelve rows), and besides
each plan's own rows (``breakdown_type = requirement``) the instance keeps a roll-up row per
demand and period (``breakdown_type = task``) that a naive sum counts twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any


def _sid(*parts: str) -> str:
    return hashlib.md5("/".join(("fin", *parts)).encode()).hexdigest()  # noqa: S324 - an id


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


REFERENCES = {
    "fiscal_period": {"parent": "fiscal_period"},
    "cost_plan": {
        "task": "task",
        "resource_type": "resource_type_definition",
        "role": "resource_role",
        "start_fiscal_period": "fiscal_period",
        "end_fiscal_period": "fiscal_period",
    },
    "cost_plan_breakdown": {
        "cost_plan": "cost_plan",
        "task": "task",
        "fiscal_period": "fiscal_period",
    },
    "benefit_plan": {
        "task": "task",
        "start_fiscal_period": "fiscal_period",
        "end_fiscal_period": "fiscal_period",
    },
    "benefit_plan_breakdown": {
        "benefit_plan": "benefit_plan",
        "task": "task",
        "fiscal_period": "fiscal_period",
    },
}
CURRENCY = {
    "cost_plan": {"unit_cost", "total_cost"},
    "cost_plan_breakdown": {"cost", "cost_default_currency", "actual", "budget"},
    "benefit_plan": {"estimated_benefit", "total_benefit", "actual_benefit"},
    "benefit_plan_breakdown": {"entered_benefit", "benefit_default_currency", "actual_benefit"},
}
DISPLAY = {"fiscal_period": "name", "resource_type_definition": "name", "resource_role": "name",
           "cost_plan": "name", "benefit_plan": "name"}  # fmt: skip


def _month(fy: int, index: int) -> tuple[datetime, datetime]:
    """The ``index``-th month (0 = July) of fiscal year ``fy`` (FY2027 starts in July 2026)."""
    year, month = (fy - 1, 7 + index) if index < 6 else (fy, index - 5)
    start = datetime(year, month, 1, tzinfo=UTC)
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, nxt


def add_finance(emulator: Any) -> None:
    """Render the world's investment lines into the emulator's tables."""
    from . import sandbox as base

    for table, refs in REFERENCES.items():
        base.REFERENCES.setdefault(table, {}).update(refs)
    for table, cols in CURRENCY.items():
        base.CURRENCY.setdefault(table, set()).update(cols)
    for table, name in DISPLAY.items():
        base.DISPLAY_FIELD.setdefault(table, name)
    w = emulator.world
    lines = [line for line in getattr(w, "investments", []) if line.platform == "servicenow"]
    if not lines:
        return
    add = emulator._add
    years = sorted({line.fiscal_year for line in lines})
    periods: dict[tuple[int, int], str] = {}
    for fy in range(years[0] - 1, years[-1] + 2):
        year_id = _sid("fy", str(fy))
        first, _ = _month(fy, 0)
        _, last = _month(fy, 11)
        add("fiscal_period", {"sys_id": year_id, "name": f"FY{fy % 100:02d}", "fiscal_type": "year",
                              "fiscal_start_date_time": _ts(first), "fiscal_end_date_time": _ts(last),
                              "parent": ""})  # fmt: skip
        for m in range(12):
            start, finish = _month(fy, m)
            sys_id = _sid("fp", str(fy), str(m))
            periods[(fy, m)] = sys_id
            add("fiscal_period", {"sys_id": sys_id, "name": f"FY{fy % 100:02d}: M{m + 1:02d}",
                                  "fiscal_type": "month", "fiscal_start_date_time": _ts(start),
                                  "fiscal_end_date_time": _ts(finish), "parent": year_id})  # fmt: skip
    for name in sorted({line.category for line in lines if line.plan != "benefit"}):
        add("resource_type_definition", {"sys_id": _sid("rt", name), "name": name})
    for role in sorted({line.role for line in lines if line.role}):
        add("resource_role", {"sys_id": _sid("role", role), "name": role})
    plans: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for line in lines:
        plans[(line.work_id, line.plan, line.plan_name)].append(line)
    rollup: dict[tuple[str, str], float] = defaultdict(float)
    for (task, plan, name), group in sorted(plans.items()):
        group.sort(key=lambda x: x.fiscal_year)
        first, last = group[0].fiscal_year, group[-1].fiscal_year
        plan_id = _sid("plan", task, plan, name)
        updated = max(x.updated for x in group)
        total = round(sum(x.amount for x in group), 2)
        common = {"sys_id": plan_id, "name": name, "task": task,
                  "start_fiscal_period": periods[(first, 0)],
                  "end_fiscal_period": periods[(last, 11)]}  # fmt: skip
        if plan == "benefit":
            add("benefit_plan", {**common, "category": "hard", "sub_category": "cost_savings",
                                 "benefit_type": "monetary", "currency": "USD",
                                 "estimated_benefit": f"{group[0].amount:.2f}",
                                 "total_benefit": f"{total:.2f}", "actual_benefit": "0",
                                 "nm_actual_benefit": "", "recurring": "true"},
                updated, updated)  # fmt: skip
        else:
            line0 = group[0]
            add("cost_plan", {**common,
                              "resource_type": _sid("rt", line0.category),
                              "role": _sid("role", line0.role) if line0.role else "",
                              "expense_type": "capex" if line0.cost_type == "capital" else "opex",
                              "unit_cost": f"{(line0.amount / line0.hours) if line0.hours else line0.amount:.2f}",
                              "quantity": f"{line0.hours:g}" if line0.hours else "1",
                              "recurring": str(len(group) > 1).lower(),
                              "total_cost": f"{total:.2f}", "currency": "USD"},
                updated, updated)  # fmt: skip
        for x in group:
            monthly = round(x.amount / 12, 2)
            for m in range(12):
                amount = monthly if m < 11 else round(x.amount - 11 * monthly, 2)
                period = periods[(x.fiscal_year, m)]
                row_id = _sid("bd", plan_id, period)
                if plan == "benefit":
                    add("benefit_plan_breakdown", {"sys_id": row_id, "benefit_plan": plan_id,
                        "task": task, "fiscal_period": period, "breakdown_type": "requirement",
                        "entered_benefit": f"{amount:.2f}", "benefit_default_currency": f"{amount:.2f}",
                        "actual_benefit": "0", "currency": "USD"}, updated, updated)  # fmt: skip
                else:
                    add("cost_plan_breakdown", {"sys_id": row_id, "cost_plan": plan_id,
                        "task": task, "fiscal_period": period, "breakdown_type": "requirement",
                        "cost": f"{amount:.2f}", "cost_default_currency": f"{amount:.2f}",
                        "actual": "0", "budget": "0", "currency": "USD",
                        "expense_type": "capex" if x.cost_type == "capital" else "opex"},
                        updated, updated)  # fmt: skip
                    rollup[(task, period)] += amount
    for (task, period), amount in sorted(rollup.items()):
        add("cost_plan_breakdown", {"sys_id": _sid("bd-task", task, period), "cost_plan": "",
                                    "task": task, "fiscal_period": period, "breakdown_type": "task",
                                    "cost": f"{amount:.2f}", "cost_default_currency": f"{amount:.2f}",
                                    "actual": "0", "budget": "0", "currency": "USD",
                                    "expense_type": ""}, w.now, w.now)  # fmt: skip
