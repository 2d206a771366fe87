"""The ``[portfolio]`` table of ``crosswalk.toml``: the City's financial assumptions, its scoring
model and its funding scenarios.

Kept apart from :mod:`itcrosswalk.core.config` (which only names it) so the economics, the
scoring and the selection read one validated object, whatever platform the candidates came from.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True)

# The fields a criterion may read: the candidate's own (common-model) fields and the economics.
CANDIDATE_FIELDS = (
    "priority",
    "score",
    "strategic_goals",
    "business_case_approved",
    "department",
    "state",
    "estimated_cost",
    "risk",
    "mandate",
    "urgency",
)
ECONOMIC_FIELDS = ("npv", "irr", "bcr", "payback_years", "discounted_payback_years", "tco", "cost")


class Criterion(BaseModel):
    """One criterion of the scoring model: a field, read from every candidate, normalised 0-100.

    ``field`` names a common-model field (``priority``), an economic result (``npv``), or a native
    field kept in a record's ``extra`` (``extra.u_risk``). ``better`` says which way is good;
    ``scale`` is ``minmax`` (over the candidates) or ``range`` (``low`` and ``high`` fixed, so a
    score does not move when another candidate arrives). A list field (``strategic_goals``)
    counts its members that are in ``goals`` (all members when ``goals`` is empty); a boolean is
    0 or 100; ``values`` maps text (``High``) to numbers first.
    """

    model_config = _STRICT
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    field: str
    better: Literal["higher", "lower"] = "higher"
    scale: Literal["minmax", "range"] = "minmax"
    low: float | None = None
    high: float | None = None
    goals: list[str] = Field(default_factory=list)
    values: dict[str, float] = Field(default_factory=dict)
    weight: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _range(self) -> Criterion:
        if self.scale == "range":
            if self.low is None or self.high is None or self.high <= self.low:
                raise ValueError(f"criterion {self.id}: scale = 'range' needs low < high")
        return self


class ScoringModel(BaseModel):
    """The criteria, and their weights: direct (each criterion's ``weight``) or from an AHP
    pairwise-comparison matrix (``ahp``: rows and columns in ``criteria`` order, Saaty's 1-9)."""

    model_config = _STRICT
    criteria: list[Criterion] = Field(default_factory=list)
    ahp: list[list[float]] | None = None
    renormalize: bool = False
    """When a criterion is unsupported (no candidate has the field), share its weight among the
    others; left False, its weight is simply lost and the report says so."""

    @model_validator(mode="after")
    def _weights(self) -> ScoringModel:
        ids = [c.id for c in self.criteria]
        if len(set(ids)) != len(ids):
            raise ValueError("criteria: two criteria share an id")
        if self.ahp is not None:
            n = len(self.criteria)
            if len(self.ahp) != n or any(len(row) != n for row in self.ahp):
                raise ValueError(f"ahp: the matrix must be {n}×{n}, one row per criterion")
            if any(v <= 0 for row in self.ahp for v in row):
                raise ValueError("ahp: every judgement must be positive")
        elif self.criteria and all(c.weight is None for c in self.criteria):
            raise ValueError("criteria: give each criterion a weight, or an ahp matrix")
        return self


def _default_criteria() -> ScoringModel:
    return ScoringModel(
        criteria=[
            Criterion(id="alignment", field="strategic_goals", weight=0.30),
            Criterion(id="value", field="npv", weight=0.30),
            Criterion(id="priority", field="priority", better="lower", weight=0.20),
            Criterion(id="cost", field="cost", better="lower", weight=0.20),
        ]
    )


class Scenario(BaseModel):
    """One funding scenario: the budget and the rules a selection obeys.

    Candidates are named ``SOURCE:NUMBER`` or ``SOURCE:SOURCE_ID`` (``snow:DMND0001004``).
    """

    model_config = _STRICT
    budget: float | None = Field(default=None, ge=0)
    budgets: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Fiscal year (``FY2027``) -> budget, when each year has its own."""
    fiscal_years: list[str] = Field(default_factory=list)
    """The years the budget constrains; empty: the year ``--fiscal-year`` names, else every
    year a candidate spends in."""
    objective: Literal["score", "npv"] = "score"
    time_limit_seconds: float | None = Field(default=None, gt=0)
    """Seconds the solver may take; unset, it runs until the optimum is proven. Stopped early,
    the report says the set is the best found, with the gap to the bound."""
    must_fund: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    depends: dict[str, list[str]] = Field(default_factory=dict)
    """Candidate -> the candidates it needs (funded only if they are)."""
    exclusive: list[list[str]] = Field(default_factory=list)
    """Groups of mutually exclusive options: at most one of each group is funded."""
    capacity: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Role -> staff hours available per fiscal year."""
    capacity_from_store: bool = False
    """Take each role's available hours per fiscal year from the capacity model (the
    platforms' assignments and capacity in the store: capacity minus what is booked already);
    a role in ``capacity`` keeps the hours given there."""
    needs: dict[str, dict[str, Annotated[float, Field(ge=0)]]] = Field(default_factory=dict)
    """Candidate -> {role: hours per fiscal year it runs}, beside what its plans carry."""


class CandidateRules(BaseModel):
    """Which records are candidates for funding."""

    model_config = _STRICT
    demand_states: list[str] = Field(
        default_factory=lambda: ["draft", "submitted", "screening", "qualified"]
    )
    work_item_kinds: list[str] = Field(default_factory=lambda: ["project", "epic"])
    work_item_states: list[str] = Field(default_factory=lambda: ["proposed"])
    prefer_platforms: list[str] = Field(
        default_factory=lambda: ["servicenow", "project_online", "jira_align", "clarity"]
    )
    """When one investment is on two platforms and neither (or both) has plan lines, the
    candidate is the record on the platform listed first."""


CostPlan = Literal["forecast", "budget"]


def _cost_plans() -> list[CostPlan]:
    return ["forecast", "budget"]


class BusinessCaseFields(BaseModel):
    """Where a platform without plan lines keeps a business case's money: native fields (kept
    in a record's ``extra``; Project Server custom fields by their feed names) for each
    template field. Capital falls in the first fiscal year; operating cost and benefit recur
    yearly from the next one, for ``operating_years`` and for the benefit-years field's value."""

    model_config = _STRICT
    capital: list[str] = Field(default_factory=lambda: ["CapitalCost"])
    operating_per_year: list[str] = Field(default_factory=lambda: ["AnnualOperatingCost"])
    benefit_per_year: list[str] = Field(default_factory=lambda: ["AnnualBenefit"])
    benefit_years: list[str] = Field(default_factory=lambda: ["BenefitYears"])
    operating_years: int = Field(default=4, ge=0, le=30)


class PortfolioConfig(BaseModel):
    """The City's investment assumptions (``[portfolio]``)."""

    model_config = _STRICT
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    fiscal_year_start_month: int = Field(default=7, ge=1, le=12)
    """Tucson's fiscal year starts on 1 July; FY2027 runs July 2026 to June 2027 (named by the
    calendar year it ends in, as US governments do)."""
    discount_rate: float = Field(default=0.05, gt=-1, lt=10)
    horizon_years: int = Field(default=5, ge=1, le=50)
    """Years of the total cost of ownership."""
    exchange_rates: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], float] = Field(
        default_factory=dict
    )
    """Currency -> how many units of ``currency`` one unit is worth; a line in a currency
    without a rate makes its candidate ineligible (never silently converted at 1)."""
    budget_year: str | None = Field(default=None, pattern=r"^FY\d{4}$")
    """The first fiscal year a decision can fund (a one-time estimate is placed in it when its
    own date is earlier); unset: the fiscal year after the current one."""
    cost_plans: list[CostPlan] = Field(default_factory=_cost_plans)
    """Which cost plan a candidate's costs come from, first found wins."""
    candidates: CandidateRules = Field(default_factory=CandidateRules)
    business_case: BusinessCaseFields = Field(default_factory=BusinessCaseFields)
    scoring: ScoringModel = Field(default_factory=_default_criteria)
    scenarios: dict[str, Scenario] = Field(default_factory=dict)

    @field_validator("exchange_rates")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for code, rate in value.items():
            if rate <= 0:
                raise ValueError(f"{code}: an exchange rate must be positive")
        return value
