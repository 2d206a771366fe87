"""Investment decisions across platforms: each candidate's economics on the City's one set of
assumptions, one ranked list, and the best portfolio a budget buys.

The rooms: :mod:`.settings` (the ``[portfolio]`` config), :mod:`.candidates` (demands and
proposals from the store with their plan lines), :mod:`.economics` (NPV, IRR, payback, BCR,
TCO), :mod:`.ahp` and :mod:`.scoring` (the scoring model), :mod:`.select` (the exact 0-1
program), :mod:`.report` (HTML and XLSX) and :mod:`.apply` (approving the funded demands).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .candidates import CandidateSet, load
from .economics import fy_label, parse_fy
from .scoring import Ranking, rank
from .select import SelectionError, build_model, select, write_lp
from .settings import PortfolioConfig, Scenario

__all__ = [
    "PortfolioConfig",
    "Scenario",
    "SelectionError",
    "economics_rows",
    "explain_rows",
    "rank_rows",
    "run_selection",
]

BY = ("platform", "source", "department", "state")


def economics_rows(cands: CandidateSet, by: str | None = None) -> list[dict[str, Any]]:
    """One row per candidate, or per ``by`` key with the sums (NPV and TCO add; IRR does not)."""
    rows = [c.describe() for c in cands.candidates]
    if by is None:
        return rows
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(by) or "(none)")].append(row)
    out = []
    for key, members in sorted(groups.items()):
        npvs = [m["npv"] for m in members if m["npv"] is not None]
        out.append({
            by: key, "candidates": len(members),
            "cost": round(sum(m["cost"] for m in members), 2),
            "npv": round(sum(npvs), 2) if npvs else None,
            "tco": round(sum(m["tco"] or 0 for m in members), 2),
            "positive_npv": sum(1 for n in npvs if n > 0),
        })  # fmt: skip
    return out


def explain_rows(cands: CandidateSet, rate: float) -> list[dict[str, Any]]:
    """Every input of every candidate's economics: one row per fiscal year."""
    rows = []
    for c in cands.candidates:
        e = c.economics
        if e is None:
            continue
        for t, year in enumerate(e.years):
            factor = 1 / (1 + rate) ** t
            rows.append({
                "candidate": c.ref, "platform": c.platform, "fiscal_year": fy_label(year), "t": t,
                "cost": round(e.costs[t], 2), "capital": round(e.capital[t], 2),
                "operating": round(e.operating[t], 2), "benefit": round(e.benefits[t], 2),
                "net": round(e.flows[t], 2), "discount_factor": round(factor, 6),
                "present_value": round(e.flows[t] * factor, 2), "money_from": c.money_from,
            })  # fmt: skip
    return rows


def rank_rows(ranking: Ranking) -> list[dict[str, Any]]:
    rows = []
    for item in ranking.items:
        row: dict[str, Any] = {"rank": item.rank, "candidate": item.candidate.ref,
                               "platform": item.candidate.platform, "name": item.candidate.name,
                               "score": round(item.score, 2)}  # fmt: skip
        for status in ranking.criteria:
            if status.supported:
                part = item.parts.get(status.id)
                row[status.id] = "missing" if part is None else round(part, 2)
        rows.append(row)
    return rows


def _scenarios(policy: PortfolioConfig, names: Sequence[str]) -> list[tuple[str, Scenario]]:
    """The named scenarios; none named: the one called ``default`` if configured, else none."""
    if not names:
        return [("default", policy.scenarios.get("default", Scenario()))]
    out = []
    for name in names:
        if name not in policy.scenarios:
            known = ", ".join(sorted(policy.scenarios)) or "none configured"
            raise SelectionError(f"no scenario {name!r} in [portfolio.scenarios] ({known})")
        out.append((name, policy.scenarios[name]))
    return out


def _store_capacity(store: Any, config: Any, cands: CandidateSet) -> dict[str, dict[int, float]]:
    """Each role's available hours per fiscal year from the capacity model (monthly capacity
    less what the platforms have booked already), over the years the candidates spend in."""
    from datetime import date

    from ..capacity import capacity_by_role

    if config is None:
        raise SelectionError("capacity_from_store needs the whole configuration (its calendar)")
    policy: PortfolioConfig = config.portfolio
    years = sorted({y for c in cands.candidates for y in c.yearly})
    if not years:
        return {}
    month = policy.fiscal_year_start_month
    start = date(years[0] - (1 if month > 1 else 0), month, 1)
    end = date(years[-1] + (0 if month > 1 else 1), month, 1)
    by_role = capacity_by_role(store, config, start=start, end=end, granularity="month")
    out: dict[str, dict[int, float]] = {}
    for role, periods in by_role.items():
        for label, slot in periods.items():
            year, mon = int(label[:4]), int(label[5:7])
            fy = year + (1 if month > 1 and mon >= month else 0)
            out.setdefault(role, {}).setdefault(fy, 0.0)
            out[role][fy] += slot["available"]
    return out


def run_selection(
    store: Any,
    policy: PortfolioConfig,
    *,
    config: Any = None,
    budget: float | None = None,
    fiscal_year: str | None = None,
    scenarios: Sequence[str] = (),
    objective: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Select for each scenario; the report's data (selections, excluded, warnings) and the
    models (for ``--lp``)."""
    cands = load(store, policy, source=source)
    ranking = rank(cands.candidates, policy.scoring)
    score_of = {id(i.candidate): i.score for i in ranking.items}
    excluded = {
        row["candidate"]: f"{row['reason_kind']}: {row['reason']}" for row in cands.excluded
    }
    year = parse_fy(fiscal_year) if fiscal_year else None
    selections, models = [], []
    for name, scenario in _scenarios(policy, scenarios):
        if objective:
            scenario = scenario.model_copy(update={"objective": objective})
        if scenario.objective == "npv":
            values = [
                c.economics.npv if c.economics and c.economics.npv is not None else 0.0
                for c in cands.candidates
            ]
        else:
            values = [score_of[id(c)] for c in cands.candidates]
        hours = _store_capacity(store, config, cands) if scenario.capacity_from_store else None
        model = build_model(cands.candidates, values, scenario, budget=budget, fiscal_year=year,
                            excluded=excluded, role_hours=hours)  # fmt: skip
        result = select(model, scenario=name)
        selections.append(result.as_json())
        models.append((name, model))
    return {
        "title": "Portfolio selection",
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "currency": policy.currency,
        "discount_rate": policy.discount_rate,
        "fiscal_year_start_month": policy.fiscal_year_start_month,
        "candidates": len(cands.candidates),
        "selections": selections,
        "excluded": cands.excluded,
        "warnings": ranking.warnings,
        "_models": models,
    }


def lp_text(name: str, model: Any) -> str:
    return write_lp(model, title=f"itcrosswalk portfolio selection, scenario {name}")
