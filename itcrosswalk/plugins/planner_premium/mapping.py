"""Dataverse rows of Planner premium plans (``msdyn_*`` tables) -> the common model.

Plain tables and small functions. Option-set values are integers whose labels differ by org
(two dependency link-type ranges, localized status labels), so nothing here keys on a number:
the adapter reads each org's labels from its metadata and hands them in, and these tables key on
the label's words. ``msdyn_progress`` is a fraction 0..1 (shown as a percent); ``msdyn_tza*``
columns are project-calendar wall times rendered with a ``Z``, never instants, so they are kept
as naive ``YYYY-MM-DDTHH:MM:SS`` text in ``extra``. A column the org's metadata lacks (the
Project Operations cost and health columns on a pure Planner premium org) is listed in
``extra["absent_columns"]`` and its model field stays empty: absent, not 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...core.model import Assignment, Person, WorkItem, WorkItemKind, built, normalize_email

PLATFORM = "planner_premium"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"

Labels = Mapping[str, Mapping[int, str]]
"""attribute logical name -> option value -> label, as one org's metadata says."""

# The model fields each table fills, and the Dataverse column behind each.
PROJECT_COLUMNS: dict[str, str] = {
    "name": "msdyn_subject",
    "planned_start": "msdyn_scheduledstart",
    "planned_finish": "msdyn_finish",
    "percent_complete": "msdyn_progress",
    "manager": "_msdyn_projectmanager_value",
    "updated_at": "modifiedon",
    "created_at": "createdon",
}
PROJECT_EXTRA_COLUMNS = [
    "msdyn_description",
    "msdyn_businesscase",
    "msdyn_valuestatement",
    "_msdyn_program_value",
    "msdyn_tzascheduledstart",
    "msdyn_tzafinish",
    "msdyn_effort",
    "msdyn_effortcompleted",
    "msdyn_effortremaining",
    "msdyn_duration",
    "msdyn_calendarid",
    "statecode",
    "statuscode",
    "versionnumber",
]
# Project Operations (PSA) adds these; a pure Planner premium org has none of them.
PROJECT_OPTIONAL: dict[str, str] = {
    "budget": "msdyn_totalplannedcost",
    "actual_cost": "msdyn_totalactualcost",
    "forecast_cost": "msdyn_costestimateatcomplete",
    "health": "msdyn_overallprojectstatus",
}
TASK_COLUMNS: dict[str, str] = {
    "name": "msdyn_subject",
    "planned_start": "msdyn_scheduledstart",
    "planned_finish": "msdyn_scheduledend",
    "percent_complete": "msdyn_progress",
    "priority": "msdyn_priority",
    "updated_at": "modifiedon",
    "created_at": "createdon",
}
TASK_EXTRA_COLUMNS = [
    "_msdyn_project_value",
    "_msdyn_parenttask_value",
    "_msdyn_projectbucket_value",
    "_msdyn_projectsprint_value",
    "msdyn_outlinelevel",
    "msdyn_displaysequence",
    "msdyn_summary",
    "msdyn_ismilestone",
    "msdyn_iscritical",
    "msdyn_tzascheduledstart",
    "msdyn_tzascheduledend",
    "msdyn_effort",
    "msdyn_effortcompleted",
    "msdyn_effortremaining",
    "msdyn_duration",
    "msdyn_descriptionplaintext",
    "versionnumber",
]
RESOURCE_COLUMNS = [
    "name",
    "resourcetype",
    "_userid_value",
    "msdyn_primaryemail",
    "_calendarid_value",
    "timezone",
    "statecode",
    "modifiedon",
    "createdon",
    "versionnumber",
]

# Label words -> normalized value; matched on the lower-cased label.
HEALTH_WORDS = {"green": "green", "yellow": "amber", "amber": "amber", "red": "red"}
PRIORITY_WORDS = {"urgent": 1, "important": 2, "medium": 3, "normal": 3, "low": 5}
INACTIVE_STATUS_WORDS = {
    "complete": "done",
    "completed": "done",
    "closed": "done",
    "cancel": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "hold": "on_hold",
    "on hold": "on_hold",
}
RESOURCE_TYPES = {"user": "user", "generic": "generic", "contact": "contact", "account": "account"}


