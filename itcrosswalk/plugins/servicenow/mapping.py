"""ServiceNow records <-> the common model: the crosswalk tables, and the functions that apply them.

The tables are plain data and double as documentation (``crosswalk plugins show servicenow``).
Each maps a table's stored choice value to the normalized value; since instances add and
renumber choices, a value the table does not know is looked up by its display label, and only
then becomes ``unknown`` (the native value kept in ``extra``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from ...core.model import (
    Demand,
    Device,
    Person,
    SlaRecord,
    Ticket,
    WorkItem,
    built,
    normalize_email,
    parse_priority,
)
from . import root_cause

PLATFORM = "servicenow"

# table -> stored state value -> normalized TicketState
TICKET_STATES: dict[str, dict[str, str]] = {
    "incident": {
        "1": "new",
        "2": "in_progress",
        "3": "on_hold",
        "6": "resolved",
        "7": "closed",
        "8": "cancelled",
    },
    "problem": {
        "101": "new",
        "102": "in_progress",  # Assess
        "103": "in_progress",  # Root Cause Analysis
        "104": "in_progress",  # Fix in Progress
        "106": "resolved",
        "107": "closed",
    },
    "change_request": {
        "-5": "new",
        "-4": "in_progress",  # Assess
        "-3": "in_progress",  # Authorize
        "-2": "in_progress",  # Scheduled
        "-1": "in_progress",  # Implement
        "0": "resolved",  # Review
        "3": "closed",
        "4": "cancelled",
    },
    "sc_req_item": {
        "-5": "new",  # Pending
        "1": "new",  # Open
        "2": "in_progress",  # Work in Progress
        "3": "closed",  # Closed Complete
        "4": "closed",  # Closed Incomplete
        "7": "cancelled",  # Closed Skipped
    },
}

# display label (lower case) -> TicketState, for values an instance added or renumbered
TICKET_STATE_LABELS: dict[str, str] = {
    "new": "new",
    "open": "new",
    "pending": "new",
    "in progress": "in_progress",
    "work in progress": "in_progress",
    "assess": "in_progress",
    "authorize": "in_progress",
    "scheduled": "in_progress",
    "implement": "in_progress",
    "root cause analysis": "in_progress",
    "fix in progress": "in_progress",
    "on hold": "on_hold",
    "awaiting user info": "on_hold",
    "review": "resolved",
    "resolved": "resolved",
    "closed": "closed",
    "closed complete": "closed",
    "closed incomplete": "closed",
    "closed skipped": "cancelled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    # problem states of releases before Madrid (1 Open, 2 Known Error, 3 Pending Change, 4 Closed/Resolved)
    "known error": "in_progress",
    "pending change": "in_progress",
    "closed/resolved": "closed",
}

TICKET_KINDS: dict[str, str] = {
    "incident": "incident",
    "sc_req_item": "request",
    "problem": "problem",
    "change_request": "change",
}

# pm_project / pm_project_task / pm_program / pm_portfolio state -> WorkState
WORK_STATES: dict[str, str] = {
    "-5": "proposed",  # Pending
    "1": "approved",  # Open
    "2": "in_progress",  # Work in Progress
    "-3": "on_hold",
    "3": "done",  # Closed Complete
    "4": "done",  # Closed Incomplete
    "7": "cancelled",  # Closed Skipped
}

WORK_STATE_LABELS: dict[str, str] = {
    "pending": "proposed",
    "draft": "proposed",
    "open": "approved",
    "work in progress": "in_progress",
    "in progress": "in_progress",
    "on hold": "on_hold",
    "closed complete": "done",
    "closed incomplete": "done",
    "closed skipped": "cancelled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}

PHASES: dict[str, str] = {
    "initiating": "initiating",
    "initiation": "initiating",
    "planning": "planning",
    "executing": "executing",
    "execution": "executing",
    "delivery": "executing",
    "monitoring": "monitoring",
    "closing": "closing",
    "closure": "closing",
}

HEALTH: dict[str, str] = {
    "green": "green",
    "yellow": "amber",
    "amber": "amber",
    "red": "red",
}

DEMAND_STATE_LABELS: dict[str, str] = {
    "draft": "draft",
    "submitted": "submitted",
    "screening": "screening",
    "qualified": "qualified",
    "approved": "approved",
    "rejected": "rejected",
    "deferred": "deferred",
    "completed": "completed",
    "incomplete": "rejected",
}

SLA_STAGES: dict[str, str] = {
    "in_progress": "in_progress",
    "paused": "paused",
    "completed": "completed",
    "achieved": "completed",
    "cancelled": "cancelled",
    "breached": "in_progress",
}

# common-model field -> native column, per table; a source's `columns` option overrides these.
WORK_COLUMNS: dict[str, str] = {
    "name": "short_description",
    "state": "state",
    "phase": "phase",
    "health": "overall_health",
    "manager": "project_manager",
    "sponsor": "sponsor",
    "department": "department",
    "goals": "goals",
    "priority": "priority",
    "score": "score",
    "business_case_approved": "u_business_case_approved",
    "planned_start": "start_date",
    "planned_finish": "end_date",
    "actual_start": "work_start",
    "actual_finish": "work_end",
    "percent_complete": "percent_complete",
    "budget": "budget_cost",
    "actual_cost": "work_cost",
    "forecast_cost": "cost",
    "planned_value": "planned_value",
    "earned_value": "earned_value",
    "parent": "parent",
    "external_ref": "u_external_ref",
}
# pm_project's start_date/end_date are its current schedule (SPM recalculates them from the
# tasks); the Table API exposes no baseline column of its own. An instance that keeps the
# committed plan in columns maps them in [sources.NAME.columns.pm_project] as baseline_start,
# baseline_finish, baseline_cost; without them the baseline stays empty (never the schedule).
BASELINE_COLUMNS = ("baseline_start", "baseline_finish", "baseline_cost")

DEMAND_COLUMNS: dict[str, str] = {
    "name": "short_description",
    "state": "state",
    "requester": "submitter",
    "department": "department",
    "goals": "goals",
    "priority": "priority",
    "score": "score",
    "business_case_approved": "u_business_case_approved",
    "submitted_at": "submitted_date",
    "decided_at": "decision_date",
    "estimated_cost": "financial_estimated_cost",
    "project": "project",
}

WORK_KINDS: dict[str, str] = {
    "pm_portfolio": "portfolio",
    "pm_program": "program",
    "pm_project": "project",
    "pm_project_task": "task",
}

# Fields the mapping reads; everything else non-empty goes to `extra`.
_SYSTEM = {"sys_id", "sys_updated_on", "sys_created_on", "sys_tags"}


def value(raw: Mapping[str, Any], field: str) -> str:
    """The stored value of a field, whatever ``sysparm_display_value`` mode the record came in."""
    item = raw.get(field)
    if type(item) is dict:  # JSON objects are plain dicts; an ABC check costs more than the rest
        item = item.get("value")
    return "" if item is None else str(item)


def display(raw: Mapping[str, Any], field: str) -> str | None:
    """The display value where the record has one (``display_value=all``), else the stored value."""
    item = raw.get(field)
    if type(item) is dict:
        shown = item.get("display_value")
        if shown in (None, "", "UNKNOWN"):
            stored = item.get("value")
            return None if stored in (None, "") else str(stored)
        return str(shown)
    return None if item in (None, "") else str(item)


def parse_datetime(text: str) -> datetime | None:
    """A stored ServiceNow date-time (``YYYY-MM-DD HH:MM:SS``, UTC); ``""`` is unset."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text)  # raises on anything else: the record is quarantined
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(text: str) -> date | None:
    if not text:
        return None
    return date.fromisoformat(text[:10])


