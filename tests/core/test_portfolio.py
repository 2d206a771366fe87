"""Oracle tests of the portfolio economics, the AHP weights and the exact selection.

Each oracle is a worked case with a published answer; the citation is on the test.
"""

from __future__ import annotations

import math

import pytest

from itcrosswalk.core.portfolio import ahp, economics
from itcrosswalk.core.portfolio.candidates import Candidate
from itcrosswalk.core.portfolio.select import (
    SelectionError,
    build_model,
    select,
    solve,
    write_lp,
)
from itcrosswalk.core.portfolio.settings import Scenario


def _candidate(
    ref: str, costs: dict[int, float], *, platform: str = "servicenow", roles=None
) -> Candidate:
    source, number = ref.split(":")
    c = Candidate(
        source, platform, "demand", number.lower(), number, number, "submitted", "itd", None, {}
    )
    c.yearly = {y: {"cost": v, "capital": v, "operating": 0.0} for y, v in costs.items()}
    c.roles = roles or {}
    return c


# -- economics ---------------------------------------------------------------------------------


def test_npv_irr_payback_brigham_project_s() -> None:
    """Brigham & Houston, *Fundamentals of Financial Management*, capital budgeting chapter,
    Project S: cash flows -1,000, 500, 400, 300, 100 at a 10% cost of capital: NPV $78.82,
    IRR 14.49%, payback 2.33 years, discounted payback 2.95 years."""
    flows = [-1000, 500, 400, 300, 100]
    assert economics.npv(0.10, flows) == pytest.approx(78.82, abs=0.005)
    found = economics.irr(flows)
    assert found.value == pytest.approx(0.1449, abs=5e-5)
    assert found.note is None
    assert economics.payback(flows) == pytest.approx(2.33, abs=0.005)
    assert economics.payback(flows, 0.10) == pytest.approx(2.95, abs=0.005)


def test_npv_irr_brigham_project_l() -> None:
    """The same chapter's Project L: -1,000, 100, 300, 400, 675 at 10%: NPV $100.40,
    IRR 13.55%; cumulative flows -900, -600, -200, +475 so payback 3 + 200/675 years."""
    flows = [-1000, 100, 300, 400, 675]
    assert economics.npv(0.10, flows) == pytest.approx(100.40, abs=0.005)
    assert economics.irr(flows).value == pytest.approx(0.1355, abs=5e-5)
    assert economics.payback(flows) == pytest.approx(3 + 200 / 675)


def test_several_irrs_are_said_not_guessed() -> None:
    """Brealey, Myers & Allen, *Principles of Corporate Finance*, "Pitfall 2 — multiple rates of
    return": C0 = -4,000, C1 = +25,000, C2 = -25,000 has two IRRs, 25% and 400%."""
    found = economics.irr([-4000, 25000, -25000])
    assert found.value is None
    assert found.roots == pytest.approx([0.25, 4.0])
    assert "several IRRs" in (found.note or "") and "25.00%" in (found.note or "")


def test_no_irr_when_the_flow_never_changes_sign() -> None:
    found = economics.irr([-100, -50, -10])
    assert found.value is None and found.roots == []
    assert "never changes sign" in (found.note or "")
    # A sign change with no real root: -1, +1, -1 (NPV < 0 at every rate).
    found = economics.irr([-1, 1, -1])
    assert found.value is None and "no real root" in (found.note or "")


def test_payback_never_reached_is_none() -> None:
    assert economics.payback([-100, 10, 10]) is None


def test_compute_bcr_and_five_year_tco() -> None:
    yearly = {2027: {"cost": 1000, "capital": 1000}, 2028: {"cost": 100, "benefit": 500},
              2029: {"cost": 100, "benefit": 500}, 2030: {"cost": 100, "benefit": 500},
              2031: {"cost": 100, "benefit": 500}, 2032: {"cost": 100, "benefit": 500}}  # fmt: skip
    e = economics.compute(yearly, rate=0.10, horizon=5)
    pv_b = sum(500 / 1.1**t for t in range(1, 6))
    pv_c = 1000 + sum(100 / 1.1**t for t in range(1, 6))
    assert e.bcr == pytest.approx(pv_b / pv_c)
    assert e.npv == pytest.approx(pv_b - pv_c)
    assert e.tco == pytest.approx(1400)  # the first five fiscal years, undiscounted


def test_fiscal_year_starts_in_july() -> None:
    from datetime import date

    assert economics.fiscal_year(date(2026, 6, 30)) == 2026
    assert economics.fiscal_year(date(2026, 7, 1)) == 2027
    assert economics.fiscal_year(date(2026, 7, 1), 1) == 2026
    assert economics.parse_fy("FY27") == 2027 and economics.parse_fy("FY2027") == 2027


# -- AHP ---------------------------------------------------------------------------------------


