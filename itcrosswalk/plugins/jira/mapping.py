"""Jira Cloud and Jira Service Management records <-> the common model: the crosswalk tables.

The tables are plain data and double as documentation (``crosswalk plugins show jira``).
Names on a site are localized and ids differ per site, so the tables key on what is stable:
a ticket's state comes from its status's category (``new``, ``indeterminate``, ``done``) and
its resolution, refined by status names or ids the source configures; SLA and request-type
fields are found by their ``schema.custom`` type, never by name; SLA times are read from
``epochMillis`` and ``millis``, never from the localized ``friendly`` strings. Timestamps carry
the searching account's offset (``2022-12-08T02:22:18.889-0800``) and are stored in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...core.model import (
    Person,
    SlaRecord,
    Ticket,
    TicketKind,
    TicketState,
    WorkItem,
    as_text,
    built,
    is_mapping,
)

PLATFORM = "jira"

SLA_FIELD = "com.atlassian.servicedesk:sd-sla-field"
REQUEST_TYPE_FIELD = "com.atlassian.servicedesk:vp-origin"
ORGANIZATIONS_FIELD = "com.atlassian.servicedesk:sd-customer-organizations"
FIRST_RESPONSE_FIELD = "com.atlassian.jira.ext.charting:firstresponsedate"

# Issue type (or request type) name -> ticket kind: JSM's ITSM templates and their plain names.
DEFAULT_TICKET_KINDS: dict[str, str] = {
    "[System] Incident": "incident",
    "Incident": "incident",
    "[System] Service request": "request",
    "[System] Service request with approvals": "request",
    "Service request": "request",
    "Service Request": "request",
    "[System] Problem": "problem",
    "Problem": "problem",
    "[System] Change": "change",
    "Change": "change",
}
# A JSM issue of any other type is a request: what a customer raised through the portal.
FALLBACK_KIND = "request"

DEFAULT_PRIORITIES: dict[str, int] = {"Highest": 1, "High": 2, "Medium": 3, "Low": 4, "Lowest": 5}

# Status category -> ticket state, before names and resolutions refine it.
CATEGORY_STATES: dict[str, str] = {"new": "new", "indeterminate": "in_progress", "done": "resolved"}
# Status names of JSM's ITSM workflows that say more than their category (configurable).
DEFAULT_STATUS_STATES: dict[str, str] = {
    "Waiting for customer": "on_hold",
    "Pending": "on_hold",
    "Waiting for approval": "on_hold",
    "Closed": "closed",
    "Canceled": "cancelled",
    "Cancelled": "cancelled",
    "Declined": "cancelled",
}
# Resolutions that mean the work was not done.
CANCELLED_RESOLUTIONS = frozenset({"Won't Do", "Won't Fix", "Declined", "Cancelled", "Duplicate"})

# Status category -> work item state (Jira Software has no phase: it follows the state).
WORK_STATES: dict[str, str] = {"new": "proposed", "indeterminate": "in_progress", "done": "done"}
PHASE_BY_STATE: dict[str, str] = {
    "proposed": "initiating",
    "in_progress": "executing",
    "done": "closing",
    "cancelled": "closing",
}
# Issue type hierarchy level -> work item kind (1 is Jira's epic; 2+ Premium's levels above).
DEFAULT_LEVEL_KINDS: dict[int, str] = {1: "epic", 2: "program", 3: "portfolio"}


def parse_datetime(value: Any) -> datetime | None:
    """A Jira date-time (``2022-12-08T02:22:18.889-0800``) in UTC; null is unset."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if "Z" in value else value)
    if parsed.tzinfo is None:
        raise ValueError(f"a date-time without an offset: {value!r}")
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> datetime | None:
    """A Jira date (``2026-11-30``) as midnight UTC."""
    if value in (None, ""):
        return None
    return datetime.fromisoformat(str(value)[:10]).replace(tzinfo=UTC)