def parse_instant(value: Any) -> datetime | None:
    """A Dataverse ``DateTimeOffset`` (UTC, ``Z``, second precision) as an aware datetime."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def wall_time(value: Any) -> str | None:
    """A ``msdyn_tza*`` value: the project calendar's wall time, written with a ``Z`` that does
    not mean UTC; kept as naive text so nothing downstream takes it for an instant."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    return _ZONE_SUFFIX.sub("", value)


_ZONE_SUFFIX = re.compile(r"(Z|[+-]\d\d:\d\d)$")
_MS_DATE = re.compile(r"/Date\((-?\d+)\)/")


def fraction_percent(value: Any) -> float | None:
    """``msdyn_progress`` (a fraction 0..1) as a percent 0..100."""
    if value is None:
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"msdyn_progress {number} is not a fraction between 0 and 1")
    return round(number * 100.0, 4)


def label(raw: Mapping[str, Any], column: str, labels: Labels) -> str | None:
    """The label of an option-set column: the org's metadata first, the row's FormattedValue
    annotation second; None when the row has no value."""
    value = raw.get(column)
    if value is None:
        return None
    found = labels.get(column, {}).get(int(value))
    if found is None:
        found = raw.get(column + FORMATTED)
    return str(found) if found is not None else None


def _word(text: str | None, table: Mapping[str, Any]) -> Any:
    if not text:
        return None
    folded = text.strip().lower()
    if folded in table:
        return table[folded]
    for word, value in table.items():
        if word in folded:
            return value
    return None


