"""The emulated PWA's business-case custom fields: a proposal's capital cost, yearly operating
cost, yearly benefit and the years it lasts, as enterprise project custom fields (Project Server
keeps no cost or benefit plans of its own; ProjectCost is the schedule's cost, not the case's).

Cost custom fields come through ProjectData like every custom field: a property named after the
display name without spaces, its decimal as a string.
"""

from __future__ import annotations

from typing import Any

from .sandbox_schema import CUSTOM_FIELDS

BUSINESS_CASE_FIELDS = {
    "Capital Cost": "CapitalCost",
    "Annual Operating Cost": "AnnualOperatingCost",
    "Annual Benefit": "AnnualBenefit",
    "Benefit Years": "BenefitYears",
}
CUSTOM_FIELDS.update(BUSINESS_CASE_FIELDS)


def business_case(world: Any, project: Any) -> dict[str, Any]:
    """The custom-field values of ``project``'s business case (empty for projects without one)."""
    lines = [
        line
        for line in getattr(world, "investments", [])
        if line.work_id == project.id and line.platform == "project_online"
    ]
    if not lines:
        return {}
    by = {line.category: line for line in sorted(lines, key=lambda x: -x.fiscal_year)}
    out: dict[str, Any] = {}
    for category, prop in (("Capital cost", "CapitalCost"),
                           ("Annual operating cost", "AnnualOperatingCost"),
                           ("Annual benefit", "AnnualBenefit")):  # fmt: skip
        if category in by:
            out[prop] = f"{by[category].amount:.6f}"
    if "Annual benefit" in by:
        out["BenefitYears"] = str(sum(1 for x in lines if x.category == "Annual benefit"))
    return out