def epoch_millis(value: Any) -> datetime | None:
    """An SLA time object's instant, from ``epochMillis`` (its strings are localized)."""
    if not is_mapping(value) or value.get("epochMillis") is None:
        return None
    return datetime.fromtimestamp(int(value["epochMillis"]) / 1000, UTC)


def millis(value: Any) -> float | None:
    """An SLA duration object's seconds, from ``millis``."""
    if not is_mapping(value) or value.get("millis") is None:
        return None
    return int(value["millis"]) / 1000


def person_ref(user: Any) -> str | None:
    """A user as the store keeps people: the e-mail where visible, else the account id."""
    if not is_mapping(user):
        return None
    found = user.get("emailAddress") or user.get("accountId")
    return str(found).strip().lower() if found else None


def option_value(value: Any) -> str | None:
    """A select field's value (``{"value": ...}``), a group or team name, or a plain string."""
    if value in (None, ""):
        return None
    if is_mapping(value):
        found = value.get("value") or value.get("name") or value.get("title")
        return str(found) if found else None
    if isinstance(value, list):
        return option_value(value[0]) if value else None
    return str(value)


@dataclass
class SiteFields:
    """The site's own ids for the fields the mapping reads, found by ``schema.custom``."""

    sla: dict[str, str] = field(default_factory=dict)
    """SLA field id -> its (localized) name."""
    request_type: str | None = None
    organizations: str | None = None
    first_response: str | None = None
    assignment_group: str | None = None
    department: str | None = None
    done_statuses: set[str] = field(default_factory=set)
    """Status ids in the done category (reopen counting reads ids, not localized names)."""


@dataclass
class TicketRules:
    """How a source reads tickets: kinds, priorities and states as its config sets them."""

    kinds: dict[str, str]
    priorities: dict[str, int]
    states: dict[str, str]
    first_response_sla: tuple[str, ...] = ("Time to first response",)

    def __post_init__(self) -> None:
        # Tickets are built from these without validation: each is its field's plain value.
        self.kinds = {name: TicketKind(kind).value for name, kind in self.kinds.items()}
        self.states = {name: TicketState(state).value for name, state in self.states.items()}
        for name, number in self.priorities.items():
            if not isinstance(number, int) or not 1 <= number <= 5:
                raise ValueError(f"priority {name} = {number!r}: a priority is from 1 to 5")
        self.priorities = {name: int(number) for name, number in self.priorities.items()}


def ticket_kind(fields: Mapping[str, Any], rules: TicketRules, site: SiteFields) -> str:
    """Request type (id, then name) first, then issue type (id, then name)."""
    candidates: list[str] = []
    if site.request_type:
        value = fields.get(site.request_type)
        request_type = value.get("requestType") if is_mapping(value) else None
        if is_mapping(request_type):
            candidates += [str(request_type.get("id") or ""), str(request_type.get("name") or "")]
    issue_type = fields.get("issuetype") or {}
    candidates += [str(issue_type.get("id") or ""), str(issue_type.get("name") or "")]
    for candidate in candidates:
        if candidate and candidate in rules.kinds:
            return rules.kinds[candidate]
    return FALLBACK_KIND


def ticket_state(fields: Mapping[str, Any], rules: TicketRules) -> str:
    status = fields.get("status") or {}
    category = str((status.get("statusCategory") or {}).get("key") or "")
    resolution = str((fields.get("resolution") or {}).get("name") or "")
    state = rules.states.get(str(status.get("id") or "")) or rules.states.get(
        str(status.get("name") or "")
    )
    if state is None:
        state = CATEGORY_STATES.get(category, "unknown")
    if category == "done" and resolution in CANCELLED_RESOLUTIONS:
        return "cancelled"
    return state