def parse_duration(text: str) -> float | None:
    """A stored duration: a date-time offset from the epoch (``1970-01-03 04:05:06``) in seconds."""
    if not text:
        return None
    moment = parse_datetime(text)
    assert moment is not None
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()


def parse_number(text: str) -> float | None:
    """A number from a stored value; currency values may come as ``"USD;699.99"``."""
    if not text:
        return None
    if ";" in text:
        text = text.split(";", 1)[1]
    number = float(text.replace(",", ""))
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"not a finite number: {text!r}")
    return number


def parse_int(text: str) -> int | None:
    return None if not text else int(float(text))


def parse_bool(text: str) -> bool | None:
    if text == "":
        return None
    return text.lower() in ("true", "1", "yes")


def _choice(
    raw: Mapping[str, Any],
    field: str,
    by_value: Mapping[str, str],
    by_label: Mapping[str, str],
    extra: dict[str, Any],
) -> str:
    stored = value(raw, field)
    if stored in by_value:
        return by_value[stored]
    label = (display(raw, field) or "").strip().lower()
    if label in by_label:
        return by_label[label]
    if stored.lower() in by_label:
        return by_label[stored.lower()]
    if stored or label:
        extra[f"native_{field}"] = {"value": stored, "display_value": display(raw, field)}
    return "unknown"


