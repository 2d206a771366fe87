"""Clarity PPM records -> the common model, and the crosswalk tables (plain data).

Clarity gives values as it stores them: lookups as ``{displayValue, _type, id}`` with a string
id (the display value is localized to the API user's language, so tables key on the id), money
as ``{amount: "111.00", currency}``, datetimes as naive local time of the server's zone, and
``_internalId`` as a number or a string. Lookup ids the tables do not know map to ``unknown``
with the native id and label kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from ...core.model import (
    CostType,
    Demand,
    FinancePlanLine,
    Person,
    PlanKind,
    Record,
    WorkItem,
    as_text,
    built,
    is_mapping,
    normalize_email,
)

# INVESTMENT_OBJ_STATUS (the approval status): 0 Unapproved, 1 Approved [REC]; 2 Rejected [INF].
STATUS = {"0": "unapproved", "1": "approved", "2": "rejected"}
# INVESTMENT_OBJ_PROGRESS: 0 Not Started [REC]; 1 Started, 2 Completed [DOC XOG].
PROGRESS = {"0": "not_started", "1": "started", "2": "completed"}
# PAC_PROJECT_STATUS (financial status): H Hold [DOC], O Open, C Closed [DOC XOG].
FINANCIAL = {"H": "hold", "O": "open", "C": "closed"}

STATE_RULES = [
    "status 2 (Rejected) -> cancelled",
    "progress 2 (Completed) -> done",
    "isActive = false before completion -> cancelled",
    "financialStatus H (Hold) -> on_hold",
    "status 0 (Unapproved) -> proposed",
    "status 1 (Approved) and progress 0 (Not Started) -> approved",
    "progress 1 (Started) -> in_progress",
    "a status or progress id not in the tables -> unknown, the native ids kept in extra",
]
PHASE_BY_STATE: dict[str, str] = {
    "proposed": "initiating",
    "approved": "planning",
    "in_progress": "executing",
    "on_hold": "executing",
    "done": "closing",
    "cancelled": "closing",
    "unknown": "unknown",
}
# The status indicator (INVESTMENT_STATUS_INDICATOR) is a tenant lookup: its ids differ per
# tenant, so the labels read once per sync from lookupValues decide (case-insensitive).
HEALTH_LABELS: dict[str, str] = {
    "green": "green",
    "on track": "green",
    "on-track": "green",
    "good": "green",
    "yellow": "amber",
    "amber": "amber",
    "minor variance": "amber",
    "at risk": "amber",
    "needs attention": "amber",
    "red": "red",
    "significant variance": "red",
    "off track": "red",
    "critical": "red",
}
TASK_STATUS = {"0": "approved", "1": "in_progress", "2": "done"}
# Ideas: the approval status with the work status (REQUESTED, ACTIVE, ON_HOLD, CANCELLED,
# COMPLETE [REC ConnectALL]); converted to a project -> completed.
IDEA_RULES = [
    "convertedProject set -> completed (project_id links the project)",
    "status 2 (Rejected) or workStatus CANCELLED -> rejected",
    "workStatus ON_HOLD -> deferred",
    "workStatus COMPLETE -> completed",
    "status 1 (Approved) -> approved",
    "status 0 with workStatus REQUESTED -> submitted; with ACTIVE -> screening",
    "anything else -> unknown, the native ids kept in extra",
]
COST_TYPES = {"CAPITAL": "capital", "OPERATING": "operating"}
PLAN_TYPES = {"BUDGET": "budget", "FORECAST": "forecast", "BENEFIT": "benefit"}

WORK_FIELDS: dict[str, str] = {
    "code": "number",
    "name": "name",
    "manager": "manager (resource id -> e-mail through resources)",
    "status + progress + financialStatus + isActive": "state, phase",
    "statusIndicator": "health (by the tenant's lookup label)",
    "scheduleStart/scheduleFinish (the current schedule)": "planned_start/planned_finish",
    "baselineStart/baselineFinish (the plan committed to; none, never the schedule)": (
        "baseline_start/baseline_finish"
    ),
    "scheduleStart when started, scheduleFinish when completed": "actual_start/actual_finish",
    "percentComplete (a fraction)": "percent_complete (0-100)",
    "priority (0 highest - 36)": "priority 1-5",
    "budgetCostTotal": "budget",
    "planCostTotal": "forecast_cost",
    "custom_fields (department = API attribute id)": "department and any other model field",
    "isActive, isTemplate, isProgram, financialStatus, teams": "extra",
}


def source_id(kind: str, native: Any) -> str:
    """``project-5000001``, ``task-5101076``, ``idea-5000004``, ``resource-5100001``."""
    return f"{kind}-{int(str(native).strip())}"


def lookup_id(value: Any) -> str | None:
    """A lookup's id (always a string), or the value itself for plain attributes."""
    if is_mapping(value):
        found = value.get("id")
        return None if found is None else str(found)
    return None if value is None else str(value)