def _extra(raw: Mapping[str, Any], columns: list[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for column in columns:
        value = raw.get(column)
        if value is None:
            continue
        if column.startswith("msdyn_tza"):
            extra[column] = wall_time(value)
        else:
            extra[column] = value
        name = raw.get(column + FORMATTED)
        if column.startswith("_") and name:
            extra[column + "_name"] = name
    return extra


def record_url(base: str, table: str, record_id: str) -> str:
    """The record in the environment's model-driven form (works for every ``msdyn_`` table)."""
    return f"{base}/main.aspx?pagetype=entityrecord&etn={table}&id={record_id}"


def project_state(raw: Mapping[str, Any], labels: Labels, progress: float | None) -> str:
    """Project for the web keeps no closed state: an inactive plan says why in its status
    reason; an active one is done at 100 % progress and in progress once it has any."""
    state = raw.get("statecode")
    if state is None:
        return "unknown"
    if int(state) != 0:
        return _word(label(raw, "statuscode", labels), INACTIVE_STATUS_WORDS) or "on_hold"
    if progress is not None and progress >= 100.0:
        return "done"
    if progress:
        return "in_progress"
    start = parse_instant(raw.get("msdyn_scheduledstart"))
    return "approved" if start is None or start > datetime.now(UTC) else "in_progress"


def map_project(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    labels: Labels,
    absent: list[str],
    emails: Mapping[str, str],
) -> WorkItem:
    """An ``msdyn_project`` row -> a project ``WorkItem``."""
    project_id = raw.get("msdyn_projectid")
    if not isinstance(project_id, str) or not project_id:
        raise ValueError("row has no msdyn_projectid")
    name = raw.get("msdyn_subject")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"plan {project_id} has no msdyn_subject")
    percent = fraction_percent(raw.get("msdyn_progress"))
    extra = _extra(raw, PROJECT_EXTRA_COLUMNS)
    extra["status"] = label(raw, "statuscode", labels)
    fields: dict[str, Any] = {}
    for target, column in PROJECT_OPTIONAL.items():
        if column in absent or raw.get(column) is None:
            continue
        if target == "health":
            fields["health"] = (
                _word(label(raw, column, labels), HEALTH_WORDS) or "unknown"
            )  # fmt: skip
        else:
            fields[target] = float(raw[column])
    if absent:
        extra["absent_columns"] = sorted(absent)
    manager = raw.get("_msdyn_projectmanager_value")
    # Each value is its field's type by construction (text, floats, aware times that
    # parse_instant raises on anything else for, the enumerations' values from the word
    # tables), so the model is built without validating it again; as is a task's.
    return built(
        WorkItem,
        source=source,
        platform=PLATFORM,
        source_id=project_id,
        url=record_url(base, "msdyn_project", project_id),
        updated_at=parse_instant(raw.get("modifiedon")),
        created_at=parse_instant(raw.get("createdon")),
        kind=WorkItemKind.PROJECT.value,
        name=name.strip(),
        state=project_state(raw, labels, percent),
        manager=emails.get(str(manager)) if manager else None,
        planned_start=parse_instant(raw.get("msdyn_scheduledstart")),
        planned_finish=parse_instant(raw.get("msdyn_finish")),
        percent_complete=percent,
        extra=extra,
        **fields,
    )


def planned_work(value: Any) -> list[dict[str, Any]]:
    """``msdyn_plannedwork``: a JSON *string* of ``{Start, End, Hours}`` with ``/Date(ms)/``."""
    if value in (None, ""):
        return []
    items = json.loads(value) if isinstance(value, str) else value
    out = []
    for item in items or []:
        slot: dict[str, Any] = {"hours": item.get("Hours")}
        for key in ("Start", "End"):
            found = _MS_DATE.match(str(item.get(key) or ""))
            slot[key.lower()] = (
                datetime.fromtimestamp(int(found.group(1)) / 1000, UTC).isoformat()
                if found
                else None
            )
        out.append(slot)
    return out


ASSIGNMENT_COLUMNS = [
    "_msdyn_taskid_value",
    "_msdyn_projectid_value",
    "_msdyn_projectteamid_value",
    "_msdyn_bookableresourceid_value",
    "msdyn_plannedwork",
    "msdyn_start",
    "msdyn_finish",
    "msdyn_effort",
    "msdyn_effortcompleted",
    "msdyn_effortremaining",
    "msdyn_committype",
    "msdyn_name",
    "statecode",
    "modifiedon",
    "createdon",
    "versionnumber",
]


def map_assignment(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    resources: Mapping[str, Mapping[str, Any]],
) -> Assignment:
    """An ``msdyn_resourceassignment`` -> an ``Assignment`` of a bookable resource on a task;
    a generic resource is a role nobody fills yet. The day contour (``msdyn_plannedwork``) is
    kept in ``extra``."""
    assignment_id = raw.get("msdyn_resourceassignmentid")
    if not isinstance(assignment_id, str) or not assignment_id:
        raise ValueError("row has no msdyn_resourceassignmentid")
    resource_id = raw.get("_msdyn_bookableresourceid_value")
    resource = resources.get(str(resource_id or ""), {})
    generic = resource.get("resource_type") == "generic"
    effort = raw.get("msdyn_effort")
    done = raw.get("msdyn_effortcompleted")
    left = raw.get("msdyn_effortremaining")
    state = raw.get("statecode")
    return Assignment(
        source=source,
        platform=PLATFORM,
        source_id=assignment_id,
        url=record_url(base, "msdyn_resourceassignment", assignment_id),
        updated_at=parse_instant(raw.get("modifiedon")),
        created_at=parse_instant(raw.get("createdon")),
        work_item_id=raw.get("_msdyn_taskid_value"),
        project_id=raw.get("_msdyn_projectid_value"),
        work_item_name=raw.get("_msdyn_taskid_value" + FORMATTED) or raw.get("msdyn_name"),
        resource_id=str(resource_id) if resource_id else None,
        person_upn=None if generic else resource.get("upn"),
        person_name=None if generic else resource.get("name"),
        role=resource.get("name") if generic else None,
        generic=generic,
        start=parse_instant(raw.get("msdyn_start")),
        finish=parse_instant(raw.get("msdyn_finish")),
        planned_hours=None if effort is None else float(effort),
        actual_hours=None if done is None else float(done),
        remaining_hours=None if left is None else float(left),
        booking="committed" if raw.get("msdyn_committype") == 192350001 else None,
        active=None if state is None else int(state) == 0,
        extra={
            "team_member_id": raw.get("_msdyn_projectteamid_value"),
            "planned_work": planned_work(raw.get("msdyn_plannedwork")),
        },
    )


def map_task(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    labels: Labels,
) -> WorkItem:
    """An ``msdyn_projecttask`` row -> a task or milestone ``WorkItem`` under its summary task,
    or under its plan at the top level; bucket and sprint kept."""
    task_id = raw.get("msdyn_projecttaskid")
    project_id = raw.get("_msdyn_project_value")
    if not isinstance(task_id, str) or not task_id or not project_id:
        raise ValueError("row has no msdyn_projecttaskid or _msdyn_project_value")
    name = raw.get("msdyn_subject")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"task {task_id} has no msdyn_subject")
    extra = _extra(raw, TASK_EXTRA_COLUMNS)
    priority_label = label(raw, "msdyn_priority", labels)
    if priority_label:
        extra["priority_label"] = priority_label
    return built(
        WorkItem,
        source=source,
        platform=PLATFORM,
        source_id=task_id,
        url=record_url(base, "msdyn_projecttask", task_id),
        updated_at=parse_instant(raw.get("modifiedon")),
        created_at=parse_instant(raw.get("createdon")),
        kind=(WorkItemKind.MILESTONE if raw.get("msdyn_ismilestone") else WorkItemKind.TASK).value,
        name=name.strip(),
        parent_id=str(raw.get("_msdyn_parenttask_value") or project_id),
        planned_start=parse_instant(raw.get("msdyn_scheduledstart")),
        planned_finish=parse_instant(raw.get("msdyn_scheduledend")),
        percent_complete=fraction_percent(raw.get("msdyn_progress")),
        priority=_word(priority_label, PRIORITY_WORDS),
        extra=extra,
    )


