"""Selection: the set of candidates that maximises total score (or NPV) under the budget, solved
exactly as a 0-1 mixed-integer program with HiGHS (``scipy.optimize.milp``), never greedily.

Constraints: the budget of each fiscal year the costs are phased over, the items the City must
fund, dependencies (A needs B: x_A <= x_B), mutually exclusive options (at most one of a group)
and, optionally, staff hours by role per fiscal year. Every unfunded candidate gets the reason
it was left out, found by adding it (with whatever it needs) to the optimum and naming what
that breaks. The model can be written out in CPLEX LP format so finance can check it with any
solver.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CrosswalkError
from .candidates import Candidate
from .economics import fy_label
from .settings import Scenario


class SelectionError(CrosswalkError):
    """A scenario that cannot be solved as given: a name that matches nothing, a dependency
    cycle, must-fund items that cannot all be funded."""

    exit_code = 1


@dataclass
class Row:
    """One linear constraint: sum(coef[i] * x_i) <= limit."""

    name: str
    kind: str  # budget, capacity, dependency, exclusive
    coefs: dict[int, float]
    limit: float
    label: str = ""


@dataclass
class Model:
    candidates: list[Candidate]
    values: list[float]
    rows: list[Row]
    must: set[int]
    years: list[int]
    objective: str
    depends: dict[int, list[int]] = field(default_factory=dict)
    groups: list[list[int]] = field(default_factory=list)
    time_limit: float | None = None
    """Seconds the solver may take; past them the best set found is reported with its gap."""
    gap: float | None = None
    """The relative gap of the last solve stopped by the time limit (0 when proven optimal)."""

    def var(self, i: int) -> str:
        return f"x{i + 1}"


@dataclass
class Selection:
    scenario: str
    objective: str
    status: str
    value: float
    funded: list[dict[str, Any]]
    unfunded: list[dict[str, Any]]
    years: list[dict[str, Any]]
    capacity: list[dict[str, Any]]
    frontier: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model: Model | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "objective": self.objective,
            "status": self.status,
            "value": self.value,
            "funded": self.funded,
            "unfunded": self.unfunded,
            "years": self.years,
            "capacity": self.capacity,
            "frontier": self.frontier,
            "warnings": self.warnings,
        }


def _lookup(candidates: Sequence[Candidate], excluded: Mapping[str, str]) -> Any:
    index: dict[str, int] = {}
    for i, c in enumerate(candidates):
        for alias in c.aliases:
            index[alias] = i

    def find(name: str, where: str) -> int:
        if name in index:
            return index[name]
        if name in excluded:
            raise SelectionError(f"{where}: {name} is not a candidate: {excluded[name]}")
        raise SelectionError(
            f"{where}: {name} matches no candidate (name them SOURCE:NUMBER or SOURCE:SOURCE_ID)"
        )

    return find


def find_cycle(depends: Mapping[int, Sequence[int]]) -> list[int] | None:
    """A dependency cycle as the list of its members (first repeated at the end), or None."""
    state: dict[int, int] = {}
    stack: list[int] = []

    def visit(node: int) -> list[int] | None:
        state[node] = 1
        stack.append(node)
        for nxt in depends.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(depends):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def build_model(
    candidates: Sequence[Candidate],
    values: Sequence[float],
    scenario: Scenario,
    *,
    budget: float | None = None,
    fiscal_year: int | None = None,
    excluded: Mapping[str, str] | None = None,
    role_hours: Mapping[str, Mapping[int, float]] | None = None,
) -> Model:
    """The 0-1 program for ``scenario`` (``budget``/``fiscal_year`` from the command line win);
    ``role_hours`` (role -> fiscal year -> hours, from the capacity model) bounds staff hours
    where the scenario gives no ``capacity`` of its own for the role."""
    excluded = excluded or {}
    find = _lookup(candidates, excluded)
    drop = {find(name, "exclude") for name in scenario.exclude}
    keep = [i for i in range(len(candidates)) if i not in drop]
    remap = {old: new for new, old in enumerate(keep)}
    cands = [candidates[i] for i in keep]
    vals = [float(values[i]) for i in keep]

    def pick(name: str, where: str) -> int:
        old = find(name, where)
        if old not in remap:
            raise SelectionError(f"{where}: {name} is excluded by the scenario's exclude list")
        return remap[old]

    if scenario.budgets:
        from .economics import parse_fy

        limits = {parse_fy(k): v for k, v in scenario.budgets.items()}
        if budget is not None:
            limits = {y: budget for y in limits}
        years = sorted(limits)
    else:
        total = budget if budget is not None else scenario.budget
        if total is None:
            raise SelectionError("no budget: give --budget AMOUNT or the scenario's budget")
        from .economics import parse_fy

        if fiscal_year is not None:
            years = [fiscal_year]
        elif scenario.fiscal_years:
            years = sorted(parse_fy(y) for y in scenario.fiscal_years)
        else:
            years = sorted({y for c in cands for y, v in c.yearly.items() if v.get("cost")})
        limits = {y: total for y in years}
    rows: list[Row] = []
    for y in years:
        coefs = {i: c.cost_in(y) for i, c in enumerate(cands) if c.cost_in(y)}
        rows.append(
            Row(f"budget_{fy_label(y)}", "budget", coefs, limits[y], f"budget {fy_label(y)}")
        )
    needs: dict[int, dict[str, dict[int, float]]] = {}
    for i, c in enumerate(cands):
        for role, per_year in c.roles.items():
            needs.setdefault(i, {}).setdefault(role, {}).update(per_year)
    for name, per_role in scenario.needs.items():
        i = pick(name, "needs")
        active = [y for y in years if cands[i].cost_in(y)] or years[:1]
        for role, hours in per_role.items():
            for y in active:
                needs.setdefault(i, {}).setdefault(role, {})[y] = hours
    limits_by_role: dict[str, dict[int, float]] = {
        role: {y: float(hours) for y, hours in per_year.items()}
        for role, per_year in (role_hours or {}).items()
    }
    for role, cap in scenario.capacity.items():
        limits_by_role[role] = dict.fromkeys(years, float(cap))
    for role, per_year in sorted(limits_by_role.items()):
        for y in years:
            coefs = {
                i: r[role].get(y, 0.0) for i, r in needs.items() if role in r and r[role].get(y)
            }
            if coefs:
                limit = max(per_year.get(y, 0.0), 0.0)
                rows.append(Row(_name(f"capacity_{role}_{fy_label(y)}"), "capacity", coefs, limit,
                                f"{role} hours {fy_label(y)}"))  # fmt: skip
    depends: dict[int, list[int]] = {}
    for name, needed in scenario.depends.items():
        i = pick(name, "depends")
        for other in needed:
            depends.setdefault(i, []).append(pick(other, f"depends.{name}"))
    cycle = find_cycle(depends)
    if cycle:
        path = " -> ".join(cands[i].ref for i in cycle)
        raise SelectionError(f"dependency cycle: {path}; a candidate cannot need itself")
    for i, wanted in sorted(depends.items()):
        for j in wanted:
            rows.append(Row(f"needs_{i + 1}_{j + 1}", "dependency", {i: 1.0, j: -1.0}, 0.0,
                            f"{cands[i].ref} needs {cands[j].ref}"))  # fmt: skip
    groups: list[list[int]] = []
    for n, group in enumerate(scenario.exclusive, start=1):
        members = sorted({pick(name, f"exclusive[{n}]") for name in group})
        groups.append(members)
        rows.append(Row(f"exclusive_{n}", "exclusive", dict.fromkeys(members, 1.0), 1.0,
                        "one of " + ", ".join(cands[i].ref for i in members)))  # fmt: skip
    must = {pick(name, "must_fund") for name in scenario.must_fund}
    return Model(cands, vals, rows, must, years, scenario.objective, depends, groups,
                 time_limit=scenario.time_limit_seconds)  # fmt: skip


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", text)


def solve(
    model: Model, *, must: set[int] | None = None, scale: float = 1.0
) -> tuple[str, list[int], float]:
    """Solve the model (budget rows scaled by ``scale``): (status, funded indexes, value)."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    n = len(model.candidates)
    must = model.must if must is None else must
    if n == 0:
        return ("optimal", [], 0.0)
    r_idx, c_idx, data, upper = [], [], [], []
    for k, row in enumerate(model.rows):
        for i, coef in row.coefs.items():
            r_idx.append(k)
            c_idx.append(i)
            data.append(coef)
        upper.append(row.limit * scale if row.kind == "budget" else row.limit)
    lower_bounds = np.zeros(n)
    for i in must:
        lower_bounds[i] = 1
    constraints = []
    if model.rows:
        matrix = coo_array((data, (r_idx, c_idx)), shape=(len(model.rows), n)).tocsr()
        constraints.append(LinearConstraint(matrix, -np.inf, np.array(upper)))
    result = milp(
        c=-np.array(model.values),
        integrality=np.ones(n),
        bounds=Bounds(lower_bounds, np.ones(n)),
        constraints=constraints,
        options={
            "mip_rel_gap": 0.0,
            **({"time_limit": model.time_limit} if model.time_limit else {}),
        },
    )
    if result.status == 2:
        return ("infeasible", [], math.nan)
    if result.x is None:
        raise SelectionError(f"the solver stopped without a solution: {result.message}")
    funded = [i for i in range(n) if result.x[i] > 0.5]
    status = "optimal"
    model.gap = 0.0
    if result.status == 1:  # the time limit: a feasible set, not proven best
        status = "time_limit"
        model.gap = float(getattr(result, "mip_gap", math.nan))
    return (status, funded, float(sum(model.values[i] for i in funded)))