def changelog_counts(
    histories: list[Mapping[str, Any]], site: SiteFields
) -> tuple[int | None, int]:
    """Reassignments (group changes, or assignee changes after the first assignment where the
    site has no group field) and reopens (out of a done status, or a resolution cleared)."""
    reassigned = 0
    assigned_before = False
    reopened = 0
    for history in sorted(histories, key=lambda h: str(h.get("created") or "")):
        status_reopen = resolution_cleared = False
        for item in history.get("items") or []:
            field_id = item.get("fieldId") or item.get("field")
            if site.assignment_group and field_id == site.assignment_group:
                reassigned += 1
            elif not site.assignment_group and field_id == "assignee":
                if assigned_before and item.get("to"):
                    reassigned += 1
                assigned_before = assigned_before or bool(item.get("to"))
            elif field_id == "status":
                if (
                    str(item.get("from")) in site.done_statuses
                    and str(item.get("to")) not in site.done_statuses
                ):
                    status_reopen = True
            elif field_id == "resolution" and item.get("from") and not item.get("to"):
                resolution_cleared = True
        if status_reopen or resolution_cleared:
            reopened += 1
    return reassigned, reopened


def _sla_cycles(value: Any) -> list[tuple[int, Mapping[str, Any], bool]]:
    """(index, cycle, ongoing) of an SLA field value; none for null or never started."""
    if not is_mapping(value):
        return []
    cycles = [(n, c, False) for n, c in enumerate(value.get("completedCycles") or [])]
    ongoing = value.get("ongoingCycle")
    if is_mapping(ongoing):  # absent (not null) when no cycle runs
        cycles.append((len(cycles), ongoing, True))
    return cycles


def first_response(
    fields: Mapping[str, Any], site: SiteFields, rules: TicketRules
) -> datetime | None:
    """When the first response came: the charting field, else the first-response SLA's stop."""
    if site.first_response and fields.get(site.first_response):
        return parse_datetime(fields[site.first_response])
    for field_id, name in site.sla.items():
        value = fields.get(field_id)
        if not is_mapping(value):
            continue
        if name in rules.first_response_sla or str(value.get("name")) in rules.first_response_sla:
            for _n, cycle, ongoing in _sla_cycles(value):
                if not ongoing:
                    return epoch_millis(cycle.get("stopTime"))
    return None


_TICKET_FIELDS = {
    "summary", "issuetype", "project", "status", "priority", "resolution", "resolutiondate",
    "created", "updated", "statuscategorychangedate", "assignee", "reporter", "components",
    "labels",
}  # fmt: skip


def map_ticket(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    rules: TicketRules,
    site: SiteFields,
    counts: tuple[int | None, int] | None,
) -> Ticket:
    """A JSM issue as a Ticket; ``counts`` are (reassignments, reopens) from its changelog."""
    fields = raw.get("fields") or {}
    key = str(raw.get("key") or "")
    priority_name = str((fields.get("priority") or {}).get("name") or "")
    state = ticket_state(fields, rules)
    organizations = fields.get(site.organizations) if site.organizations else None
    department = option_value(organizations) or (
        option_value(fields.get(site.department)) if site.department else None
    )
    components = fields.get("components") or []
    status = fields.get("status") or {}
    extra: dict[str, Any] = {
        "project": (fields.get("project") or {}).get("key"),
        "issue_type": (fields.get("issuetype") or {}).get("name"),
        "status": status.get("name"),
        "status_category": (status.get("statusCategory") or {}).get("key"),
        "resolution": (fields.get("resolution") or {}).get("name"),
        "priority_name": priority_name or None,
    }
    if fields.get("labels"):
        extra["labels"] = list(fields["labels"])
    if site.request_type and is_mapping(fields.get(site.request_type)):
        request_type = fields[site.request_type].get("requestType") or {}
        extra["request_type"] = {
            "id": request_type.get("id"),
            "name": request_type.get("name"),
            "service_desk": request_type.get("serviceDeskId"),
        }
    if state == "unknown":
        extra["native_state"] = status.get("name")
    if priority_name and priority_name not in rules.priorities:
        extra["native_priority"] = priority_name
    stamp = parse_datetime(fields.get("updated"))
    created = parse_datetime(fields.get("created"))
    ident = str(raw["id"])
    if not ident:
        raise ValueError("issue has no id")
    # Each value is its field's type by construction (text, aware UTC times that
    # parse_datetime raises on anything else for, a kind, state and priority of the rules,
    # which hold them checked), so the model is built without validating it again;
    # test_mapping_fast_jira.py holds it to the validated model and bad issues quarantined.
    return built(
        Ticket,
        source=source,
        platform=PLATFORM,
        source_id=ident,
        url=f"{base}/browse/{key}" if key else None,
        updated_at=stamp,
        created_at=created,
        kind=ticket_kind(fields, rules, site),
        number=key or None,
        title=as_text(fields.get("summary")),
        priority=rules.priorities.get(priority_name),
        state=state,
        opened_at=created,
        responded_at=first_response(fields, site, rules),
        resolved_at=parse_datetime(fields.get("resolutiondate")),
        closed_at=parse_datetime(fields.get("statuscategorychangedate"))
        if state in ("closed", "cancelled")
        else None,
        assignment_group=option_value(fields.get(site.assignment_group))
        if site.assignment_group
        else None,
        assignee=person_ref(fields.get("assignee")),
        requester=person_ref(fields.get("reporter")),
        department=department,
        category=option_value(components[0]) if components else None,
        reassignment_count=counts[0] if counts else None,
        reopen_count=counts[1] if counts else None,
        extra={k: v for k, v in extra.items() if v not in (None, "", [])},
    )


