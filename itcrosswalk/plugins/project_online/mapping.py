"""ProjectData rows <-> the common model: the crosswalk tables, and the functions that apply them.

ProjectData (the OData v3 reporting feed of Project Online and Project Server) has no native
state, phase or health for a project: instances keep them in enterprise custom fields, which the
feed exposes as properties named after the field's display name with spaces and special
characters removed (``Strategic Goals`` -> ``StrategicGoals``; letters outside ASCII stay). A
source's ``custom_fields`` option says which custom field means which model field; the tables
below map the values those fields commonly hold. Every property the mapping does not read is
kept in ``extra`` under its own name, non-ASCII names included.

Values arrive as the feed sends them: decimals as strings (``"2400.000000"``), integers as
numbers, dates as ``/Date(ms)/`` (verbose JSON) or ISO strings without an offset (JSON light).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...core.model import (
    Person,
    WorkItem,
    WorkItemKind,
    built,
    normalize_email,
    parse_priority,
)

PLATFORM = "project_online"

# Custom-field value (lower case) -> WorkState. PWA has no built-in project state; these are the
# words City templates and Microsoft's sample EPTs use.
WORK_STATES: dict[str, str] = {
    "proposed": "proposed",
    "proposal": "proposed",
    "draft": "proposed",
    "create": "proposed",
    "requested": "proposed",
    "approved": "approved",
    "selected": "approved",
    "not started": "approved",
    "planned": "approved",
    "active": "in_progress",
    "in progress": "in_progress",
    "underway": "in_progress",
    "execute": "in_progress",
    "on hold": "on_hold",
    "paused": "on_hold",
    "suspended": "on_hold",
    "completed": "done",
    "complete": "done",
    "closed": "done",
    "done": "done",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "rejected": "cancelled",
}

# Custom-field value or workflow stage/phase name (lower case) -> Phase.
PHASES: dict[str, str] = {
    "initiate": "initiating",
    "initiating": "initiating",
    "initiation": "initiating",
    "create": "initiating",
    "propose": "initiating",
    "select": "planning",
    "plan": "planning",
    "planning": "planning",
    "execute": "executing",
    "executing": "executing",
    "execution": "executing",
    "manage": "executing",
    "monitor": "monitoring",
    "monitoring": "monitoring",
    "monitoring and controlling": "monitoring",
    "close": "closing",
    "closing": "closing",
    "closure": "closing",
    "finished": "closing",
}

# Custom-field value (lower case) -> Health. Graphical indicators travel as their words.
HEALTH: dict[str, str] = {
    "green": "green",
    "on track": "green",
    "good": "green",
    "yellow": "amber",
    "amber": "amber",
    "at risk": "amber",
    "warning": "amber",
    "red": "red",
    "off track": "red",
    "critical": "red",
    "late": "red",
}

# Model fields a source's ``custom_fields`` option may map, and how their values are read.
CUSTOM_FIELD_TARGETS: dict[str, str] = {
    "state": "enum WORK_STATES",
    "phase": "enum PHASES",
    "health": "enum HEALTH",
    "department": "text",
    "goals": "list (';' or ',' separated)",
    "priority": "1-5 (leading digits)",
    "score": "number",
    "sponsor": "text",
    "manager": "text (overrides ProjectOwnerName)",
    "business_case_approved": "yes/no",
    "external_ref": "text",
    "number": "text (overrides ProjectIdentifier)",
    "budget": "number (overrides the baseline cost)",
    "parent_id": "text (a program or parent project reference)",
}

# Normalized value -> the word written to a custom field (the words the tables above read back).
WRITE_WORDS: dict[str, dict[str, str]] = {
    "state": {
        "proposed": "Proposed",
        "approved": "Approved",
        "in_progress": "In Progress",
        "on_hold": "On Hold",
        "done": "Completed",
        "cancelled": "Cancelled",
    },
    "phase": {
        "initiating": "Initiate",
        "planning": "Plan",
        "executing": "Execute",
        "monitoring": "Monitor",
        "closing": "Close",
    },
    "health": {"green": "On Track", "amber": "At Risk", "red": "Off Track"},
}

# model field -> the Projects property read for it (first one present wins)
PROJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("ProjectName",),
    "manager": ("ProjectOwnerName", "ProjectManagerName"),
    "department": ("ProjectDepartments",),
    # ProjectStartDate/FinishDate are the current schedule (the finish becomes the actual finish
    # once the project completes); the plan committed to is baseline 0.
    "planned_start": ("ProjectStartDate",),
    "planned_finish": ("ProjectFinishDate",),
    "baseline_start": ("ProjectBaselineStartDate",),
    "baseline_finish": ("ProjectBaselineFinishDate",),
    "baseline_cost": ("ProjectBaselineCost",),
    "actual_start": ("ProjectActualStartDate",),
    "actual_finish": ("ProjectActualFinishDate",),
    "percent_complete": ("ProjectPercentCompleted",),
    "forecast_cost": ("ProjectCost",),
    "actual_cost": ("ProjectACWP", "ProjectActualCost"),
    "planned_value": ("ProjectBCWS",),
    "earned_value": ("ProjectBCWP",),
    "budget": ("ProjectBudgetCost",),
    "updated_at": ("ProjectModifiedDate",),
    "created_at": ("ProjectCreatedDate",),
}

# Tasks: only summary tasks and milestones become work items.
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("TaskName",),
    "planned_start": ("TaskStartDate",),
    "planned_finish": ("TaskFinishDate",),
    "baseline_start": ("TaskBaselineStartDate",),
    "baseline_finish": ("TaskBaselineFinishDate",),
    "baseline_cost": ("TaskBaselineCost",),
    "actual_start": ("TaskActualStartDate",),
    "actual_finish": ("TaskActualFinishDate",),
    "percent_complete": ("TaskPercentCompleted",),
    "forecast_cost": ("TaskCost",),
    "actual_cost": ("TaskACWP", "TaskActualCost"),
    "planned_value": ("TaskBCWS",),
    "earned_value": ("TaskBCWP",),
    "budget": ("TaskBudgetCost",),
    "updated_at": ("TaskModifiedDate",),
    "created_at": ("TaskCreatedDate",),
}

# Named schedule and cost facts the model has no field for, kept in ``extra`` under plain names.
PROJECT_EXTRA: dict[str, str] = {
    "ProjectActualCost": "actual_cost_to_date",
    "ProjectRemainingCost": "remaining_cost",
    "ProjectWork": "work_hours",
    "ProjectActualWork": "actual_work_hours",
    "ProjectRemainingWork": "remaining_work_hours",
    "ProjectStatusDate": "status_date",
    "EnterpriseProjectTypeName": "enterprise_project_type",
    "ProjectBaselineWork": "baseline_work_hours",
    "ProjectBaselineBudgetCost": "baseline_budget_cost",
}
TASK_EXTRA: dict[str, str] = {
    "TaskActualCost": "actual_cost_to_date",
    "TaskRemainingCost": "remaining_cost",
    "TaskWork": "work_hours",
    "TaskActualWork": "actual_work_hours",
    "TaskRemainingWork": "remaining_work_hours",
    "TaskBaselineWork": "baseline_work_hours",
    "TaskBaselineBudgetCost": "baseline_budget_cost",
}
_DATE_EXTRAS = {
    "ProjectStatusDate",
}
_TEXT_EXTRAS = {"EnterpriseProjectTypeName"}

# OData bookkeeping that is not data.
_META = {"__metadata", "__deferred", "odata.type", "odata.id", "odata.editLink"}

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


# -- values ---------------------------------------------------------------------------------------


def odata_string(value: str) -> str:
    """An OData string literal: quoted, its quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def property_name(display_name: str) -> str:
    """The feed property of a custom field: its display name without spaces and special
    characters (letters and digits of any script stay, as ProjectData keeps them)."""
    known = _PROPERTY_NAMES.get(display_name)
    if known is None:
        text = unicodedata.normalize("NFC", display_name)
        known = "".join(ch for ch in text if ch.isalnum() or ch == "_")
        if len(_PROPERTY_NAMES) < 4096:  # names come from a source's configuration: a few
            _PROPERTY_NAMES[display_name] = known
    return known


