"""Candidates from the store, on SQLite and PostgreSQL alike, and the bad inputs of the
portfolio: a candidate with no cost, a currency mismatch, a criterion no platform fills."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from itcrosswalk.core.model import Demand, FinancePlanLine, WorkItem
from itcrosswalk.core.portfolio.candidates import load
from itcrosswalk.core.portfolio.scoring import rank
from itcrosswalk.core.portfolio.settings import Criterion, PortfolioConfig, ScoringModel
from itcrosswalk.core.store import Store

POLICY = PortfolioConfig(discount_rate=0.10, budget_year="FY2028", exchange_rates={"CAD": 0.75})


def _line(n: int, investment: str, plan: str, fy: int, amount: float, *, currency: str = "USD",
          cost_type: str = "capital", source: str = "snow") -> FinancePlanLine:  # fmt: skip
    return FinancePlanLine(
        source=source, platform="servicenow", source_id=f"line{n}", investment_id=investment,
        plan=plan, fiscal_period=f"FY{fy % 100:02d}: M01",
        period_start=datetime(fy - 1, 7, 1, tzinfo=UTC), cost_type=cost_type, amount=amount,
        currency=currency,
    )  # fmt: skip


def _records() -> dict[str, list]:
    demands = [
        Demand(
            source="snow",
            platform="servicenow",
            source_id="d1",
            number="DMND1",
            name="Fiber",
            state="submitted",
            department="ITD",
            priority=2,
            strategic_goals=["Safe city"],
            estimated_cost=999.0,
        ),  # fmt: skip
        Demand(
            source="snow",
            platform="servicenow",
            source_id="d2",
            number="DMND2",
            name="Kiosks",
            state="screening",
            department="Library",
            priority=4,
            estimated_cost=50_000.0,
            submitted_at=datetime(2025, 3, 1, tzinfo=UTC),
        ),  # fmt: skip
        Demand(
            source="snow",
            platform="servicenow",
            source_id="d3",
            number="DMND3",
            name="Nothing",
            state="qualified",
            department="Parks",
        ),  # fmt: skip
        Demand(
            source="snow",
            platform="servicenow",
            source_id="d4",
            number="DMND4",
            name="Imported",
            state="submitted",
            department="Water",
        ),  # fmt: skip
        Demand(
            source="snow",
            platform="servicenow",
            source_id="d5",
            number="DMND5",
            name="Done",
            state="completed",
            department="Water",
            estimated_cost=10.0,
        ),  # fmt: skip
    ]
    work = [WorkItem(source="pwa", platform="project_online", source_id="p1", number="MSP1",
                     kind="project", name="Permits", state="proposed", department="Planning",
                     forecast_cost=300_000.0, planned_start=datetime(2027, 9, 1, tzinfo=UTC))]  # fmt: skip
    lines = [
        # Brigham's Project S in thousands, from FY2028: -1000, +500, +400, +300, +100.
        _line(1, "d1", "forecast", 2028, 1_000_000),
        _line(2, "d1", "benefit", 2029, 500_000),
        _line(3, "d1", "benefit", 2030, 400_000),
        _line(4, "d1", "benefit", 2031, 300_000),
        _line(5, "d1", "benefit", 2032, 100_000),
        _line(6, "d1", "budget", 2028, 7_777_777),  # the forecast wins over the budget plan
        _line(7, "d4", "forecast", 2028, 100_000, currency="EUR"),
    ]
    return {"demand": demands, "work_item": work, "plan_line": lines}


def _store(url: str) -> Store:
    store = Store(url)
    for entity, records in _records().items():
        by_source: dict[str, list] = {}
        for r in records:
            by_source.setdefault(r.source, []).append(r)
        for source, page in by_source.items():
            store.write_page(source=source, stream=entity, entity=entity, records=page)
    return store


def test_candidates_from_the_store(store_url: str) -> None:
    store = _store(store_url)
    try:
        cands = load(store, POLICY)
    finally:
        store.close()
    by_ref = {c.ref: c for c in cands.candidates}
    assert sorted(by_ref) == ["pwa:MSP1", "snow:DMND1", "snow:DMND2"]
    fiber = by_ref["snow:DMND1"]
    assert fiber.money_from == "plan_lines (forecast, benefit)"
    assert fiber.economics is not None
    assert fiber.economics.npv == pytest.approx(78_819.75, abs=0.01)  # Brigham's $78.82 thousand
    assert fiber.economics.payback_years == pytest.approx(2 + 100 / 300)
    # The business-case template's estimate, placed in the first year a decision can fund.
    kiosks = by_ref["snow:DMND2"]
    assert kiosks.money_from.startswith("business case template (estimated_cost")
    assert kiosks.yearly == {2028: {"cost": 50_000.0, "capital": 0.0, "operating": 50_000.0}}
    assert by_ref["pwa:MSP1"].yearly[2028]["cost"] == 300_000  # September 2027 is in FY2028
    reasons = {row["candidate"]: row for row in cands.excluded}
    assert reasons["snow:DMND3"]["reason_kind"] == "no cost"
    assert "never taken as free" in reasons["snow:DMND3"]["reason"]
    assert reasons["snow:DMND4"]["reason_kind"] == "currency"
    assert "line7 is in EUR, the portfolio in USD" in reasons["snow:DMND4"]["reason"]
    assert cands.excluded_counts == {"no cost": 1, "currency": 1}
    assert "snow:DMND5" not in reasons  # completed: not a candidate at all, not an exclusion


def test_exchange_rate_converts_instead_of_excluding(store_url: str) -> None:
    store = _store(store_url)
    try:
        cands = load(store, POLICY.model_copy(update={"exchange_rates": {"EUR": 1.1}}))
    finally:
        store.close()
    imported = cands.find("snow:DMND4")
    assert imported is not None and imported.total_cost == pytest.approx(110_000)


def test_unsupported_criterion_is_said_and_renormalised_only_when_asked() -> None:
    from itcrosswalk.core.portfolio.candidates import build

    recs = _records()
    rows = {k: [r.model_dump() for r in v] for k, v in recs.items()}
    cands = build(rows["demand"], rows["work_item"], rows["plan_line"], POLICY).candidates
    criteria = [Criterion(id="priority", field="priority", better="lower", weight=0.5),
                Criterion(id="risk", field="extra.u_risk_score", weight=0.5)]  # fmt: skip
    kept = rank(cands, ScoringModel(criteria=criteria))
    status = {s.id: s for s in kept.criteria}
    assert not status["risk"].supported and "extra.u_risk_score" in (status["risk"].reason or "")
    assert status["risk"].weight == 0 and status["priority"].weight == 0.5
    assert max(i.score for i in kept.items) == pytest.approx(50)
    assert any("not redistributed" in w for w in kept.warnings)
    shared = rank(cands, ScoringModel(criteria=criteria, renormalize=True))
    assert {s.id: s.weight for s in shared.criteria} == {"priority": 1.0, "risk": 0.0}
    assert max(i.score for i in shared.items) == pytest.approx(100)
    # The project carries no priority: its part says missing, not 0 earned.
    permits = next(i for i in shared.items if i.candidate.ref == "pwa:MSP1")
    assert permits.parts["priority"] is None


def test_ahp_weights_feed_the_ranking() -> None:
    from itcrosswalk.core.portfolio.candidates import build

    rows = {k: [r.model_dump() for r in v] for k, v in _records().items()}
    cands = build(rows["demand"], rows["work_item"], rows["plan_line"], POLICY).candidates
    model = ScoringModel(
        criteria=[
            Criterion(id="npv", field="npv"),
            Criterion(id="cost", field="cost", better="lower"),
        ],
        ahp=[[1, 3], [1 / 3, 1]],
    )
    ranking = rank(cands, model)
    assert [s.weight for s in ranking.criteria] == pytest.approx([0.75, 0.25])
    assert ranking.items[0].candidate.ref == "snow:DMND1"  # the only positive NPV


def test_jira_align_epic_money_uses_its_capex_split_and_shows_its_discount_rate() -> None:
    from itcrosswalk.core.portfolio.candidates import build

    epic = WorkItem(source="ja", platform="jira_align", source_id="1206", kind="epic",
                    name="ERP", state="proposed", forecast_cost=400_000.0,
                    planned_start=datetime(2027, 8, 1, tzinfo=UTC),
                    extra={"totalCapEx": 300, "totalOpEx": 100, "discountRate": 10.0})  # fmt: skip
    (c,) = build([], [epic.model_dump()], [], POLICY).candidates
    assert c.yearly[2028] == {"cost": 400_000.0, "capital": 300_000.0, "operating": 100_000.0}
    assert c.describe()["platform_discount_rate"] == 10.0
    assert c.economics is not None and c.economics.rate == 0.10  # the City's, not the epic's


def test_project_server_business_case_custom_fields() -> None:
    """Project Server keeps no cost plans: a proposal's capital, yearly operating cost and
    yearly benefit come from its enterprise custom fields (decimals arrive as strings)."""
    from itcrosswalk.core.portfolio.candidates import build

    project = WorkItem(source="pwa", platform="project_online", source_id="p9", kind="project",
                       name="Permits", state="proposed", forecast_cost=1.0,
                       planned_start=datetime(2027, 7, 15, tzinfo=UTC),
                       extra={"CapitalCost": "1000.000000", "AnnualOperatingCost": "100.000000",
                              "AnnualBenefit": "500.000000", "BenefitYears": "3"})  # fmt: skip
    (c,) = build([], [project.model_dump()], [], POLICY).candidates
    assert c.money_from == ("business case template (fields CapitalCost, AnnualOperatingCost, "
                            "AnnualBenefit, BenefitYears)")  # fmt: skip
    e = c.economics
    assert e is not None and e.years == [2028, 2029, 2030, 2031, 2032]
    assert e.costs == [1000, 100, 100, 100, 100]  # four operating years (the default)
    assert e.benefits == [0, 500, 500, 500, 0]
    assert e.capital == [1000, 0, 0, 0, 0]