def conflicting_must_fund(model: Model) -> list[int]:
    """The smallest set of must-fund items that cannot all be funded together: by size up to
    three when there are few, else an irreducible set found by deletion (every item needed)."""
    must = sorted(model.must)
    if len(must) <= 12:
        for size in (1, 2, 3):
            for subset in itertools.combinations(must, size):
                if solve(model, must=set(subset))[0] == "infeasible":
                    return list(subset)
    core = list(must)
    for i in list(core):
        trial = [j for j in core if j != i]
        if solve(model, must=set(trial))[0] == "infeasible":
            core = trial
    return core


def _closure(model: Model, i: int, funded: set[int]) -> list[int]:
    out, todo = [], [i]
    while todo:
        j = todo.pop()
        if j in out or j in funded:
            continue
        out.append(j)
        todo.extend(model.depends.get(j, ()))
    return out


def reasons(model: Model, funded: set[int]) -> dict[int, list[tuple[str, str]]]:
    """Why each unfunded candidate was left out, as (binding kind, words): what adding it (and
    whatever it needs that is not funded) to the optimum breaks."""
    used = [sum(c for i, c in row.coefs.items() if i in funded) for row in model.rows]
    out: dict[int, list[tuple[str, str]]] = {}
    for i in range(len(model.candidates)):
        if i in funded:
            continue
        why: list[tuple[str, str]] = []
        for group in model.groups:
            if i in group:
                taken = [model.candidates[j].ref for j in group if j in funded]
                if taken:
                    why.append(("exclusive", f"exclusive with {', '.join(taken)}, funded instead"))
        bundle = _closure(model, i, funded)
        missing = [model.candidates[j].ref for j in bundle if j != i]
        if missing:
            why.append(("dependency", f"needs {', '.join(missing)}, not funded"))
        for row, use in zip(model.rows, used, strict=True):
            if row.kind not in ("budget", "capacity"):
                continue
            extra = sum(row.coefs.get(j, 0.0) for j in bundle)
            if extra > 0 and use + extra > row.limit + 1e-6:
                left = max(row.limit - use, 0.0)
                unit = " h" if row.kind == "capacity" else ""
                why.append(
                    (row.kind, f"{row.label}: needs {extra:,.0f}{unit}, {left:,.0f}{unit} left")
                )
        if not why:
            value = sum(model.values[j] for j in bundle)
            why.append(("value", "adds nothing to the objective" if value <= 0
                        else "an equal-value tie with the funded set"))  # fmt: skip
        out[i] = why
    return out