_PROPERTY_NAMES: dict[str, str] = {}


def parse_datetime(value: Any, zone: tzinfo = UTC) -> datetime | None:
    """A feed date: ``/Date(ms)/`` (verbose), ISO 8601 with or without an offset (light);
    ``None`` and ``""`` are unset. Dates without an offset are the server's local time
    (``zone``). Anything else raises, so the record is quarantined rather than guessed."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    if zone is not UTC and zone in _UTC_ZONES:
        zone = UTC  # a zone that is UTC by another name: the same instants, no conversion
    if value[:6] == "/Date(" and value[-2:] == ")/":
        # The common form first (milliseconds, no offset): what the pattern below reads, in a
        # few slices; \d and str.isdecimal are the same digits.
        ticks = value[6:-2]
        if ticks.isdecimal() or (ticks[:1] == "-" and ticks[1:].isdecimal()):
            moment = _from_ms(int(ticks))
            return moment if zone is UTC else moment.replace(tzinfo=zone).astimezone(UTC)
    match = _MS_DATE.match(value) if value[:1] == "/" else None
    if match:
        # Edm.DateTime ticks are the wall-clock time written as if it were UTC (the server's
        # local time here); Edm.DateTimeOffset carries an offset and its ticks are UTC.
        moment = _EPOCH + timedelta(milliseconds=int(match.group(1)))
        if match.group(2) or zone is UTC:
            return moment
        return moment.replace(tzinfo=zone).astimezone(UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)


def _from_ms(ms: int) -> datetime:
    """Milliseconds since 1970 as an aware UTC time: ``_EPOCH + timedelta(milliseconds=ms)``,
    in whole seconds then the milliseconds (exact, as the sum is), at half its cost."""
    seconds, rest = divmod(ms, 1000)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # outside what the platform's clock reads
        return _EPOCH + timedelta(milliseconds=ms)
    return moment.replace(microsecond=rest * 1000) if rest else moment


def _utc_zones() -> frozenset[tzinfo]:
    zones: set[tzinfo] = set()
    for key in (
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "UCT",
        "Etc/Universal",
        "Universal",
        "Etc/Zulu",
        "Zulu",
    ):
        try:
            zones.add(ZoneInfo(key))  # cached: the instance a source's ``timezone`` gets
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return frozenset(zones)


_UTC_ZONES = _utc_zones()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_decimal(value: Any) -> float | None:
    """Edm.Decimal arrives as a string (``"2400.000000"``), Edm.Double and integers as numbers."""
    if value is None or value == "":
        return None
    kind = type(value)
    if kind is str:  # the common cases first: the feed's decimals, then its numbers
        return float(value.strip())
    if kind is int or kind is float:
        return float(value)
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError(f"not a number: {value!r}")


def parse_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true", "1", "y", "approved"):
        return True
    if text in ("no", "false", "0", "n", "not approved"):
        return False
    return None


def text(value: Any) -> str | None:
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def _first(raw: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = raw.get(name)
        if value is not None and value != "":
            return value
    return None


def _lookup(table: Mapping[str, str], value: str | None) -> str | None:
    """A native value's normalized form; also tries the label without a leading ``(1)``-style
    sort prefix that SharePoint lists put on choices."""
    if value is None:
        return None
    key = value.strip().lower()
    if key in table:
        return table[key]
    stripped = _SORT_PREFIX.sub("", key)
    return table.get(stripped)


_SORT_PREFIX = re.compile(r"^\(?\d+\)?[\s.-]*")
_GOAL_SEPARATORS = re.compile(r"[;,]")


def goals_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, Mapping) and isinstance(value.get("results"), list):  # verbose collections
        return goals_list(value["results"])
    parts = _GOAL_SEPARATORS.split(str(value))
    return [p.strip() for p in parts if p.strip()]


# -- custom fields --------------------------------------------------------------------------------


def resolve_custom_fields(
    raw: Mapping[str, Any], custom_fields: Mapping[str, str]
) -> dict[str, tuple[str, Any]]:
    """model field -> (feed property, value) for the configured custom fields present on ``raw``.

    A configured name may be the display name (``Strategic Goals``) or the property
    (``StrategicGoals``); either is matched against the row's properties as the feed names them.
    """
    out: dict[str, tuple[str, Any]] = {}
    for target, candidates in _custom_plan(custom_fields)[0]:
        for candidate in candidates:
            if candidate in raw:
                out[target] = (candidate, raw[candidate])
                break
    return out


_CustomPlan = tuple[tuple[tuple[str, tuple[str, ...]], ...], frozenset[str]]


def _custom_plan(custom_fields: Mapping[str, str]) -> _CustomPlan:
    """Each configured custom field's target and the names it is looked for under (what it
    says, then its property name), and all those names, worked out once for a source's
    configuration."""
    return _planned(tuple(custom_fields.items()))


@functools.lru_cache(maxsize=64)  # one per configured source: a few
def _planned(custom_fields: tuple[tuple[str, str], ...]) -> _CustomPlan:
    fields = tuple(
        (target, (configured, property_name(configured))) for target, configured in custom_fields
    )
    return fields, frozenset(name for _target, names in fields for name in names)


_ENUM_TABLES: dict[str, dict[str, str]] = {"state": WORK_STATES, "phase": PHASES, "health": HEALTH}


def _apply_one(
    kwargs: dict[str, Any], extra: dict[str, Any], target: str, prop: str, value: Any
) -> None:
    """One custom field's value into its model field (its native value kept in extra)."""
    if value is None or value == "":
        return
    table = _ENUM_TABLES.get(target)
    if table is not None:
        normalized = _lookup(table, text(value))
        kwargs[target] = normalized or "unknown"
        if normalized is None:
            extra[f"native_{target}"] = value
    elif target == "goals":
        kwargs["strategic_goals"] = goals_list(value)
    elif target == "priority":
        priority = parse_priority(value)
        kwargs["priority"] = priority
        if priority is None:
            extra["native_priority"] = value
    elif target in ("score", "budget"):
        kwargs[target] = parse_decimal(value)
    elif target == "business_case_approved":
        kwargs["business_case_approved"] = parse_bool(value)
    else:
        kwargs[target] = text(value)
    kept = extra.get("custom_fields")
    if kept is None:
        kept = extra["custom_fields"] = {}
    kept[prop] = value


