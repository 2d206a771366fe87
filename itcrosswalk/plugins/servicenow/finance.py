"""SPM financials: the per-period breakdowns of cost plans and benefit plans (of demands and
projects) as ``plan_line`` records. See docs/platforms/servicenow_spm_finance.md.

Only a plan's own rows are read (``breakdown_type=requirement``): the instance also keeps a
roll-up row per task and period that would count every amount twice. Each page's plans and
fiscal periods are fetched in one request each (``sys_idIN...``), so a line knows its expense
type (capex/opex), its resource type and role, and the dates of its fiscal month.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.errors import AccessDenied, NotFound
from ...core.model import CostType, FinancePlanLine, PlanKind, Record
from . import mapping

# stream table -> (the plan table its rows belong to, the plan reference column, plan kind)
FINANCE_TABLES: dict[str, tuple[str, str, PlanKind]] = {
    "cost_plan_breakdown": ("cost_plan", "cost_plan", PlanKind.FORECAST),
    "benefit_plan_breakdown": ("benefit_plan", "benefit_plan", PlanKind.BENEFIT),
}
ROLES = "it_project_manager, it_demand_manager or financial_mgmt_user"
PLAN_LINE_FIELDS = ("investment_id", "plan", "plan_id", "plan_name", "fiscal_period",
                    "period_start", "period_finish", "cost_type", "category", "amount",
                    "currency")  # fmt: skip
AMOUNT = {"cost_plan_breakdown": ("cost_default_currency", "cost"),
          "benefit_plan_breakdown": ("benefit_default_currency", "entered_benefit")}  # fmt: skip


def streams(adapter: Any) -> list[Any]:
    """The finance streams of a ServiceNow source."""
    from .adapter import KeysetPaginator, TableStream

    class PlanBreakdowns(TableStream):
        """One plan's rows per fiscal period (cost or benefit), read in keyset order."""

        def __init__(self, adapter: Any, table: str) -> None:
            self.adapter = adapter
            self.table = table
            self.name = table  # type: ignore[misc]
            self.entity = "plan_line"  # type: ignore[misc]
            self.id_sweep = False  # type: ignore[misc]
            self.paginator = KeysetPaginator()
            self._plans: dict[str, dict[str, Any]] = {}
            self._periods: dict[str, dict[str, Any]] = {}

        def query(self, window: Any, token: Mapping[str, Any]) -> str:
            own = "breakdown_type=requirement"
            text = super().query(window, token)
            return f"{own}^{text}" if text else own

        def prepare(self, raws: list[dict[str, Any]]) -> None:
            plan_table, column, _kind = FINANCE_TABLES[self.table]
            wanted_plans = {mapping.value(r, column) for r in raws} - set(self._plans) - {""}
            wanted_periods = (
                {mapping.value(r, "fiscal_period") for r in raws} - set(self._periods) - {""}
            )
            for table, ids, into in ((plan_table, wanted_plans, self._plans),
                                     ("fiscal_period", wanted_periods, self._periods)):  # fmt: skip
                ordered = sorted(ids)
                for start in range(0, len(ordered), 100):
                    chunk = ordered[start : start + 100]
                    try:
                        rows, _headers = self.adapter.list(
                            table, query=f"sys_idIN{','.join(chunk)}^ORDERBYsys_id",
                            limit=len(chunk) + 1,
                        )  # fmt: skip
                    except (AccessDenied, NotFound):
                        continue  # the lines still map; without the plan's details
                    for row in rows:
                        into[mapping.value(row, "sys_id")] = row

        def map(self, raw: Mapping[str, Any]) -> Record:
            return breakdown_line(
                raw, self.table, self._plans, self._periods,
                source=self.adapter.source.name, base=self.adapter.base,
            )  # fmt: skip

        def links(self, record: Record) -> list[tuple[str, str, str]]:
            investment = getattr(record, "investment_id", None)
            return [("investment", "demand", investment)] if investment else []

    return [PlanBreakdowns(adapter, table) for table in FINANCE_TABLES]