def test_ahp_saaty_three_criteria() -> None:
    """Saaty's 3×3 example (*The Analytic Hierarchy Process*, 1980; reproduced in most AHP
    tutorials): A = [[1, 3, 5], [1/3, 1, 3], [1/5, 1/3, 1]] has priorities 0.637, 0.258, 0.105,
    lambda_max 3.039, CI 0.019 and CR 0.033 (RI = 0.58 for n = 3)."""
    result = ahp.weights([[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]])
    assert result.weights == pytest.approx([0.637, 0.258, 0.105], abs=5e-4)
    assert result.lambda_max == pytest.approx(3.039, abs=5e-4)
    assert result.ci == pytest.approx(0.019, abs=5e-4)
    assert result.cr == pytest.approx(0.033, abs=5e-4)
    assert result.warning is None


def test_ahp_consistent_matrix_gives_exact_weights() -> None:
    w = [0.5, 0.3, 0.2]
    matrix = [[a / b for b in w] for a in w]
    result = ahp.weights(matrix)
    assert result.weights == pytest.approx(w)
    assert result.cr == pytest.approx(0, abs=1e-9)


def test_ahp_inconsistent_matrix_warns_naming_the_pairs() -> None:
    # cost >> value >> risk, but risk >> cost: a preference cycle.
    matrix = [[1, 5, 1 / 5], [1 / 5, 1, 5], [5, 1 / 5, 1]]
    result = ahp.weights(matrix, ["cost", "value", "risk"])
    assert result.cr is not None and result.cr > 0.1
    assert result.warning and "cost vs value" in result.warning
    assert {(r, c) for r, c, _g, _i in result.inconsistent} >= {("cost", "value")}


def test_ahp_rejects_a_matrix_that_is_not_reciprocal() -> None:
    with pytest.raises(ValueError, match="not reciprocal: a/b = 3"):
        ahp.weights([[1, 3], [3, 1]], ["a", "b"])


# -- selection ---------------------------------------------------------------------------------


def _knapsack(items: list[tuple[str, float, float]]) -> tuple[list[Candidate], list[float]]:
    cands = [_candidate(f"s:{name}", {2027: weight}) for name, _value, weight in items]
    return cands, [value for _name, value, _weight in items]


def test_knapsack_clrs_greedy_fails_exact_wins() -> None:
    """Cormen, Leiserson, Rivest & Stein, *Introduction to Algorithms*, §16.2: capacity 50,
    items (value, weight) (60, 10), (100, 20), (120, 30). Greedy by value per weight takes
    items 1 and 2 (160); the optimum is items 2 and 3, value 220."""
    cands, values = _knapsack([("I1", 60, 10), ("I2", 100, 20), ("I3", 120, 30)])
    model = build_model(cands, values, Scenario(budget=50))
    status, funded, value = solve(model)
    assert status == "optimal" and value == 220
    assert sorted(cands[i].ref for i in funded) == ["s:I2", "s:I3"]


def test_knapsack_with_a_dependency() -> None:
    """The same items where item 3 needs item 1: {2, 3} is no longer allowed, {1, 2, 3} weighs
    60; the optimum is {1, 3}, value 180 — and item 2 is left out on the budget."""
    cands, values = _knapsack([("I1", 60, 10), ("I2", 100, 20), ("I3", 120, 30)])
    model = build_model(cands, values, Scenario(budget=50, depends={"s:I3": ["s:I1"]}))
    selection = select(model)
    assert selection.value == 180
    assert {r["candidate"] for r in selection.funded} == {"s:I1", "s:I3"}
    (left,) = selection.unfunded
    assert left["candidate"] == "s:I2" and left["binding"] == ["budget"]
    assert "needs 20, 10 left" in left["reason"]


def test_knapsack_rosetta_code_tourist() -> None:
    """Rosetta Code "Knapsack problem/0-1": 22 items, a 400 dag knapsack; the optimum is value
    1030 at weight 396 (map, compass, water, sandwich, glucose, banana, suntan cream,
    waterproof trousers, waterproof overclothes, note-case, sunglasses, socks)."""
    items = [("map", 150, 9), ("compass", 35, 13), ("water", 200, 153), ("sandwich", 160, 50),
             ("glucose", 60, 15), ("tin", 45, 68), ("banana", 60, 27), ("apple", 40, 39),
             ("cheese", 30, 23), ("beer", 10, 52), ("suntan", 70, 11), ("camera", 30, 32),
             ("tshirt", 15, 24), ("trousers", 10, 48), ("umbrella", 40, 73),
             ("wtrousers", 70, 42), ("woverclothes", 75, 43), ("notecase", 80, 22),
             ("sunglasses", 20, 7), ("towel", 12, 18), ("socks", 50, 4), ("book", 10, 30)]  # fmt: skip
    cands, values = _knapsack(items)
    status, funded, value = solve(build_model(cands, values, Scenario(budget=400)))
    assert value == 1030
    assert sum(cands[i].cost_in(2027) for i in funded) == 396
    assert {cands[i].number for i in funded} == {"map", "compass", "water", "sandwich",
        "glucose", "banana", "suntan", "wtrousers", "woverclothes", "notecase",
        "sunglasses", "socks"}  # fmt: skip