def map_resource(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    labels: Labels,
    users: Mapping[str, Mapping[str, Any]],
    teams: Mapping[str, list[dict[str, Any]]],
) -> Person:
    """A ``bookableresource`` (and the ``systemuser`` behind a User one) -> a ``Person``; the
    plans it is a team member of are kept for the capacity work."""
    resource_id = raw.get("bookableresourceid")
    if not isinstance(resource_id, str) or not resource_id:
        raise ValueError("row has no bookableresourceid")
    user = users.get(str(raw.get("_userid_value") or ""), {})
    upn = normalize_email(user.get("domainname"))
    email = normalize_email(raw.get("msdyn_primaryemail") or user.get("internalemailaddress"))
    kind = _word(label(raw, "resourcetype", labels), RESOURCE_TYPES) or "unknown"
    extra: dict[str, Any] = {"resource_type": kind}
    for column in ("_userid_value", "_calendarid_value", "timezone", "versionnumber"):
        if raw.get(column) is not None:
            extra[column] = raw[column]
    if teams.get(resource_id):
        extra["team_memberships"] = teams[resource_id]
    state = raw.get("statecode")
    return Person(
        source=source,
        platform=PLATFORM,
        source_id=resource_id,
        url=record_url(base, "bookableresource", resource_id),
        updated_at=parse_instant(raw.get("modifiedon")),
        created_at=parse_instant(raw.get("createdon")),
        upn=upn,
        email=email or upn,
        name=(raw.get("name") or user.get("fullname") or None),
        active=None if state is None else int(state) == 0,
        extra=extra,
    )


def describe() -> dict[str, Any]:
    """The crosswalk tables, for ``crosswalk plugins show planner_premium``."""
    return {
        "msdyn_project -> work_item(project)": {**PROJECT_COLUMNS, **PROJECT_OPTIONAL},
        "msdyn_projecttask -> work_item(task|milestone)": TASK_COLUMNS,
        "bookableresource -> person": {
            "upn": "systemuser.domainname",
            "email": "msdyn_primaryemail",
            "name": "name",
        },
        "msdyn_resourceassignment -> assignment": {
            "work_item_id": "_msdyn_taskid_value",
            "project_id": "_msdyn_projectid_value",
            "resource_id": "_msdyn_bookableresourceid_value",
            "person_upn": "bookableresource -> systemuser.domainname",
            "planned_hours": "msdyn_effort",
            "actual_hours": "msdyn_effortcompleted",
            "start": "msdyn_start",
            "finish": "msdyn_finish",
        },
        "health (label words)": HEALTH_WORDS,
        "priority (label words)": PRIORITY_WORDS,
        "inactive status reason (label words)": INACTIVE_STATUS_WORDS,
        "notes": [
            "option-set labels are read from each org's metadata, never hard-coded",
            "msdyn_progress is a fraction; percent_complete = 100 x msdyn_progress",
            "msdyn_tza* are project-calendar wall times, kept as naive text in extra",
            "cost and health columns absent from the org are listed in extra.absent_columns",
        ],
    }