_UNSET_FIELD = {"display_value": "", "value": ""}


def _extra(raw: Mapping[str, Any], used: set[str] | frozenset[str]) -> dict[str, Any]:
    """Native fields the model does not name, kept compactly (empty values carry nothing)."""
    out: dict[str, Any] = {}
    system = _SYSTEM
    unset = _UNSET_FIELD  # most columns of a record are unset: one comparison skips them
    for key, item in raw.items():
        if item == unset or key in used or key in system:
            continue
        if type(item) is dict:
            stored = item.get("value")
            shown = item.get("display_value")
            if stored in (None, "") and shown in (None, "", "UNKNOWN"):
                continue  # the platform labels an unset date "UNKNOWN": still unset
            out[key] = (
                stored if shown in (None, stored) else {"value": stored, "display_value": shown}
            )
        elif item not in (None, ""):
            out[key] = item
    return out


def record_url(base: str, table: str, sys_id: str) -> str:
    return f"{base}/nav_to.do?uri={table}.do%3Fsys_id%3D{sys_id}"


def _provenance(raw: Mapping[str, Any], *, source: str, table: str, base: str) -> dict[str, Any]:
    sys_id = value(raw, "sys_id")
    if not sys_id:
        raise ValueError("record has no sys_id")
    return {
        "source": source,
        "platform": PLATFORM,
        "source_id": sys_id,
        "url": record_url(base, table, sys_id),
        "updated_at": parse_datetime(value(raw, "sys_updated_on")),
        "created_at": parse_datetime(value(raw, "sys_created_on")),
    }


_TICKET_USED = {
    "number",
    "short_description",
    "priority",
    "state",
    "opened_at",
    "resolved_at",
    "closed_at",
    "assignment_group",
    "assigned_to",
    "caller_id",
    "opened_by",
    "requested_for",
    "category",
    "cmdb_ci",
    "reassignment_count",
    "reopen_count",
    "department",
    "u_department",
}


# The stored priorities, as parse_priority reads them (without its regular expression).
_PRIORITIES = {str(n): n for n in range(1, 6)}