def test_phased_budget_capacity_exclusive_and_must_fund() -> None:
    a = _candidate("s:A", {2027: 60, 2028: 10}, roles={"Developer": {2027: 500}})
    b = _candidate("s:B", {2027: 30, 2028: 60})
    c = _candidate("s:C", {2027: 20}, roles={"Developer": {2027: 600}})
    d = _candidate("s:D", {2027: 10})
    scenario = Scenario(budgets={"FY2027": 100, "FY2028": 50}, capacity={"Developer": 1000},
                        exclusive=[["s:C", "s:D"]], must_fund=["s:D"])  # fmt: skip
    selection = select(build_model([a, b, c, d], [50, 40, 30, 5], scenario))
    assert {r["candidate"] for r in selection.funded} == {"s:A", "s:D"}
    reasons = {r["candidate"]: r["reason"] for r in selection.unfunded}
    assert "budget FY2028: needs 60, 40 left" in reasons["s:B"]
    assert "exclusive with s:D, funded instead" in reasons["s:C"]
    assert "Developer hours FY2027: needs 600 h, 500 h left" in reasons["s:C"]
    assert [y["constraint"] for y in selection.years] == ["budget FY2027", "budget FY2028"]


def test_dependency_cycle_is_named() -> None:
    cands = [_candidate(f"s:{n}", {2027: 1}) for n in "ABC"]
    scenario = Scenario(budget=10, depends={"s:A": ["s:B"], "s:B": ["s:C"], "s:C": ["s:A"]})
    with pytest.raises(SelectionError, match=r"dependency cycle: s:A -> s:B -> s:C -> s:A"):
        build_model(cands, [1, 1, 1], scenario)


def test_infeasible_must_fund_reports_the_smallest_conflicting_set() -> None:
    cands = [_candidate(f"s:{n}", {2027: cost}) for n, cost in
             [("A", 10), ("B", 60), ("C", 50), ("D", 5)]]  # fmt: skip
    scenario = Scenario(budget=100, must_fund=["s:A", "s:B", "s:C", "s:D"])
    with pytest.raises(SelectionError, match=r"cannot all be funded: s:B, s:C together") as info:
        select(build_model(cands, [1, 1, 1, 1], scenario))
    assert "s:A" not in str(info.value) and "s:D" not in str(info.value)


def test_unknown_and_excluded_names_are_errors() -> None:
    cands = [_candidate("s:A", {2027: 1})]
    with pytest.raises(SelectionError, match="must_fund: s:Z matches no candidate"):
        build_model(cands, [1], Scenario(budget=1, must_fund=["s:Z"]))
    with pytest.raises(SelectionError, match="s:N is not a candidate: no cost"):
        build_model(cands, [1], Scenario(budget=1, must_fund=["s:N"]), excluded={"s:N": "no cost"})


def test_lp_file_is_the_same_model() -> None:
    """The LP text, read back by a minimal LP reader and solved, gives the same optimum."""
    cands, values = _knapsack([("I1", 60, 10), ("I2", 100, 20), ("I3", 120, 30)])
    model = build_model(
        cands, values, Scenario(budget=50, depends={"s:I3": ["s:I1"]}, must_fund=["s:I1"])
    )
    text = write_lp(model)
    assert (
        "Maximize" in text and "Subject To" in text and "Binary" in text and text.endswith("End\n")
    )
    assert "\\ x3 = s:I3" in text
    objective, rows = _read_lp(text)
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    names = sorted(objective)
    a = np.array([[row[0].get(n, 0.0) for n in names] for row in rows])
    lower = np.array([row[1] for row in rows])
    upper = np.array([row[2] for row in rows])
    result = milp(-np.array([objective[n] for n in names]), integrality=np.ones(len(names)),
                  bounds=Bounds(0, 1), constraints=[LinearConstraint(a, lower, upper)])  # fmt: skip
    assert -result.fun == pytest.approx(select(model).value) == 180


def _read_lp(text: str) -> tuple[dict[str, float], list[tuple[dict[str, float], float, float]]]:
    import re

    section, objective, rows = None, {}, []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("\\"):
            continue
        if line in ("Maximize", "Subject To", "Binary", "End"):
            section = line
            continue
        body = line.split(":", 1)[1] if ":" in line else line
        if section == "Maximize":
            objective = _terms(body)
        elif section == "Subject To":
            match = re.match(r"(.*?)(<=|>=)\s*(\S+)$", body)
            assert match, line
            terms, op, bound = _terms(match.group(1)), match.group(2), float(match.group(3))
            rows.append((terms, -math.inf, bound) if op == "<=" else (terms, bound, math.inf))
    return objective, rows


def _terms(text: str) -> dict[str, float]:
    import re

    out = {}
    for sign, coef, var in re.findall(r"([+-]?)\s*([0-9.eE+-]+)\s+(x\d+)", text):
        out[var] = float(coef) * (-1 if sign == "-" else 1)
    return out