def _custom_into(
    raw: Mapping[str, Any],
    kwargs: dict[str, Any],
    extra: dict[str, Any],
    custom_fields: Mapping[str, str],
) -> tuple[str, ...]:
    """:func:`resolve_custom_fields` and :func:`_apply_one` in one pass over the plan; the
    properties found (empty ones too: read, so not kept again)."""
    fields, names = _custom_plan(custom_fields)
    if raw.keys().isdisjoint(names):  # a row without any (a task): none to look for one by one
        return ()
    props: list[str] = []
    for target, candidates in fields:
        for prop in candidates:
            if prop in raw:
                props.append(prop)
                _apply_one(kwargs, extra, target, prop, raw[prop])
                break
    return tuple(props)


# -- records --------------------------------------------------------------------------------------


def _url(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path}"


_DATE, _TEXT, _NUMBER = "date", "text", "number"
_UNREAD: Any = object()

# A field table as a plan: (model field, its first property, the others, how it is read).
_Plan = tuple[tuple[str, str, tuple[str, ...], str], ...]


def _common(
    raw: Mapping[str, Any],
    plan: _Plan,
    extra_plan: tuple[tuple[str, str, str], ...],
    zone: tzinfo,
) -> tuple[dict[str, Any], dict[str, Any]]:
    if zone is not UTC and zone in _UTC_ZONES:
        zone = UTC
    kwargs: dict[str, Any] = {}
    # A row repeats its dates (a milestone starts as it finishes, a baseline is the schedule
    # until it slips): each text is read once per row.
    moments: dict[Any, datetime | None] = {}
    get = raw.get
    for target, name, others, kind in plan:
        value = get(name)
        if value is None or value == "":
            value = _first(raw, others) if others else None
            if value is None:
                continue
        if kind is _DATE:
            if type(value) is str:
                moment = moments.get(value, _UNREAD)
                if moment is _UNREAD:
                    moment = moments[value] = parse_datetime(value, zone)
                kwargs[target] = moment
            else:
                kwargs[target] = parse_datetime(value, zone)  # raises: not a date
        elif kind is _TEXT:
            kwargs[target] = text(value)
        else:
            kwargs[target] = parse_decimal(value)
    extra: dict[str, Any] = {}
    for native, name, kind in extra_plan:
        value = get(native)
        if value is None or value == "":
            continue
        if kind is _DATE:
            moment = parse_datetime(value, zone)
            extra[name] = moment.isoformat() if moment else None
        elif kind is _TEXT:
            extra[name] = value
        else:
            extra[name] = parse_decimal(value)
    return kwargs, extra


