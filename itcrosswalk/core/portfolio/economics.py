"""Investment economics computed one way for every platform: NPV, IRR, payback, benefit-cost
ratio and total cost of ownership, from yearly cash flows.

Conventions (stated so finance can check them): year 0 is the first fiscal year of the flows and
is not discounted; flows are end-of-year otherwise; payback interpolates linearly inside the year
it is reached. A cash flow whose sign changes more than once can have several IRRs, or none: that
is said, with the roots found, never one of them picked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any


def fiscal_year(moment: date | datetime, start_month: int = 7) -> int:
    """The fiscal year a day falls in, named by the calendar year it ends in (FY2027 starts on
    1 July 2026 when ``start_month`` is 7; with 1 it is the calendar year)."""
    return moment.year + (1 if start_month > 1 and moment.month >= start_month else 0)


def fy_label(year: int) -> str:
    return f"FY{year}"


def parse_fy(label: str) -> int:
    """``FY2027``, ``fy27`` or ``2027`` -> 2027."""
    text = label.strip().upper().removeprefix("FY")
    if not text.isdigit() or len(text) not in (2, 4):
        raise ValueError(f"{label!r} is not a fiscal year (FY2027)")
    number = int(text)
    return 2000 + number if number < 100 else number


def npv(rate: float, flows: Sequence[float]) -> float:
    """Net present value, the first flow at year 0."""
    return sum(cf / (1 + rate) ** t for t, cf in enumerate(flows))


def sign_changes(flows: Sequence[float]) -> int:
    signs = [1 if cf > 0 else -1 for cf in flows if cf != 0]
    return sum(1 for a, b in zip(signs, signs[1:], strict=False) if a != b)


@dataclass
class IrrResult:
    """The IRR when it is unique; else None, with every root found and the reason."""

    value: float | None
    roots: list[float] = field(default_factory=list)
    note: str | None = None


def irr(flows: Sequence[float]) -> IrrResult:
    """The internal rate(s) of return: the real roots r > -1 of NPV(r) = 0.

    Solved as the polynomial sum(cf_t * x**t) = 0 in x = 1/(1+r), whose positive real roots are
    all the IRRs (numpy's companion-matrix eigenvalues, refined by Newton on NPV).
    """
    import numpy as np

    values = [float(cf) for cf in flows]
    while values and values[-1] == 0:
        values.pop()
    changes = sign_changes(values)
    if changes == 0:
        return IrrResult(None, [], "no IRR: the cash flow never changes sign")
    coefficients = list(reversed(values))  # numpy wants the highest power first
    roots: list[float] = []
    for x in np.roots(coefficients):
        if abs(x.imag) > 1e-9 * max(1.0, abs(x.real)) or x.real <= 0:
            continue
        r = float(1 / x.real - 1)
        r = _refine(values, r)
        if all(abs(r - seen) > 1e-7 for seen in roots):
            roots.append(r)
    roots.sort()
    if not roots:
        return IrrResult(
            None, [], f"no IRR: NPV has no real root (the sign changes {changes} times)"
        )
    if len(roots) > 1:
        shown = ", ".join(f"{100 * r:.2f}%" for r in roots)
        return IrrResult(
            None,
            roots,
            f"several IRRs ({shown}): the cash flow changes sign {changes} times; use NPV",
        )
    note = None if changes == 1 else f"one IRR although the sign changes {changes} times"
    return IrrResult(roots[0], roots, note)


def _refine(flows: Sequence[float], r: float) -> float:
    for _ in range(20):
        value = npv(r, flows)
        slope = sum(-t * cf / (1 + r) ** (t + 1) for t, cf in enumerate(flows))
        if slope == 0:
            break
        step = value / slope
        if 1 + r - step <= 0:
            break
        r -= step
        if abs(step) < 1e-12:
            break
    return float(r)


def payback(flows: Sequence[float], rate: float | None = None) -> float | None:
    """Years until the cumulative (discounted, when ``rate`` is given) cash flow turns
    non-negative for good, interpolated inside the year; None if it never does."""
    values = (
        [cf / (1 + rate) ** t for t, cf in enumerate(flows)] if rate is not None else list(flows)
    )
    cumulative = 0.0
    totals = []
    for cf in values:
        cumulative += cf
        totals.append(cumulative)
    if not totals or totals[-1] < 0:
        return None
    # The last year the running total is negative: recovery happens in the year after it.
    last_negative = max((t for t, total in enumerate(totals) if total < 0), default=None)
    if last_negative is None:
        return 0.0
    year = last_negative + 1
    unrecovered = -totals[last_negative]
    return last_negative + unrecovered / values[year] if values[year] else float(year)


@dataclass
class Economics:
    """One candidate's economics and every input they rest on."""

    first_year: int | None
    years: list[int]
    costs: list[float]
    benefits: list[float]
    capital: list[float]
    operating: list[float]
    rate: float
    horizon: int
    npv: float | None = None
    irr: float | None = None
    irr_roots: list[float] = field(default_factory=list)
    irr_note: str | None = None
    payback_years: float | None = None
    discounted_payback_years: float | None = None
    bcr: float | None = None
    tco: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def flows(self) -> list[float]:
        return [b - c for b, c in zip(self.benefits, self.costs, strict=True)]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fiscal_years"] = [fy_label(y) for y in self.years]
        data["flows"] = self.flows
        return data


def compute(yearly: dict[int, dict[str, float]], *, rate: float, horizon: int = 5) -> Economics:
    """The economics of yearly amounts ``{fiscal year: {"cost", "benefit", "capital",
    "operating"}}`` (undiscounted); gaps between years are zero years."""
    if not yearly:
        return Economics(
            None, [], [], [], [], [], rate, horizon, notes=["no cost or benefit lines"]
        )
    first, last = min(yearly), max(yearly)
    years = list(range(first, last + 1))

    def series(key: str) -> list[float]:
        return [float(yearly.get(y, {}).get(key, 0.0)) for y in years]

    costs, benefits = series("cost"), series("benefit")
    result = Economics(
        first, years, costs, benefits, series("capital"), series("operating"), rate, horizon
    )
    flows = result.flows
    result.npv = npv(rate, flows)
    found = irr(flows)
    result.irr, result.irr_roots, result.irr_note = found.value, found.roots, found.note
    result.payback_years = payback(flows)
    result.discounted_payback_years = payback(flows, rate)
    pv_costs = npv(rate, costs)
    pv_benefits = npv(rate, benefits)
    result.bcr = pv_benefits / pv_costs if pv_costs > 0 else None
    if pv_costs <= 0:
        result.notes.append("no benefit-cost ratio: no cost")
    if not any(benefits):
        result.notes.append("no benefit lines: NPV is the cost's present value, negated")
    result.tco = sum(costs[:horizon])
    return result