def map_ticket(raw: Mapping[str, Any], *, source: str, table: str, base: str) -> Ticket:
    extra = _extra(raw, _TICKET_USED)
    ci = value(raw, "cmdb_ci")
    if ci:
        # The CI's sys_id: the device name is the ticket's, the reference its "concerns" link.
        extra["cmdb_ci"] = ci
    priority_text = value(raw, "priority")
    priority = _PRIORITIES.get(priority_text) or parse_priority(priority_text)
    if priority is None and priority_text:
        extra["native_priority"] = {
            "value": priority_text,
            "display_value": display(raw, "priority"),
        }
    requester_field = (
        "caller_id"
        if table == "incident"
        else "requested_for"
        if table == "sc_req_item"
        else "opened_by"
    )
    sys_id = value(raw, "sys_id")
    if not sys_id:
        raise ValueError("record has no sys_id")
    # The model's fields in its order, each of its type by construction: text from
    # ``value``/``display``, aware UTC times from ``parse_datetime`` (which raises on anything
    # else, quarantining the record), a priority 1-5 or None, a kind and state of the
    # enumerations, a non-empty sys_id. So the model is built without validating it again
    # (validation costs as much as the rest of the mapping); test_mapping_fast.py holds the
    # result equal to the validated model and bad records quarantined.
    fields = {
        "source": source,
        "platform": PLATFORM,
        "source_id": sys_id,
        "url": record_url(base, table, sys_id),
        "updated_at": parse_datetime(value(raw, "sys_updated_on")),
        "created_at": parse_datetime(value(raw, "sys_created_on")),
        "extra": extra,
        "kind": TICKET_KINDS[table],
        "number": value(raw, "number") or None,
        "title": value(raw, "short_description") or None,
        "priority": priority,
        "state": _choice(raw, "state", TICKET_STATES.get(table, {}), TICKET_STATE_LABELS, extra),
        "opened_at": parse_datetime(value(raw, "opened_at")),
        "resolved_at": parse_datetime(value(raw, "resolved_at")),
        "closed_at": parse_datetime(value(raw, "closed_at")),
        "assignment_group": display(raw, "assignment_group"),
        "assignee": display(raw, "assigned_to"),
        "requester": display(raw, requester_field) or display(raw, "opened_by"),
        "department": display(raw, "department") or display(raw, "u_department"),
        "category": display(raw, "category"),
        "device_name": display(raw, "cmdb_ci"),
        "reassignment_count": parse_int(value(raw, "reassignment_count")),
        "reopen_count": parse_int(value(raw, "reopen_count")),
    }
    fields.update(root_cause.problem_fields(raw, table, extra))  # root cause; its problem
    return built(Ticket, **fields)


_SLA_USED = {
    "task",
    "sla",
    "stage",
    "has_breached",
    "start_time",
    "end_time",
    "planned_end_time",
    "duration",
    "business_duration",
    "percentage",
    "business_percentage",
}


def map_sla(raw: Mapping[str, Any], *, source: str, table: str, base: str) -> SlaRecord:
    extra = _extra(raw, _SLA_USED)
    return SlaRecord(
        **_provenance(raw, source=source, table=table, base=base),
        ticket_id=value(raw, "task") or None,
        sla_name=display(raw, "sla"),
        stage=_choice(raw, "stage", SLA_STAGES, SLA_STAGES, extra),
        has_breached=parse_bool(value(raw, "has_breached")),
        start_at=parse_datetime(value(raw, "start_time")),
        end_at=parse_datetime(value(raw, "end_time")),
        planned_end_at=parse_datetime(value(raw, "planned_end_time")),
        elapsed_seconds=parse_duration(value(raw, "duration")),
        business_elapsed_seconds=parse_duration(value(raw, "business_duration")),
        elapsed_percent=parse_number(value(raw, "percentage")),
        business_elapsed_percent=parse_number(value(raw, "business_percentage")),
        extra=extra,
    )


def _goals(raw: Mapping[str, Any], field: str) -> list[str]:
    shown = display(raw, field)
    return [g.strip() for g in shown.split(",") if g.strip()] if shown else []


_WORK_USED = frozenset(
    ("number", "milestone", "primary_program", "primary_portfolio", "top_task", "name")
)


@functools.lru_cache(maxsize=64)
def _work_columns(overrides: tuple[tuple[str, str], ...]) -> tuple[dict[str, str], frozenset[str]]:
    """The columns a work item is read from (the defaults, then the configured ``overrides``)
    and all the columns the mapping reads: worked out once per configured mapping, not per
    record (the dict is shared: read it, never change it)."""
    col = {**WORK_COLUMNS, **dict(overrides)}
    return col, frozenset(col.values()) | _WORK_USED


