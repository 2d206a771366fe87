"""The candidates for funding, read from the store: demands and proposed work items of every
platform, each with its cost and benefit lines summed per fiscal year.

A candidate's money comes from its plan lines (``plan_lines``: the forecast, else the budget
plan, and the benefit plan); where a platform keeps none, from the business-case template's
``estimated_cost`` (a demand's) or the work item's own ``forecast_cost``/``budget``, as a
one-time cost in the fiscal year it starts. A candidate with neither is excluded and counted,
never taken as free; so is one whose lines are in a currency without an exchange rate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .economics import Economics, compute, fiscal_year, fy_label
from .settings import PortfolioConfig


@dataclass
class Candidate:
    """One investment a selection may fund."""

    source: str
    platform: str
    entity: str  # demand or work_item
    source_id: str
    number: str | None
    name: str
    state: str | None
    department: str | None
    url: str | None
    fields: dict[str, Any]
    yearly: dict[int, dict[str, float]] = field(default_factory=dict)
    currency: str | None = None
    money_from: str = ""
    """Where the money came from: ``plan_lines (forecast, benefit)`` or the template fields."""
    roles: dict[str, dict[int, float]] = field(default_factory=dict)
    """Role -> fiscal year -> staff hours the candidate needs."""
    economics: Economics | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.source}:{self.number or self.source_id}"

    @property
    def aliases(self) -> set[str]:
        names = {f"{self.source}:{self.source_id}", self.ref}
        if self.number:
            names.add(f"{self.source}:{self.number}")
        return names

    def cost_in(self, year: int) -> float:
        return self.yearly.get(year, {}).get("cost", 0.0)

    @property
    def total_cost(self) -> float:
        return sum(v.get("cost", 0.0) for v in self.yearly.values())

    def describe(self) -> dict[str, Any]:
        e = self.economics
        return {
            "candidate": self.ref,
            "platform": self.platform,
            "name": self.name,
            "department": self.department,
            "state": self.state,
            "cost": round(self.total_cost, 2),
            "npv": None if e is None or e.npv is None else round(e.npv, 2),
            "irr": None if e is None or e.irr is None else round(e.irr, 4),
            "irr_note": None if e is None else e.irr_note,
            "payback_years": None
            if e is None or e.payback_years is None
            else round(e.payback_years, 2),
            "discounted_payback_years": None
            if e is None or e.discounted_payback_years is None
            else round(e.discounted_payback_years, 2),
            "bcr": None if e is None or e.bcr is None else round(e.bcr, 3),
            "tco": None if e is None or e.tco is None else round(e.tco, 2),
            "money_from": self.money_from,
            "platform_discount_rate": self.fields.get("platform_discount_rate"),
            "url": self.url,
        }


@dataclass
class CandidateSet:
    candidates: list[Candidate]
    excluded: list[dict[str, str]]
    """One row per record that is not a candidate although its state makes it one: why."""

    @property
    def excluded_counts(self) -> dict[str, int]:
        return dict(Counter(row["reason_kind"] for row in self.excluded))

    def find(self, name: str) -> Candidate | None:
        for c in self.candidates:
            if name in c.aliases:
                return c
        return None


def _start(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _period_year(line: Mapping[str, Any], start_month: int) -> int | None:
    start = _start(line.get("period_start"))
    if start is not None:
        return fiscal_year(start, start_month)
    period = str(line.get("fiscal_period") or "")
    if period.upper().startswith("FY") and period[2:6].isdigit():
        return int(period[2:6])
    if len(period) >= 7 and period[:4].isdigit() and period[4] == "-" and period[5:7].isdigit():
        return fiscal_year(date(int(period[:4]), int(period[5:7]), 1), start_month)
    return None


def build(
    demands: Iterable[Mapping[str, Any]],
    work_items: Iterable[Mapping[str, Any]],
    plan_lines: Iterable[Mapping[str, Any]],
    policy: PortfolioConfig,
    *,
    source: str | None = None,
) -> CandidateSet:
    """Candidates from records as the store exports them (dicts of the model's fields)."""
    rules = policy.candidates
    lines_by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for line in plan_lines:
        if not line.get("deleted"):
            lines_by[(line["source"], line["investment_id"])].append(line)
    records: list[tuple[str, Mapping[str, Any]]] = []
    for row in demands:
        if row.get("state") in rules.demand_states:
            records.append(("demand", row))
    for row in work_items:
        if row.get("kind") in rules.work_item_kinds and row.get("state") in rules.work_item_states:
            records.append(("work_item", row))
    out = CandidateSet([], [])
    for entity, row in records:
        if row.get("deleted") or (source and row["source"] != source):
            continue
        candidate = Candidate(
            source=row["source"],
            platform=row["platform"],
            entity=entity,
            source_id=row["source_id"],
            number=row.get("number"),
            name=row.get("name") or row["source_id"],
            state=row.get("state"),
            department=row.get("department"),
            url=row.get("url"),
            fields=_fields(entity, row),
        )
        problem = _money(
            candidate, row, lines_by.get((row["source"], row["source_id"]), []), policy
        )
        if problem is not None:
            kind, reason = problem
            out.excluded.append({"candidate": candidate.ref, "platform": candidate.platform,
                                 "name": candidate.name, "reason_kind": kind, "reason": reason})  # fmt: skip
            continue
        candidate.economics = compute(
            candidate.yearly, rate=policy.discount_rate, horizon=policy.horizon_years
        )
        out.candidates.append(candidate)
    out.candidates.sort(key=lambda c: c.ref)
    _twins(out, rules)
    return out


def _twins(out: CandidateSet, rules: Any) -> None:
    """One investment held on two platforms (a Clarity idea mirroring a ServiceNow demand, a
    project piloted in Clarity) is one candidate: the record with plan lines is kept, else the
    first by name; the other is excluded as a duplicate, so no budget is spent twice."""
    seen: dict[tuple[str, str, str], Candidate] = {}
    keep: list[Candidate] = []
    prefer = {p: n for n, p in enumerate(rules.prefer_platforms)}
    ordered = sorted(out.candidates, key=lambda c: (not c.money_from.startswith("plan_lines"),
                                                    prefer.get(c.platform, len(prefer)), c.ref))  # fmt: skip
    for c in ordered:
        key = (c.entity, c.name.strip().lower(), (c.department or "").strip().lower())
        twin = seen.get(key)
        if twin is not None and twin.platform != c.platform and c.department:
            out.excluded.append({"candidate": c.ref, "platform": c.platform, "name": c.name,
                                 "reason_kind": "duplicate",
                                 "reason": f"the same investment as {twin.ref} (same name and department); "
                                 f"{twin.ref} is the candidate"})  # fmt: skip
            continue
        seen.setdefault(key, c)
        keep.append(c)
    out.candidates = sorted(keep, key=lambda c: c.ref)


def _fields(entity: str, row: Mapping[str, Any]) -> dict[str, Any]:
    extra = row.get("extra") or {}
    data = {
        "priority": row.get("priority"),
        "score": row.get("score"),
        "strategic_goals": row.get("strategic_goals") or [],
        "business_case_approved": row.get("business_case_approved"),
        "department": row.get("department"),
        "state": row.get("state"),
        "estimated_cost": row.get("estimated_cost")
        if entity == "demand"
        else row.get("forecast_cost") or row.get("budget"),
        "planned_start": row.get("planned_start")
        if entity == "work_item"
        else row.get("submitted_at"),
        "extra": extra,
    }
    for key in ("risk", "mandate", "urgency"):
        value = extra.get(key)
        if isinstance(value, Mapping):
            value = value.get("value", value.get("display_value"))
        data[key] = value
    return data


def _money(
    candidate: Candidate,
    row: Mapping[str, Any],
    lines: list[Mapping[str, Any]],
    policy: PortfolioConfig,
) -> tuple[str, str] | None:
    """Fill the candidate's yearly amounts; or (kind, reason) why it cannot be a candidate."""
    month = policy.fiscal_year_start_month
    planned = [line for line in lines if not line.get("actual")]
    cost_lines: list[Mapping[str, Any]] = []
    chosen = None
    for kind in policy.cost_plans:
        cost_lines = [line for line in planned if line.get("plan") == kind]
        if cost_lines:
            chosen = kind
            break
    benefit_lines = [line for line in planned if line.get("plan") == "benefit"]
    yearly: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    if cost_lines:
        candidate.money_from = f"plan_lines ({chosen}{', benefit' if benefit_lines else ''})"
        for line in [*cost_lines, *benefit_lines]:
            rate = _rate(line.get("currency"), policy)
            if rate is None:
                return ("currency", f"plan line {line['source_id']} is in {line.get('currency')}, "
                        f"the portfolio in {policy.currency}, and no exchange rate is configured "
                        f"(portfolio.exchange_rates.{line.get('currency')})")  # fmt: skip
            year = _period_year(line, month)
            if year is None:
                return (
                    "period",
                    f"plan line {line['source_id']} has no fiscal period or start date",
                )
            amount = float(line["amount"]) * rate
            if line.get("plan") == "benefit":
                yearly[year]["benefit"] += amount
            else:
                yearly[year]["cost"] += amount
                nature = "capital" if line.get("cost_type") == "capital" else "operating"
                yearly[year][nature] += amount
                if (line.get("extra") or {}).get("role"):
                    role = str(line["extra"]["role"])
                    hours = float(line["extra"].get("hours") or 0)
                    candidate.roles.setdefault(role, {})
                    candidate.roles[role][year] = candidate.roles[role].get(year, 0.0) + hours
            candidate.lines.append({k: line.get(k) for k in (
                "source_id", "plan", "plan_name", "fiscal_period", "cost_type", "category",
                "amount", "currency")} | {"fiscal_year": fy_label(year), "converted": amount})  # fmt: skip
        candidate.currency = policy.currency
    elif _business_case(candidate, policy, yearly):
        candidate.currency = policy.currency
    else:
        estimate = candidate.fields.get("estimated_cost")
        if estimate is None or float(estimate) <= 0:
            what = "estimated_cost" if candidate.entity == "demand" else "forecast_cost or budget"
            return ("no cost", f"no cost plan lines and no {what}: a candidate without a cost is "
                    "never taken as free")  # fmt: skip
        start = _start(candidate.fields.get("planned_start"))
        year = (
            max(fiscal_year(start, month), _budget_year(policy)) if start else _budget_year(policy)
        )
        field_name = "estimated_cost" if candidate.entity == "demand" else "forecast_cost/budget"
        candidate.money_from = f"business case template ({field_name}, one-time)"
        yearly[year]["cost"] += float(estimate)
        capital_share = _capital_share(candidate)
        yearly[year]["capital"] += float(estimate) * capital_share
        yearly[year]["operating"] += float(estimate) * (1 - capital_share)
        for line in benefit_lines:
            by = _period_year(line, month)
            rate = _rate(line.get("currency"), policy)
            if by is not None and rate is not None:
                yearly[by]["benefit"] += float(line["amount"]) * rate
        candidate.currency = policy.currency
    candidate.yearly = {y: dict(v) for y, v in yearly.items()}
    return None


def _first_number(extra: Mapping[str, Any], names: list[str]) -> tuple[str, float] | None:
    for name in names:
        value = extra.get(name)
        if isinstance(value, Mapping):
            value = value.get("value")
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        return name, number
    return None


def _business_case(
    candidate: Candidate, policy: PortfolioConfig, yearly: dict[int, dict[str, float]]
) -> bool:
    """Fill yearly amounts from the business-case fields a platform keeps on the record
    (Project Server custom fields); False when it keeps none."""
    rules = policy.business_case
    extra = candidate.fields.get("extra") or {}
    capital = _first_number(extra, rules.capital)
    operating = _first_number(extra, rules.operating_per_year)
    if capital is None and operating is None:
        return False
    benefit = _first_number(extra, rules.benefit_per_year)
    years = _first_number(extra, rules.benefit_years)
    start = _start(candidate.fields.get("planned_start"))
    month = policy.fiscal_year_start_month
    first = max(fiscal_year(start, month), _budget_year(policy)) if start else _budget_year(policy)
    if capital is not None and capital[1]:
        yearly[first]["cost"] += capital[1]
        yearly[first]["capital"] += capital[1]
    if operating is not None and operating[1]:
        for k in range(1, rules.operating_years + 1):
            yearly[first + k]["cost"] += operating[1]
            yearly[first + k]["operating"] += operating[1]
    count = int(years[1]) if years is not None else rules.operating_years
    if benefit is not None and benefit[1]:
        for k in range(1, count + 1):
            yearly[first + k]["benefit"] += benefit[1]
    names = [f[0] for f in (capital, operating, benefit, years) if f is not None]
    candidate.money_from = f"business case template (fields {', '.join(names)})"
    return any(v.get("cost") for v in yearly.values())


def _capital_share(candidate: Candidate) -> float:
    """The capital part of a one-time estimate, from the platform's own split where it keeps
    one (Jira Align epics: ``totalCapEx``/``totalOpEx``, else ``capitalized``); 0 without."""
    extra = candidate.fields.get("extra") or {}
    if extra.get("discountRate") is not None:
        # Jira Align keeps its own rate per epic; the City's one rate judges every platform
        # alike, and the platform's is shown beside it.
        candidate.fields["platform_discount_rate"] = extra["discountRate"]
    capex, opex = extra.get("totalCapEx"), extra.get("totalOpEx")
    if isinstance(capex, int | float) and isinstance(opex, int | float) and capex + opex > 0:
        return float(capex) / float(capex + opex)
    if extra.get("capitalized") in (1, True, "1", "true"):
        return 1.0
    return 0.0


def _budget_year(policy: PortfolioConfig) -> int:
    if policy.budget_year:
        return int(policy.budget_year[2:])
    return fiscal_year(datetime.now(UTC), policy.fiscal_year_start_month) + 1


def _rate(currency: str | None, policy: PortfolioConfig) -> float | None:
    if currency in (None, "", policy.currency):
        return 1.0
    return policy.exchange_rates.get(str(currency))


def load(store: Any, policy: PortfolioConfig, *, source: str | None = None) -> CandidateSet:
    """Candidates from a store."""
    return build(
        store.export("demand", source=source),
        store.export("work_item", source=source),
        store.export("plan_line", source=source),
        policy,
        source=source,
    )