def breakdown_line(
    raw: Mapping[str, Any],
    table: str,
    plans: Mapping[str, Mapping[str, Any]],
    periods: Mapping[str, Mapping[str, Any]],
    *,
    source: str,
    base: str,
) -> FinancePlanLine:
    """One breakdown row as a plan line; an amount that is not a number is quarantined."""
    plan_table, column, kind = FINANCE_TABLES[table]
    sys_id = mapping.value(raw, "sys_id")
    task = mapping.value(raw, "task")
    if not task:
        raise ValueError(f"{table} {sys_id}: no task (the demand or project it plans)")
    functional, entered = AMOUNT[table]
    text = mapping.value(raw, functional) or mapping.value(raw, entered)
    amount = mapping.parse_number(text)
    if amount is None:
        raise ValueError(f"{table} {sys_id}: amount {text!r} is not a number")
    plan_id = mapping.value(raw, column)
    plan = plans.get(plan_id, {})
    period_id = mapping.value(raw, "fiscal_period")
    period = periods.get(period_id, {})
    expense = (mapping.value(raw, "expense_type") or mapping.value(plan, "expense_type")).lower()
    cost_type = {"capex": CostType.CAPITAL, "opex": CostType.OPERATING}.get(
        expense, CostType.UNKNOWN
    )
    extra: dict[str, Any] = {"table": table, "breakdown_type": mapping.value(raw, "breakdown_type")}
    role = mapping.display(plan, "role") if plan else None
    if role:
        extra["role"] = role
        quantity = mapping.parse_number(mapping.value(plan, "quantity"))
        months = 12.0
        if quantity is not None:
            extra["hours"] = round(quantity / months, 4)  # the plan's hours, spread as its cost is
    currency = mapping.value(raw, "currency") or (mapping.value(plan, "currency") if plan else "")
    return FinancePlanLine(
        source=source,
        platform="servicenow",
        source_id=sys_id,
        url=mapping.record_url(base, table, sys_id),
        updated_at=mapping.parse_datetime(mapping.value(raw, "sys_updated_on")),
        created_at=mapping.parse_datetime(mapping.value(raw, "sys_created_on")),
        investment_id=task,
        plan=kind,
        plan_id=plan_id or None,
        plan_name=mapping.display(plan, "name") if plan else mapping.display(raw, column),
        plan_of_record=None,
        fiscal_period=mapping.display(period, "name")
        if period
        else mapping.display(raw, "fiscal_period"),
        period_start=mapping.parse_datetime(mapping.value(period, "fiscal_start_date_time"))
        if period
        else None,
        period_finish=mapping.parse_datetime(mapping.value(period, "fiscal_end_date_time"))
        if period
        else None,
        cost_type=cost_type if kind != PlanKind.BENEFIT else CostType.UNKNOWN,
        actual=False,
        category=(
            mapping.display(plan, "resource_type")
            if kind != PlanKind.BENEFIT
            else mapping.display(plan, "sub_category")
        )
        if plan
        else None,  # fmt: skip
        amount=amount,
        currency=currency or None,
        extra=extra,
    )


APPROVED = "8"
"""dmn_demand's stored state for Approved on the instance the emulator follows; an instance
with other choice values names its own through the dictionary (sys_choice)."""


def approvers(adapter: Any) -> dict[str, Any]:
    """``{"demand": approve}``: moves a demand to Approved, idempotently."""
    from ...core.adapter import WriteResult
    from .adapter import TableWriter

    writer = TableWriter(adapter, "demand")

    def approve(sys_id: str, *, note: str, dry_run: bool = False) -> WriteResult:
        with adapter.http.recording() as made:
            rows = writer._rows("dmn_demand", f"sys_id={sys_id}", ["sys_id", "state", "number"])
            rows = [r for r in rows if mapping.value(r, "sys_id") == sys_id]
            if not rows:
                from ...core.errors import PlatformError

                raise PlatformError(f"source {adapter.source.name}: no dmn_demand {sys_id}")
            url = mapping.record_url(adapter.base, "dmn_demand", sys_id)
            if mapping.value(rows[0], "state") == APPROVED:
                return WriteResult("already_approved", "demand", sys_id, url, made)
            body = {"state": APPROVED, "work_notes": note}
            target = writer._url("dmn_demand", sys_id)
            if dry_run:
                made.append({"method": "PATCH", "url": target, "body": body})
                return WriteResult("dry_run", "demand", sys_id, url, made)
            response = writer._send("PATCH", target, body=body)
            adapter.http.raise_for(response, f"dmn_demand {mapping.value(rows[0], 'number')}")
            return WriteResult("approved", "demand", sys_id, url, made)

    return {"demand": approve}