def map_work(
    raw: Mapping[str, Any],
    *,
    source: str,
    table: str,
    base: str,
    columns: Mapping[str, str] | None = None,
) -> WorkItem:
    col, used = _work_columns(tuple(columns.items()) if columns else ())
    extra = _extra(raw, used)
    kind = WORK_KINDS[table]
    if table == "pm_project_task" and parse_bool(value(raw, "milestone")):
        kind = "milestone"
    parent = (
        value(raw, col["parent"])
        or value(raw, "primary_program")
        or value(raw, "primary_portfolio")
    )
    if table == "pm_project_task" and not parent:
        parent = value(raw, "top_task")
    health_text = (value(raw, col["health"]) or "").lower()
    phase_text = (display(raw, col["phase"]) or "").strip().lower()
    # Each value of its field's type by construction (text from ``value``/``display``, aware
    # UTC times and finite numbers from the parsers, which raise on anything else, a priority
    # 1-5 or None, the enumerations' values), so the model is built without validating it
    # again (test_mapping_fast.py holds it equal to the validated model).
    return built(
        WorkItem,
        **_provenance(raw, source=source, table=table, base=base),
        kind=kind,
        number=value(raw, "number") or None,
        # pm_portfolio keeps its title in ``name`` rather than the task's short_description
        name=value(raw, col["name"])
        or value(raw, "name")
        or value(raw, "number")
        or value(raw, "sys_id"),
        parent_id=parent or None,
        state=_choice(raw, col["state"], WORK_STATES, WORK_STATE_LABELS, extra),
        phase=PHASES.get(phase_text, PHASES.get(value(raw, col["phase"]).lower(), "unknown")),
        health=HEALTH.get(health_text, "unknown"),
        sponsor=display(raw, col["sponsor"]),
        manager=display(raw, col["manager"]),
        department=display(raw, col["department"]),
        strategic_goals=_goals(raw, col["goals"]),
        priority=parse_priority(value(raw, col["priority"])),
        score=parse_number(value(raw, col["score"])),
        business_case_approved=parse_bool(value(raw, col["business_case_approved"])),
        planned_start=parse_datetime(value(raw, col["planned_start"])),
        planned_finish=parse_datetime(value(raw, col["planned_finish"])),
        baseline_start=parse_datetime(value(raw, col["baseline_start"]))
        if "baseline_start" in col
        else None,
        baseline_finish=parse_datetime(value(raw, col["baseline_finish"]))
        if "baseline_finish" in col
        else None,
        baseline_cost=parse_number(value(raw, col["baseline_cost"]))
        if "baseline_cost" in col
        else None,
        actual_start=parse_datetime(value(raw, col["actual_start"])),
        actual_finish=parse_datetime(value(raw, col["actual_finish"])),
        percent_complete=parse_number(value(raw, col["percent_complete"])),
        budget=parse_number(value(raw, col["budget"])),
        actual_cost=parse_number(value(raw, col["actual_cost"])),
        forecast_cost=parse_number(value(raw, col["forecast_cost"])),
        planned_value=parse_number(value(raw, col["planned_value"])),
        earned_value=parse_number(value(raw, col["earned_value"])),
        external_ref=value(raw, col["external_ref"]) or None,
        extra=extra,
    )


def map_demand(
    raw: Mapping[str, Any],
    *,
    source: str,
    table: str,
    base: str,
    columns: Mapping[str, str] | None = None,
) -> Demand:
    col = {**DEMAND_COLUMNS, **(columns or {})}
    extra = _extra(raw, set(col.values()) | {"number"})
    return Demand(
        **_provenance(raw, source=source, table=table, base=base),
        number=value(raw, "number") or None,
        name=value(raw, col["name"]) or value(raw, "number") or value(raw, "sys_id"),
        state=_choice(raw, col["state"], {}, DEMAND_STATE_LABELS, extra),
        requester=display(raw, col["requester"]),
        department=display(raw, col["department"]),
        strategic_goals=_goals(raw, col["goals"]),
        priority=parse_priority(value(raw, col["priority"])),
        score=parse_number(value(raw, col["score"])),
        business_case_approved=parse_bool(value(raw, col["business_case_approved"])),
        submitted_at=parse_datetime(value(raw, col["submitted_at"])),
        decided_at=parse_datetime(value(raw, col["decided_at"])),
        estimated_cost=parse_number(value(raw, col["estimated_cost"])),
        project_id=value(raw, col["project"]) or None,
        extra=extra,
    )