def lookup_label(value: Any, labels: Mapping[str, str] | None = None) -> str | None:
    """A lookup's label: the tenant's lookup values read this sync, else the record's own."""
    ident = lookup_id(value)
    if ident is not None and labels and ident in labels:
        return labels[ident]
    if is_mapping(value):
        shown = value.get("displayValue")
        return None if shown is None else str(shown)
    return ident


def parse_money(value: Any) -> float | None:
    """Money as Clarity gives it: ``{"amount": "111.00"}``, or a number, or a numeric string."""
    if is_mapping(value):
        value = value.get("amount")
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    return float(value)


def parse_local(value: Any, zone: tzinfo) -> datetime | None:
    """A naive local Clarity datetime (``2020-08-25T15:48:26``) as an aware UTC moment."""
    if value is None or value == "":
        return None
    text = value.strip() if type(value) is str else str(value).strip()
    if "Z" in text:
        text = text.replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        # What ``replace(tzinfo=zone).astimezone(UTC)`` gives (the zone's offset at that wall
        # time, fold 0), without making the local moment first.
        offset = zone.utcoffset(moment)
        if offset is not None:
            return (moment - offset).replace(tzinfo=UTC)
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def to_local(moment: datetime, zone: tzinfo) -> str:
    """An aware moment as a Clarity filter literal: naive local time, whole seconds (floored)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


def priority(value: Any) -> int | None:
    """Clarity's 0 (highest) to 36 (lowest), default 10 [INF], as 1-5."""
    if value is None or value == "":
        return None
    number = int(value)
    return max(1, min(5, number // 8 + 1))


def work_state(raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The normalized state of a project, and what to keep when it is unknown."""
    status = lookup_id(raw.get("status"))
    progress = lookup_id(raw.get("progress"))
    financial = lookup_id(raw.get("financialStatus"))
    known_status = status is None or status in STATUS
    known_progress = progress is None or progress in PROGRESS
    if not known_status or not known_progress:
        return "unknown", {"native_status": status, "native_progress": progress}
    if status == "2":
        return "cancelled", {}
    if progress == "2":
        return "done", {}
    if raw.get("isActive") is False:
        return "cancelled", {}
    if financial == "H":
        return "on_hold", {}
    if status == "0" or status is None and progress in (None, "0"):
        return "proposed", {}
    if progress in (None, "0"):
        return "approved", {}
    return "in_progress", {}


def health(raw: Mapping[str, Any], labels: Mapping[str, str] | None) -> tuple[str, dict[str, Any]]:
    value = raw.get("statusIndicator")
    if value is None:
        return "unknown", {}
    label = lookup_label(value, labels)
    found = HEALTH_LABELS.get(" ".join((label or "").split()).casefold())
    if found is None:
        return "unknown", {"native_health": {"id": lookup_id(value), "label": label}}
    return found, {}


def _custom(
    raw: Mapping[str, Any], custom_fields: Mapping[str, str], model_fields: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Configured custom attributes: model fields they fill, and the rest for ``extra``."""
    filled: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for field_name, attribute in custom_fields.items():
        if attribute not in raw:
            continue  # not API-enabled on this tenant (check names it): the field stays empty
        value = raw[attribute]
        shown = lookup_label(value) if is_mapping(value) else value
        if field_name in model_fields:
            filled[field_name] = None if shown in (None, "") else str(shown)
        else:
            extra[field_name] = shown
    return filled, extra


_WORK_ITEM_FIELDS = frozenset(WorkItem.model_fields)
_DEMAND_FIELDS = frozenset(Demand.model_fields)


def _text_fields(model: type[Record]) -> frozenset[str]:
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if info.annotation == str | None and not info.metadata
    )


# A custom attribute fills a field with text or None: an optional text field's value as
# validation would make it; any other field (a number, a date, an enumeration, a required name)
# is left to validation to convert or refuse.
_WORK_ITEM_TEXT = _text_fields(WorkItem)
_DEMAND_TEXT = _text_fields(Demand)


R = TypeVar("R", bound=Record)


def _make(model: type[R], filled: Mapping[str, Any], text: frozenset[str], **values: Any) -> R:
    """The record, built without validation (each value is its field's type by construction:
    text, floats, aware UTC times, the enumerations' values, a priority 1-5) unless a custom
    attribute filled a field that is not text."""
    if filled.keys() <= text:
        return built(model, **values)
    return model(**values)


def map_project(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    zone: tzinfo,
    labels: Mapping[str, Mapping[str, str]],
    emails: Mapping[str, str],
    custom_fields: Mapping[str, str],
    teams: list[dict[str, Any]] | None = None,
) -> WorkItem:
    native = int(str(raw["_internalId"]))
    state, state_extra = work_state(raw)
    colour, health_extra = health(raw, labels.get("statusIndicator"))
    filled, custom_extra = _custom(raw, custom_fields, _WORK_ITEM_FIELDS)
    progress = lookup_id(raw.get("progress"))
    schedule_start = parse_local(raw.get("scheduleStart"), zone)
    schedule_finish = parse_local(raw.get("scheduleFinish"), zone)
    baseline_start = parse_local(raw.get("baselineStart"), zone)
    baseline_finish = parse_local(raw.get("baselineFinish"), zone)
    percent = raw.get("percentComplete")
    manager = lookup_id(raw.get("manager"))
    extra: dict[str, Any] = {
        "code": raw.get("code"),
        "is_active": raw.get("isActive"),
        "is_template": raw.get("isTemplate"),
        "status": lookup_label(raw.get("status"), labels.get("status")),
        "progress": lookup_label(raw.get("progress"), labels.get("progress")),
        "financial_status": lookup_id(raw.get("financialStatus")),
        "native_priority": raw.get("priority"),
        **state_extra,
        **health_extra,
        **custom_extra,
    }
    if manager and manager not in emails:
        extra["manager_name"] = lookup_label(raw.get("manager"))
    if teams is not None:
        extra["team"] = teams
    values: dict[str, Any] = {
        "kind": "program" if raw.get("isProgram") else "project",
        "number": as_text(raw.get("code")),
        "name": str(raw.get("name") or raw.get("code") or native),
        "state": state,
        "phase": PHASE_BY_STATE.get(state, "unknown"),
        "health": colour,
        "manager": emails.get(manager or "") if manager else None,
        "priority": priority(raw.get("priority")),
        # The schedule becomes the actual dates as a project completes; lateness is judged
        # against the baseline, which stays empty where the project has none.
        "planned_start": schedule_start,
        "planned_finish": schedule_finish,
        "baseline_start": baseline_start,
        "baseline_finish": baseline_finish,
        "actual_start": schedule_start if progress in ("1", "2") else None,
        "actual_finish": schedule_finish if progress == "2" else None,
        "percent_complete": None if percent is None else round(float(percent) * 100, 2),
        "budget": parse_money(raw.get("budgetCostTotal")),
        "forecast_cost": parse_money(raw.get("planCostTotal")),
        "business_case_approved": raw.get("isApproved")
        if isinstance(raw.get("isApproved"), bool)
        else None,
    }
    values.update(filled)
    return _make(
        WorkItem,
        filled,
        _WORK_ITEM_TEXT,
        source=source,
        platform="clarity",
        source_id=source_id("project", native),
        url=f"{base}/niku/nu#action:projmgr.projectProperties&id={native}",
        updated_at=parse_local(raw.get("lastUpdatedDate"), zone),
        created_at=parse_local(raw.get("createdDate"), zone),
        extra=extra,
        **values,
    )


def task_parent(raw: Mapping[str, Any], project: int) -> str:
    """``parentTask`` is ``"prj_<project>"`` for top-level tasks, else the parent task's id."""
    parent = raw.get("parentTask")
    if parent is None or (isinstance(parent, str) and parent.startswith("prj_")):
        return source_id("project", project)
    return source_id("task", parent)


def map_task(
    raw: Mapping[str, Any],
    *,
    project: int,
    source: str,
    base: str,
    zone: tzinfo,
    emails: Mapping[str, str],
) -> WorkItem:
    native = int(str(raw["_internalId"]))
    status = lookup_id(raw.get("status"))
    state = TASK_STATUS.get(status or "", "unknown") if status is not None else "unknown"
    start = parse_local(raw.get("startDate"), zone)
    finish = parse_local(raw.get("finishDate"), zone)
    percent = raw.get("percentComplete")
    owner = lookup_id(raw.get("taskOwner"))
    extra: dict[str, Any] = {
        "code": raw.get("code"),
        "wbs_sort": raw.get("wbsSort"),
        "is_key": raw.get("isKey"),
        "summary": raw.get("hasSubtasks"),
        "project": source_id("project", project),
    }
    if state == "unknown" and status is not None:
        extra["native_status"] = status
    return built(  # each value its field's type by construction, as a project's (see _make)
        WorkItem,
        source=source,
        platform="clarity",
        source_id=source_id("task", native),
        url=f"{base}/niku/nu#action:projmgr.editTask&id={native}&projectId={project}",
        updated_at=parse_local(raw.get("lastUpdatedDate"), zone),
        kind="milestone" if raw.get("isMilestone") else "task",
        number=as_text(raw.get("code")),
        name=str(raw.get("name") or raw.get("code") or native),
        parent_id=task_parent(raw, project),
        state=state,
        phase=PHASE_BY_STATE.get(state, "unknown"),
        manager=emails.get(owner or "") if owner else None,
        planned_start=start,
        planned_finish=finish,
        baseline_start=parse_local(raw.get("baselineStartDate"), zone),
        baseline_finish=parse_local(raw.get("baselineFinishDate"), zone),
        actual_start=start if status in ("1", "2") else None,
        actual_finish=finish if status == "2" else None,
        percent_complete=None if percent is None else round(float(percent) * 100, 2),
        extra=extra,
    )


def idea_state(raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    status = lookup_id(raw.get("status"))
    work = lookup_id(raw.get("workStatus"))
    if raw.get("convertedProject"):
        return "completed", {}
    if status == "2" or work == "CANCELLED":
        return "rejected", {}
    if work == "ON_HOLD":
        return "deferred", {}
    if work == "COMPLETE":
        return "completed", {}
    if status == "1":
        return "approved", {}
    if status == "0" and work in ("REQUESTED", None):
        return "submitted", {}
    if status == "0" and work == "ACTIVE":
        return "screening", {}
    return "unknown", {"native_status": status, "native_work_status": work}


def map_idea(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    zone: tzinfo,
    emails: Mapping[str, str],
    custom_fields: Mapping[str, str],
) -> Demand:
    native = int(str(raw["_internalId"]))
    state, state_extra = idea_state(raw)
    filled, custom_extra = _custom(raw, custom_fields, _DEMAND_FIELDS)
    requester = lookup_id(raw.get("originatingRequestor"))
    converted = lookup_id(raw.get("convertedProject"))
    decided = raw.get("conversionDate") or raw.get("approvedDate")
    created = parse_local(raw.get("createdDate"), zone)
    values: dict[str, Any] = {
        "number": as_text(raw.get("code")),
        "name": str(raw.get("name") or raw.get("code") or native),
        "state": state,
        "requester": emails.get(requester or "") if requester else None,
        "priority": priority(raw.get("priority")),
        "business_case_approved": raw.get("isApproved")
        if isinstance(raw.get("isApproved"), bool)
        else None,
        "submitted_at": created,
        "decided_at": parse_local(decided, zone),
        "estimated_cost": parse_money(raw.get("estimatedCost")),
        "project_id": source_id("project", converted) if converted else None,
    }
    values.update(filled)
    benefit = parse_money(raw.get("estimatedBenefit"))
    return _make(
        Demand,
        filled,
        _DEMAND_TEXT,
        source=source,
        platform="clarity",
        source_id=source_id("idea", native),
        url=f"{base}/pm/#/idea/{native}",
        updated_at=parse_local(raw.get("lastUpdatedDate"), zone),
        created_at=created,
        extra={
            "code": raw.get("code"),
            "status": lookup_label(raw.get("status")),
            "work_status": lookup_id(raw.get("workStatus")),
            "estimated_benefit": benefit,
            "currency": (raw.get("estimatedCost") or {}).get("currency")
            if isinstance(raw.get("estimatedCost"), Mapping)
            else None,
            "native_priority": raw.get("priority"),
            **state_extra,
            **custom_extra,
        },
        **values,
    )


def map_resource(raw: Mapping[str, Any], *, source: str, base: str, zone: tzinfo) -> Person:
    native = int(str(raw["_internalId"]))
    email = normalize_email(raw.get("emailAddress"))
    first, last = raw.get("firstName"), raw.get("lastName")
    name = " ".join(str(p) for p in (first, last) if p) or raw.get("fullName")
    return Person(
        source=source,
        platform="clarity",
        source_id=source_id("resource", native),
        url=f"{base}/niku/nu#action:resource.resourceProperties&id={native}",
        updated_at=parse_local(raw.get("lastUpdatedDate"), zone),
        created_at=parse_local(raw.get("createdDate"), zone),
        upn=email,
        email=email,
        name=name,
        department=lookup_label(raw.get("department")),
        office=lookup_label(raw.get("location")),
        active=raw.get("isActive") if isinstance(raw.get("isActive"), bool) else None,
        extra={"code": raw.get("code"), "resource_class": lookup_label(raw.get("resourceClass"))},
    )


def plan_lines(
    detail: Mapping[str, Any], *, plan: str, source: str, base: str, zone: tzinfo
) -> list[FinancePlanLine]:
    """One line per fiscal period of a cost or benefit plan detail row's curve."""
    native = int(str(detail["_internalId"]))
    investment = source_id("project", detail["investmentId"])
    curve = detail.get("cost") if plan != "benefit" else detail.get("benefit")
    if not isinstance(curve, Mapping):
        raise ValueError(
            f"plan detail {native} has no {('benefit' if plan == 'benefit' else 'cost')} curve"
        )
    segments = (curve.get("segmentList") or {}).get("segments")
    if segments is None:
        raise ValueError(f"plan detail {native}: the curve came without periods (tsvParams)")
    kind = lookup_id(detail.get("costType"))
    category = detail.get("category") if plan == "benefit" else detail.get("transactionClass")
    currency = lookup_id(detail.get("currencyCode"))
    lines = []
    for segment in segments:
        start = parse_local(segment.get("start"), zone)
        finish = parse_local(segment.get("finish"), zone)
        period = str(segment.get("start") or "")[:7]
        lines.append(
            # Each value is its field's type by construction (text, a float, aware UTC times,
            # the enumerations' values), so the line is built without validating it again.
            built(
                FinancePlanLine,
                source=source,
                platform="clarity",
                source_id=f"plan-{native}-{period}",
                url=f"{base}/pm/#/investment/{int(str(detail['investmentId']))}/financials",
                updated_at=parse_local(detail.get("lastUpdatedDate"), zone),
                investment_id=investment,
                plan=PlanKind(plan).value,
                plan_id=str(detail.get("planId")) if detail.get("planId") is not None else None,
                plan_name=as_text(detail.get("planName")),
                plan_of_record=detail.get("isPlanOfRecord")
                if isinstance(detail.get("isPlanOfRecord"), bool)
                else None,
                fiscal_period=period or None,
                period_start=start,
                period_finish=finish,
                cost_type=CostType(COST_TYPES.get(kind or "", "unknown")).value
                if plan != "benefit"
                else CostType.UNKNOWN.value,
                actual=False,
                category=lookup_label(category),
                amount=float(segment.get("value") or 0),
                currency=currency,
                extra={"detail": native, "plan_code": detail.get("planCode")},
            )
        )
    return lines


# Write-back: common-model field -> Clarity attribute where the names differ only.
WRITE_FIELDS: dict[str, dict[str, str]] = {
    "project": {
        "name": "name",
        "description": "description",
        "planned_start": "scheduleStart",
        "planned_finish": "scheduleFinish",
    },
    "idea": {
        "name": "name",
        "description": "description",
        "planned_start": "estimatedStartDate",
        "planned_finish": "estimatedFinishDate",
    },
}


def describe() -> dict[str, Any]:
    """The crosswalk tables, for ``crosswalk plugins show clarity``."""
    return {
        "streams": {
            "projects": "work_item (project, program); templates skipped; id sweep every sync",
            "tasks": "work_item (task, milestone) from projects/{id}/tasks of changed projects",
            "ideas": "demand; id sweep every sync",
            "resources": "person",
            "costPlans": "plan_line (BUDGET and FORECAST per investment and fiscal month)",
            "benefitPlans": "plan_line (benefit per investment and fiscal period)",
        },
        "status": STATUS,
        "progress": PROGRESS,
        "financial_status": FINANCIAL,
        "state_rules": STATE_RULES,
        "phase_by_state": PHASE_BY_STATE,
        "health_labels": HEALTH_LABELS,
        "task_status": TASK_STATUS,
        "idea_rules": IDEA_RULES,
        "cost_types": COST_TYPES,
        "fields": WORK_FIELDS,
        "write_fields": WRITE_FIELDS,
    }