def sla_rows(raw: Mapping[str, Any], site: SiteFields) -> list[dict[str, Any]]:
    """One row per SLA cycle of an issue: what the SLA stream reads (and quarantines) singly."""
    fields = raw.get("fields") or {}
    rows = []
    for field_id, name in site.sla.items():
        for index, cycle, ongoing in _sla_cycles(fields.get(field_id)):
            rows.append(
                {
                    "id": f"{raw['id']}:{field_id}:{index}",
                    "issue": {"id": str(raw["id"]), "key": raw.get("key")},
                    "updated": fields.get("updated"),
                    "field": field_id,
                    "name": (fields.get(field_id) or {}).get("name") or name,
                    "ongoing": ongoing,
                    "cycle": dict(cycle),
                }
            )
    return rows


def map_sla(row: Mapping[str, Any], *, source: str, base: str, now: datetime) -> SlaRecord:
    """One SLA cycle as an SlaRecord: elapsed and goal are SLA-calendar time (``millis``)."""
    cycle = row["cycle"]
    breach_at = epoch_millis(cycle.get("breachTime"))
    paused = bool(cycle.get("paused"))
    if not row["ongoing"]:
        stage = "completed"
    else:
        stage = "paused" if paused else "in_progress"
    breached = cycle.get("breached")
    if breached is not None:
        breached = bool(breached)
        if row["ongoing"] and not paused and breach_at is not None and now > breach_at:
            # The flag is computed on read; a running clock past its breach time has breached.
            breached = True
    elapsed, goal = millis(cycle.get("elapsedTime")), millis(cycle.get("goalDuration"))
    percent = round(100 * elapsed / goal, 2) if elapsed is not None and goal else None
    key = (row.get("issue") or {}).get("key")
    # Each value is its field's type by construction (aware UTC times from epoch_millis,
    # floats from millis, a stage of the enumeration, a bool), as a ticket's: built, not
    # validated again.
    return built(
        SlaRecord,
        source=source,
        platform=PLATFORM,
        source_id=str(row["id"]),
        url=f"{base}/browse/{key}" if key else None,
        updated_at=parse_datetime(row.get("updated")),
        ticket_id=str(row["issue"]["id"]),
        sla_name=str(row.get("name") or row["field"]),
        stage=stage,
        has_breached=breached,
        start_at=epoch_millis(cycle.get("startTime")),
        end_at=epoch_millis(cycle.get("stopTime")),
        planned_end_at=breach_at,
        # Jira counts elapsed time on the SLA's calendar (working hours), never wall time.
        elapsed_seconds=None,
        business_elapsed_seconds=elapsed,
        elapsed_percent=None,
        business_elapsed_percent=percent,
        extra={
            "field": row["field"],
            "goal_seconds": goal,
            "cycle": "ongoing" if row["ongoing"] else "completed",
        },
    )