_DEVICE_USED = {
    "name",
    "serial_number",
    "asset_tag",
    "os",
    "os_version",
    "manufacturer",
    "model_id",
    "assigned_to",
    "department",
    "install_status",
    "last_discovered",
    "purchase_date",
    "warranty_expiration",
}


def map_device(raw: Mapping[str, Any], *, source: str, table: str, base: str) -> Device:
    extra = _extra(raw, _DEVICE_USED)
    return Device(
        **_provenance(raw, source=source, table=table, base=base),
        name=value(raw, "name") or None,
        serial=value(raw, "serial_number") or None,
        asset_tag=value(raw, "asset_tag") or None,
        os=display(raw, "os"),
        os_version=value(raw, "os_version") or None,
        owner=display(raw, "assigned_to"),
        department=display(raw, "department"),
        last_seen_at=parse_datetime(value(raw, "last_discovered")),
        manufacturer=display(raw, "manufacturer"),
        model=display(raw, "model_id"),
        install_status=display(raw, "install_status"),
        purchase_date=parse_date(value(raw, "purchase_date")),
        warranty_expiration=parse_date(value(raw, "warranty_expiration")),
        extra=extra,
    )


def apply_asset(device: Device, asset: Mapping[str, Any]) -> Device:
    """Purchase and warranty dates from the device's ``alm_hardware`` asset, which owns them;
    where the asset leaves one empty, the CI's own column (older CMDBs keep it there) stands."""
    device.purchase_date = parse_date(value(asset, "purchase_date")) or device.purchase_date
    device.warranty_expiration = (
        parse_date(value(asset, "warranty_expiration")) or device.warranty_expiration
    )
    cost = value(asset, "cost")
    if cost:
        device.extra["asset_cost"] = parse_number(cost)
    device.extra["asset_sys_id"] = value(asset, "sys_id")
    return device


_PERSON_USED = {
    "user_name",
    "email",
    "name",
    "first_name",
    "last_name",
    "department",
    "location",
    "manager",
    "active",
}


def map_person(raw: Mapping[str, Any], *, source: str, table: str, base: str) -> Person:
    extra = _extra(raw, _PERSON_USED)
    email = normalize_email(value(raw, "email"))
    name = value(raw, "name") or " ".join(
        p for p in (value(raw, "first_name"), value(raw, "last_name")) if p
    )
    return Person(
        **_provenance(raw, source=source, table=table, base=base),
        upn=email or normalize_email(value(raw, "user_name")),
        email=email,
        name=name or None,
        department=display(raw, "department"),
        office=display(raw, "location"),
        manager=display(raw, "manager"),
        active=parse_bool(value(raw, "active")),
        extra=extra,
    )


MAPPERS: dict[str, Any] = {
    "incident": map_ticket,
    "sc_req_item": map_ticket,
    "problem": map_ticket,
    "change_request": map_ticket,
    "task_sla": map_sla,
    "pm_portfolio": map_work,
    "pm_program": map_work,
    "pm_project": map_work,
    "pm_project_task": map_work,
    "dmn_demand": map_demand,
    "cmdb_ci_computer": map_device,
    "sys_user": map_person,
}


def describe() -> dict[str, Any]:
    """The crosswalk tables, for ``crosswalk plugins show servicenow``."""
    return {
        "ticket_states": TICKET_STATES,
        "ticket_state_labels": TICKET_STATE_LABELS,
        "ticket_kinds": TICKET_KINDS,
        "work_states": WORK_STATES,
        "work_state_labels": WORK_STATE_LABELS,
        "phases": PHASES,
        "health": HEALTH,
        "demand_state_labels": DEMAND_STATE_LABELS,
        "sla_stages": SLA_STAGES,
        "work_columns": WORK_COLUMNS,
        "demand_columns": DEMAND_COLUMNS,
        "priority": "1-5 from the stored value; anything else -> null, native value kept in extra",
        "writes": {key: table for key, (table, _entity) in WRITE_TABLES.items()},
        "write_references": {c: t for c, (t, _k) in REFERENCE_LOOKUPS.items()},
        "priority_to_impact_urgency": PRIORITY_TO_IMPACT_URGENCY,
    }