def select(
    model: Model,
    *,
    scenario: str = "default",
    frontier_levels: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
) -> Selection:
    """Solve, explain, and trace the efficient frontier around the budget."""
    if model.must:
        status, _f, _v = solve(model)
        if status == "infeasible":
            core = conflicting_must_fund(model)
            names = ", ".join(model.candidates[i].ref for i in core)
            raise SelectionError(
                f"the must-fund items cannot all be funded: {names} together break the budget, "
                "capacity, dependency or exclusive rules (drop one, or raise the budget)"
            )
    status, funded_list, value = solve(model)
    gap = model.gap
    funded = set(funded_list)
    why = reasons(model, funded)
    rows_f: list[dict[str, Any]] = []
    rows_u: list[dict[str, Any]] = []
    for i, c in enumerate(model.candidates):
        cost = sum(c.cost_in(y) for y in model.years)
        base = {
            "candidate": c.ref,
            "platform": c.platform,
            "name": c.name,
            "value": round(model.values[i], 3),
            "cost": round(cost, 2),
            "per_million": round(model.values[i] / cost * 1e6, 3) if cost else None,
            "must_fund": i in model.must,
            "entity": c.entity,
            "source": c.source,
            "source_id": c.source_id,
            "url": c.url,
        }
        if i in funded:
            rows_f.append(base)
        else:
            rows_u.append({**base, "reason": "; ".join(text for _k, text in why[i]),
                           "binding": sorted({kind for kind, _t in why[i]})})  # fmt: skip
    rows_f.sort(key=lambda r: -float(r["value"]))
    rows_u.sort(key=lambda r: -float(r["value"]))
    years, capacity = [], []
    for row in model.rows:
        use = sum(coef for i, coef in row.coefs.items() if i in funded)
        entry = {"constraint": row.label, "limit": row.limit, "used": round(use, 2),
                 "left": round(row.limit - use, 2)}  # fmt: skip
        if row.kind == "budget":
            years.append(entry)
        elif row.kind == "capacity":
            capacity.append(entry)
    warnings = []
    if status == "time_limit":
        warnings.append(
            f"not proven optimal: the solver stopped at its {model.time_limit:g} s limit with a "
            f"relative gap of {100 * (gap or 0):.3f}% (raise time_limit_seconds for the proof)"
        )
    selection = Selection(
        scenario, model.objective, status, value, rows_f, rows_u, years, capacity,
        warnings=warnings, model=model,
    )  # fmt: skip
    for level in frontier_levels:
        st, picked, val = solve(model, scale=level)
        spend = sum(model.candidates[i].cost_in(y) for i in picked for y in model.years)
        selection.frontier.append({
            "budget_factor": level,
            "budget": round(sum(r.limit for r in model.rows if r.kind == "budget") * level, 2),
            "value": None if st == "infeasible" else round(val, 3),
            "funded": None if st == "infeasible" else len(picked),
            "spend": None if st == "infeasible" else round(spend, 2),
            "status": st,
        })  # fmt: skip
    return selection