def map_work(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    levels: Mapping[int, str],
    site: SiteFields,
    start_field: str | None,
) -> WorkItem:
    """An epic (or an issue of a level above) as a WorkItem."""
    fields = raw.get("fields") or {}
    key = str(raw.get("key") or "")
    issue_type = fields.get("issuetype") or {}
    level = int(issue_type.get("hierarchyLevel") or 1)
    status = fields.get("status") or {}
    category = str((status.get("statusCategory") or {}).get("key") or "")
    resolution = str((fields.get("resolution") or {}).get("name") or "")
    state = WORK_STATES.get(category, "unknown")
    if state == "done" and resolution in CANCELLED_RESOLUTIONS:
        state = "cancelled"
    parent = fields.get("parent") or {}
    priority = DEFAULT_PRIORITIES.get(str((fields.get("priority") or {}).get("name") or ""))
    extra: dict[str, Any] = {
        "project": (fields.get("project") or {}).get("key"),
        "issue_type": issue_type.get("name"),
        "status": status.get("name"),
        "resolution": resolution or None,
    }
    if state == "unknown":
        extra["native_state"] = status.get("name")
    ident = str(raw["id"])
    if not ident:
        raise ValueError("issue has no id")
    return built(  # each value its field's type by construction, as a ticket's
        WorkItem,
        source=source,
        platform=PLATFORM,
        source_id=ident,
        url=f"{base}/browse/{key}" if key else None,
        updated_at=parse_datetime(fields.get("updated")),
        created_at=parse_datetime(fields.get("created")),
        kind=levels.get(level, "epic"),
        number=key or None,
        name=str(fields.get("summary") or key),
        parent_id=str(parent["id"]) if parent.get("id") else None,
        state=state,
        phase=PHASE_BY_STATE.get(state, "unknown"),
        manager=person_ref(fields.get("assignee")),
        sponsor=person_ref(fields.get("reporter")),
        department=option_value(fields.get(site.department)) if site.department else None,
        priority=priority,
        planned_start=parse_date(fields.get(start_field)) if start_field else None,
        planned_finish=parse_date(fields.get("duedate")),
        actual_finish=parse_datetime(fields.get("resolutiondate")) if state == "done" else None,
        extra={k: v for k, v in extra.items() if v not in (None, "")},
    )


def map_person(raw: Mapping[str, Any], *, source: str, base: str) -> Person:
    email = str(raw.get("emailAddress") or "").strip() or None
    return Person(
        source=source,
        platform=PLATFORM,
        source_id=str(raw["accountId"]),
        url=f"{base}/jira/people/{raw['accountId']}",
        upn=email.lower() if email else None,
        email=email,
        name=raw.get("displayName"),
        active=raw.get("active"),
        extra={k: raw[k] for k in ("timeZone", "accountType") if raw.get(k)},
    )


def describe() -> dict[str, Any]:
    """The crosswalk tables, as ``crosswalk plugins show jira`` prints them."""
    return {
        "ticket_kinds": DEFAULT_TICKET_KINDS,
        "ticket_kind_fallback": FALLBACK_KIND,
        "priorities": DEFAULT_PRIORITIES,
        "ticket_states_by_category": CATEGORY_STATES,
        "ticket_states_by_status": DEFAULT_STATUS_STATES,
        "cancelled_resolutions": sorted(CANCELLED_RESOLUTIONS),
        "work_states_by_category": WORK_STATES,
        "work_kinds_by_level": DEFAULT_LEVEL_KINDS,
        "fields_found_by_schema": {
            "sla": SLA_FIELD,
            "request_type": REQUEST_TYPE_FIELD,
            "organizations (department)": ORGANIZATIONS_FIELD,
            "first response": FIRST_RESPONSE_FIELD,
        },
    }