# -- write-back: common-model fields -> native columns ------------------------------------------

# What each writer creates: writer key -> (table, entity).
WRITE_TABLES: dict[str, tuple[str, str]] = {
    "demand": ("dmn_demand", "demand"),
    "work_item:project": ("pm_project", "work_item"),
    "ticket:incident": ("incident", "ticket"),
    "ticket:problem": ("problem", "ticket"),
}

# How a ticket a writer created is resolved: table -> the columns a resolve sets (the note goes
# to close_notes and work_notes). Incidents need a close code on most instances; the source's
# `close_code` option names the instance's own choice where it differs.
RESOLVE: dict[str, dict[str, str]] = {
    "incident": {"state": "6", "close_code": "Solution provided"},
    "problem": {"state": "106"},
}
DONE_STATES: dict[str, set[str]] = {"incident": {"6", "7", "8"}, "problem": {"106", "107"}}

# Reference columns: native column -> (referenced table, the columns a value may match).
# A 32-character hex value is taken as a sys_id as it is.
REFERENCE_LOOKUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "department": ("cmn_department", ("name", "id")),
    "submitter": ("sys_user", ("email", "user_name", "name")),
    "project_manager": ("sys_user", ("email", "user_name", "name")),
    "sponsor": ("sys_user", ("email", "user_name", "name")),
    "assigned_to": ("sys_user", ("email", "user_name", "name")),
    "caller_id": ("sys_user", ("email", "user_name", "name")),
    "opened_by": ("sys_user", ("email", "user_name", "name")),
    "assignment_group": ("sys_user_group", ("name",)),
    "cmdb_ci": ("cmdb_ci_computer", ("name", "serial_number", "asset_tag")),
    "primary_program": ("pm_program", ("number", "short_description")),
}

# Ticket fields a writer may set: model field -> native column, per table (``description`` is
# the task's long text, which the model keeps in ``extra``).
TICKET_WRITE_COLUMNS: dict[str, dict[str, str]] = {
    "incident": {
        "title": "short_description",
        "description": "description",
        "assignment_group": "assignment_group",
        "assignee": "assigned_to",
        "requester": "caller_id",
        "category": "category",
        "device_name": "cmdb_ci",
        "device_serial": "cmdb_ci",
    },
    "problem": {
        "title": "short_description",
        "description": "description",
        "assignment_group": "assignment_group",
        "assignee": "assigned_to",
        "requester": "opened_by",
        "category": "category",
        "device_name": "cmdb_ci",
        "device_serial": "cmdb_ci",
    },
}

# Priority is derived from impact x urgency by a business rule on task tables, so a writer
# sets those two: the default matrix's (impact, urgency) for each priority.
PRIORITY_TO_IMPACT_URGENCY: dict[int, tuple[str, str]] = {
    1: ("1", "1"),
    2: ("1", "2"),
    3: ("2", "2"),
    4: ("2", "3"),
    5: ("3", "3"),
}

# Normalized -> stored values for the choices a project writer may set.
WORK_STATE_VALUES: dict[str, str] = {
    "proposed": "-5",
    "approved": "1",
    "in_progress": "2",
    "on_hold": "-3",
    "done": "3",
    "cancelled": "7",
}
HEALTH_VALUES: dict[str, str] = {"green": "green", "amber": "yellow", "red": "red"}
PHASE_VALUES: dict[str, str] = {
    p: p for p in ("initiating", "planning", "executing", "monitoring", "closing")
}

# Model fields a writer never sets: provenance, and what the platform computes.
NOT_WRITABLE = {
    "source",
    "platform",
    "source_id",
    "url",
    "updated_at",
    "created_at",
    "extra",
    "number",
    "kind",
}