def _term(coef: float, var: str, first: bool) -> str:
    if first:
        return f"{coef:.10g} {var}"
    return f"{'-' if coef < 0 else '+'} {abs(coef):.10g} {var}"


def write_lp(model: Model, *, title: str = "itcrosswalk portfolio selection") -> str:
    """The exact model in CPLEX LP format, one comment line per variable naming its candidate."""
    lines = [f"\\ {title}", f"\\ objective: maximise total {model.objective}"]
    for i, c in enumerate(model.candidates):
        lines.append(f"\\ {model.var(i)} = {c.ref} ({c.platform}) {c.name[:60]}")
    lines.append("Maximize")
    terms = [_term(v, model.var(i), i == 0) for i, v in enumerate(model.values)]
    lines.append(" obj: " + (" ".join(terms) if terms else "0 x1"))
    lines.append("Subject To")
    for row in model.rows:
        parts = [
            _term(coef, model.var(i), k == 0)
            for k, (i, coef) in enumerate(sorted(row.coefs.items()))
        ]
        lines.append(f" {row.name}: {' '.join(parts) if parts else '0 x1'} <= {row.limit:.10g}")
    for i in sorted(model.must):
        lines.append(f" must_{model.var(i)}: 1 {model.var(i)} >= 1")
    lines.append("Binary")
    names = [model.var(i) for i in range(len(model.candidates))]
    for start in range(0, len(names), 10):
        lines.append(" " + " ".join(names[start : start + 10]))
    lines.append("End")
    return "\n".join(lines) + "\n"