_DATE_TARGETS = frozenset(
    {
        "planned_start",
        "planned_finish",
        "baseline_start",
        "baseline_finish",
        "actual_start",
        "actual_finish",
        "updated_at",
        "created_at",
    }
)
_TEXT_TARGETS = frozenset({"name", "manager", "department"})


def _plan(fields: Mapping[str, tuple[str, ...]]) -> _Plan:
    return tuple(
        (
            target,
            names[0],
            names[1:],
            _DATE if target in _DATE_TARGETS else _TEXT if target in _TEXT_TARGETS else _NUMBER,
        )
        for target, names in fields.items()
    )


def _extra_plan(named_extra: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    return tuple(
        (
            native,
            name,
            _DATE if native in _DATE_EXTRAS else _TEXT if native in _TEXT_EXTRAS else _NUMBER,
        )
        for native, name in named_extra.items()
    )


def _read_by(
    fields: Mapping[str, tuple[str, ...]], named_extra: Mapping[str, str]
) -> frozenset[str]:
    """The properties a field table and an extra table read."""
    return frozenset([name for names in fields.values() for name in names] + list(named_extra))


def _keep_rest(raw: Mapping[str, Any], used: AbstractSet[str], extra: dict[str, Any]) -> None:
    """The properties nothing read, into ``extra``: not empty ones, nor OData's bookkeeping
    (``__metadata``, ``odata.*``) or navigation links (``{"__deferred": ...}``)."""
    for key, value in raw.items():
        if value is None or key in used:
            continue
        kind = type(value)
        if kind is str:
            if not value:
                continue
        elif kind is dict:
            if "__deferred" in value:
                continue  # a navigation link, not data
        elif kind is int or kind is bool or kind is float or kind is list:
            pass  # neither empty text nor a link
        elif value == "" or (isinstance(value, Mapping) and "__deferred" in value):
            continue
        if key[:1] in ("_", "o") and key.startswith(("__", "odata.")):  # what _META names too
            continue
        if key not in extra:
            extra[key] = value


def _finish(
    raw: Mapping[str, Any],
    kwargs: dict[str, Any],
    extra: dict[str, Any],
    used: frozenset[str],
    custom_fields: Mapping[str, str] | None,
) -> None:
    if not kwargs.get("budget"):
        # The budget cost field is empty unless budget resources are used: the baseline cost
        # is the budget at completion that earned value is measured against.
        kwargs["budget"] = kwargs.get("baseline_cost", kwargs.get("budget"))
    if custom_fields:
        props = _custom_into(raw, kwargs, extra, custom_fields)
        if props:
            used = _with(used, props)
    _keep_rest(raw, used, extra)
    # Without a custom field for them, unknown: as text, as every enumeration's value the
    # mapping gives (the model's default is the member, which the store turns into this text).
    for name in ("state", "phase", "health"):
        if name not in kwargs:
            kwargs[name] = "unknown"


@functools.lru_cache(maxsize=256)
def _with(used: frozenset[str], props: tuple[str, ...]) -> frozenset[str]:
    """``used`` and a row's custom-field properties (the same few rows after rows), once."""
    return used | frozenset(props)


_PROJECT_PLAN = _plan(PROJECT_FIELDS)
_TASK_PLAN = _plan(TASK_FIELDS)
_PROJECT_EXTRA_PLAN = _extra_plan(PROJECT_EXTRA)
_TASK_EXTRA_PLAN = _extra_plan(TASK_EXTRA)
_PROJECT_USED = _read_by(PROJECT_FIELDS, PROJECT_EXTRA) | {"ProjectId", "ProjectIdentifier"}
_TASK_USED = _read_by(TASK_FIELDS, TASK_EXTRA) | {
    "TaskId",
    "TaskParentTaskId",
    "TaskIsMilestone",
    "TaskWBS",
}


def map_project(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    custom_fields: Mapping[str, str] | None = None,
    zone: tzinfo = UTC,
) -> WorkItem:
    """A Projects row -> a project ``WorkItem``."""
    project_id = text(raw.get("ProjectId"))
    if not project_id:
        raise ValueError("row has no ProjectId")
    kwargs, extra = _common(raw, _PROJECT_PLAN, _PROJECT_EXTRA_PLAN, zone)
    if not kwargs.get("name"):
        raise ValueError("project has no ProjectName")
    if kwargs.get("percent_complete") is not None:
        kwargs["percent_complete"] = float(kwargs["percent_complete"])
    stage = _first(raw, ("StageName", "PhaseName"))
    if stage is not None:
        phase = _lookup(PHASES, text(stage)) or _lookup(PHASES, text(raw.get("PhaseName")))
        kwargs["phase"] = phase or "unknown"
        if phase is None:
            extra["native_phase"] = stage
    kwargs["number"] = text(raw.get("ProjectIdentifier"))
    _finish(raw, kwargs, extra, _PROJECT_USED, custom_fields)
    # Each value is its field's type by construction (text from ``text``, floats from
    # ``parse_decimal`` and aware UTC times from ``parse_datetime``, which raise on anything
    # else; the enumerations' values from the tables; a priority 1-5), so the model is built
    # without validating it again: test_mapping_fast_project_online.py holds it to the
    # validated model and bad rows quarantined.
    return built(
        WorkItem,
        source=source,
        platform=PLATFORM,
        source_id=project_id,
        url=_url(base, f"project%20detail%20pages/schedule.aspx?projuid={project_id}"),
        kind=WorkItemKind.PROJECT.value,
        extra=extra,
        **kwargs,
    )


def map_task(
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    custom_fields: Mapping[str, str] | None = None,
    zone: tzinfo = UTC,
) -> WorkItem:
    """A Tasks row (a summary task or a milestone) -> a task or milestone ``WorkItem``."""
    task_id = text(raw.get("TaskId"))
    project_id = text(raw.get("ProjectId"))
    if not task_id or not project_id:
        raise ValueError("row has no TaskId or ProjectId")
    kwargs, extra = _common(raw, _TASK_PLAN, _TASK_EXTRA_PLAN, zone)
    if not kwargs.get("name"):
        raise ValueError("task has no TaskName")
    level = raw.get("TaskOutlineLevel")
    parent = text(raw.get("TaskParentTaskId"))
    # Top-level tasks hang off the project summary task, which is the project itself here.
    if level in (None, 0, 1) or not parent or parent == task_id:
        parent = project_id
    milestone = raw.get("TaskIsMilestone") is True
    kwargs["number"] = text(raw.get("TaskWBS"))
    _finish(raw, kwargs, extra, _TASK_USED, custom_fields)
    return built(  # as a project is (see map_project)
        WorkItem,
        source=source,
        platform=PLATFORM,
        source_id=task_id,
        url=_url(base, f"project%20detail%20pages/schedule.aspx?projuid={project_id}"),
        kind=(WorkItemKind.MILESTONE if milestone else WorkItemKind.TASK).value,
        parent_id=parent,
        extra=extra,
        **kwargs,
    )


_CLAIM = re.compile(r"^i:0[#.]\.?[wfe]\|(?:membership\|)?", re.IGNORECASE)


def account_upn(value: Any) -> str | None:
    """The UPN in a SharePoint claims account (``i:0#.f|membership|maria@city.gov``); a
    Windows account (``i:0#.w|city\\maria``, ``CITY\\maria``) has none."""
    account = text(value)
    if not account:
        return None
    account = _CLAIM.sub("", account)
    return normalize_email(account) if "@" in account and "\\" not in account else None


def map_resource(raw: Mapping[str, Any], *, source: str, base: str, zone: tzinfo = UTC) -> Person:
    """A Resources row (an enterprise work resource) -> a ``Person``."""
    resource_id = text(raw.get("ResourceId"))
    if not resource_id:
        raise ValueError("row has no ResourceId")
    email = normalize_email(text(raw.get("ResourceEmailAddress")))
    upn = account_upn(raw.get("ResourceNTAccount")) or email
    used = {
        "ResourceId",
        "ResourceName",
        "ResourceEmailAddress",
        "ResourceDepartments",
        "ResourceIsActive",
        "ResourceModifiedDate",
        "ResourceCreatedDate",
    }
    extra: dict[str, Any] = {}
    _keep_rest(raw, used, extra)
    active = raw.get("ResourceIsActive")
    return Person(
        source=source,
        platform=PLATFORM,
        source_id=resource_id,
        url=_url(base, f"_layouts/15/pwa/resource/EditResource.aspx?uid={resource_id}"),
        upn=upn,
        email=email,
        name=text(raw.get("ResourceName")),
        department=text(raw.get("ResourceDepartments")),
        active=active if isinstance(active, bool) else None,
        updated_at=parse_datetime(raw.get("ResourceModifiedDate"), zone),
        created_at=parse_datetime(raw.get("ResourceCreatedDate"), zone),
        extra=extra,
    )


# -- enrichment from related sets ----------------------------------------------------------------


def summarize_log(rows: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    """Issues or Risks of one project -> counts (SharePoint list status ``(1) Active`` etc.)."""
    active = [r for r in rows if "active" in str(r.get("Status") or "").lower()]
    out: dict[str, Any] = {"total": len(rows), "active": len(active)}
    if kind == "risks":
        exposures = [parse_decimal(r.get("Exposure")) for r in active]
        values = [e for e in exposures if e is not None]
        if values:
            out["max_active_exposure"] = max(values)
    return out


def summarize_team(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Assignments of one project -> per resource: name, work and cost."""
    team: dict[str, dict[str, Any]] = {}
    for row in rows:
        get = row.get
        name = get("ResourceName")
        name = (name.strip() or None) if type(name) is str else text(name)
        key = get("ResourceId")
        key = ((key.strip() or None) if type(key) is str else text(key)) or name or "?"
        member = team.get(key)
        if member is None:  # the first row of a resource names it
            member = team[key] = {"resource": name, "work_hours": 0.0, "cost": 0.0}
        # A decimal as the feed sends it (text) read at once; -0.0 adds as the 0.0 it was.
        work, cost = get("AssignmentWork"), get("AssignmentCost")
        member["work_hours"] += (
            float(work.strip()) if type(work) is str and work else parse_decimal(work) or 0.0
        )
        member["cost"] += (
            float(cost.strip()) if type(cost) is str and cost else parse_decimal(cost) or 0.0
        )
    return sorted(team.values(), key=lambda m: str(m["resource"]))


def describe() -> dict[str, Any]:
    """The crosswalk tables, for ``crosswalk plugins show project_online``."""
    return {
        "streams": {
            "Projects": "work_item (kind project)",
            "Tasks": "work_item (summary tasks -> task, milestones -> milestone)",
            "Resources": "person (enterprise resources, generic ones skipped)",
        },
        "enrichment": {
            "ProjectBaselines": "baseline 0's start, finish and cost (baseline_start, "
            "baseline_finish, baseline_cost); its work in extra",
            "TaskBaselines": "the same for tasks",
            "Assignments": "project team: work and cost per resource (extra.team)",
            "Issues": "active/total counts per project (extra.issues)",
            "Risks": "active/total counts and highest exposure (extra.risks)",
        },
        "project_fields": {k: list(v) for k, v in PROJECT_FIELDS.items()},
        "task_fields": {k: list(v) for k, v in TASK_FIELDS.items()},
        "extra_fields": {**PROJECT_EXTRA, **TASK_EXTRA},
        "custom_field_targets": CUSTOM_FIELD_TARGETS,
        "state": WORK_STATES,
        "phase": PHASES,
        "health": HEALTH,
        "written_as": WRITE_WORDS,
    }
