"""Jira Align records <-> the common model: the crosswalk tables, and the functions that apply them.

The tables are plain data and double as documentation (``crosswalk plugins show jira_align``).
Jira Align keeps a work item's state as an integer per resource (an epic has three, a
feature five), refines it with the portfolio Kanban ``processStepName`` ("84 - Implementing
MVP"), and flags cancelled and recycled items (``isCanceled``, ``isRecycled``) without
changing the state. It has no phase: the phase follows from the normalized state. A value
the tables do not know becomes ``unknown`` with the native value kept in ``extra``.

Ids are integers per resource (epic 1200 and feature 1200 are different items), so the
common model's ``source_id`` carries the kind: ``epic-1200``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from ...core.model import (
    Health,
    Phase,
    WorkItem,
    WorkItemKind,
    WorkState,
    built,
    is_mapping,
    parse_priority,
)

PLATFORM = "jira_align"

# API resource -> (the common model's WorkItem kind, the prefix of its source_id)
RESOURCES: dict[str, tuple[str, str]] = {
    "Portfolios": ("portfolio", "portfolio"),
    "Programs": ("program", "program"),
    "Themes": ("theme", "theme"),
    "Epics": ("epic", "epic"),
    "Capabilities": ("capability", "capability"),
    "Features": ("feature", "feature"),
}

# resource -> native state integer -> (normalized WorkState, the state's name in Jira Align)
STATES: dict[str, dict[int, tuple[str, str]]] = {
    "Epics": {
        1: ("proposed", "Not Started"),
        2: ("in_progress", "In Progress"),
        3: ("done", "Accepted"),
    },
    "Capabilities": {
        1: ("proposed", "Not Started"),
        2: ("in_progress", "In Progress"),
        3: ("done", "Accepted"),
    },
    "Features": {
        1: ("proposed", "Not Started"),
        2: ("in_progress", "In Progress"),
        3: ("in_progress", "Dev Complete"),
        4: ("in_progress", "Test Complete"),
        5: ("done", "Accepted"),
    },
}

# A "Not Started" item whose Kanban step names one of these has been approved into a backlog.
APPROVED_STEPS: tuple[str, ...] = ("backlog", "ready", "approved", "planned", "committed")

# Themes carry an integer state too: active or not.
THEME_STATES: dict[int, str] = {1: "in_progress", 2: "done", 0: "on_hold"}

# normalized state -> phase: Jira Align has no phase of its own.
PHASE_BY_STATE: dict[str, str] = {
    "proposed": "initiating",
    "approved": "planning",
    "in_progress": "executing",
    "on_hold": "executing",
    "done": "closing",
    "cancelled": "closing",
}

# Feature states past development are still in progress, but being verified.
MONITORING_STATES: dict[str, set[int]] = {"Features": {3, 4}}

HEALTH: dict[str, str] = {
    "green": "green",
    "on track": "green",
    "1": "green",
    "yellow": "amber",
    "amber": "amber",
    "at risk": "amber",
    "2": "amber",
    "red": "red",
    "off track": "red",
    "critical": "red",
    "3": "red",
}

# Feature estimateTshirt codes as the API returns them (the UI shows the label).
TSHIRT: dict[int, str] = {
    1: "XXS",
    2: "XS",
    4: "S",
    8: "M",
    14: "L",
    20: "XL",
    30: "XXL",
}

# common-model field -> native field, per resource kind. Jira Align keeps no baseline: the
# target completion date is the current plan, and baseline_* stay empty.
WORK_FIELDS: dict[str, dict[str, str]] = {
    "Epics": {
        "name": "title",
        "state": "state",
        "manager": "ownerId",
        "planned_start": "startInitiationDate",
        "planned_finish": "targetCompletionDate",
        "actual_start": "inProgressDate",
        "actual_finish": "acceptedDate",
        "budget": "budget",
        "actual_cost": "spendToDate",
        "forecast_cost": "estimateAtCompletion",
        "parent": "primaryProgramId",
        "external_ref": "externalId",
    },
    "Features": {
        "name": "title",
        "state": "state",
        "manager": "ownerId",
        "planned_start": "startInitiationDate",
        "planned_finish": "targetCompletionDate",
        "actual_start": "inProgressDate",
        "actual_finish": "acceptedDate",
        "budget": "budget",
        "actual_cost": "spendToDate",
        "forecast_cost": "estimateAtCompletion",
        "parent": "parentId (epic or capability), else primaryProgramId",
        "external_ref": "externalId",
    },
    "Programs": {"name": "title", "parent": "portfolioId"},
    "Portfolios": {"name": "title", "state": "isActive"},
    "Themes": {
        "name": "title",
        "state": "state",
        "budget": "plannedBudget",
        "planned_start": "startInitiationDate",
        "planned_finish": "targetCompletionDate",
    },
}
WORK_FIELDS["Capabilities"] = {**WORK_FIELDS["Epics"], "parent": "parentId (epic)"}

# Fields a WorkItem names; the rest of a record goes to extra, nulls and empty lists dropped.
_USED = {
    "id",
    "title",
    "state",
    "createDate",
    "lastUpdatedDate",
    "ownerId",
    "owner",
    "startInitiationDate",
    "targetCompletionDate",
    "inProgressDate",
    "acceptedDate",
    "budget",
    "spendToDate",
    "estimateAtCompletion",
    "externalId",
    "health",
    "self",
    "plannedBudget",
}


def source_id(resource: str, native_id: Any) -> str:
    """The common model's id of a Jira Align item: ``epic-1200``."""
    return f"{RESOURCES[resource][1]}-{int(native_id)}"


def parse_datetime(value: Any) -> datetime | None:
    """An API date-time (``2024-06-06T19:25:10.517Z``, UTC); null or ``""`` is unset."""
    if value is None:
        return None
    if type(value) is not str:  # the common case first: a JSON string
        if value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(f"not a date-time: {value!r}")
    elif not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is UTC:  # what a "Z" or "+00:00" reads as
        return parsed
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_number(value: Any) -> float | None:
    """A number that may arrive as a JSON number or a string (``"1300000.00"``)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    number = float(str(value).replace(",", "")) if isinstance(value, str) else float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_flag(value: Any) -> bool:
    """Jira Align's flags come as true/false, 0/1, "true" or null (null: not set)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def parse_int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    return int(value) if isinstance(value, int) else int(float(str(value)))


def step_name(raw: Mapping[str, Any]) -> str:
    """The Kanban step without its id prefix: ``"84 - Implementing MVP"`` -> ``Implementing MVP``."""
    text = raw.get("processStepName") or ""
    return _STEP_PREFIX.sub("", str(text)).strip()


_STEP_PREFIX = re.compile(r"^\s*\d+\s*-\s*")


def work_state(resource: str, raw: Mapping[str, Any], extra: dict[str, Any]) -> str:
    """The normalized state; cancelled wins over the stored state, which is kept in extra."""
    native = raw.get("state")
    if parse_flag(raw.get("isCanceled")):
        extra["native_state"] = native
        return "cancelled"
    if resource == "Themes":
        number = parse_int(native) if native is not None else None
        if number in THEME_STATES:
            return THEME_STATES[number]
        if native is not None:
            extra["native_state"] = native
        return "unknown"
    if resource == "Portfolios":
        active = raw.get("isActive")
        return "unknown" if active is None else "in_progress" if parse_flag(active) else "done"
    if resource == "Programs":
        return "in_progress"  # a program (an ART) has no state: it exists while it runs
    table = STATES.get(resource, {})
    try:
        number = parse_int(native)
    except (TypeError, ValueError):
        number = None
    if number not in table:
        if native is not None:
            extra["native_state"] = native
        return "unknown"
    state, _label = table[number]
    if state == "proposed":
        step = step_name(raw).lower()
        ready = raw.get("readyToStartDate") not in (None, "")
        if ready or any(word in step for word in APPROVED_STEPS):
            state = "approved"
    if state == "in_progress" and resource == "Features" and parse_flag(raw.get("isBlocked")):
        state = "on_hold"
    return state


def work_phase(resource: str, raw: Mapping[str, Any], state: str) -> str:
    if state == "in_progress":
        try:
            number = parse_int(raw.get("state"))
        except (TypeError, ValueError):
            number = None
        if number in MONITORING_STATES.get(resource, set()):
            return "monitoring"
    return PHASE_BY_STATE.get(state, "unknown")


def health(raw: Mapping[str, Any], extra: dict[str, Any]) -> str:
    native = raw.get("health")
    if native in (None, ""):
        return "unknown"
    found = HEALTH.get(str(native).strip().lower())
    if found is None:
        extra["native_health"] = native
        return "unknown"
    return found


def _extra(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Native fields the model does not name; nulls and empty lists carry nothing."""
    out: dict[str, Any] = {}
    for key, item in raw.items():
        if item is None or key in _USED:
            continue
        if not item and (item == [] or item == ""):  # a falsy value: 0 and false are kept
            continue
        if key == "customFields" and isinstance(item, list):
            fields = {
                k: v
                for entry in item
                if is_mapping(entry)
                for k, v in entry.items()
                if v not in (None, "")
            }
            if fields:
                out["customFields"] = fields
            continue
        out[key] = item
    return out


def _owner(raw: Mapping[str, Any], owners: Mapping[str, str] | None) -> str | None:
    """The owner's e-mail where Jira Align's users say it (people join on e-mail), else the id."""
    embedded = raw.get("owner")
    if embedded is not None and is_mapping(embedded) and embedded.get("email"):
        return str(embedded["email"]).strip().lower()
    owner = raw.get("ownerId")
    if owner in (None, ""):
        return None
    key = str(owner)
    if owners and key in owners:
        return owners[key]
    return key


def _estimates(resource: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    points = raw.get("points")
    if resource == "Features":
        if points not in (None, ""):
            out["points"] = parse_number(points)
        size = raw.get("estimateTshirt")
        if size not in (None, ""):
            code = parse_int(size)
            out["tshirt"] = TSHIRT.get(code or 0, str(size))
        if raw.get("manWeeks") not in (None, ""):
            out["man_weeks"] = parse_number(raw.get("manWeeks"))
    elif isinstance(points, list):
        sized = [
            {"release_id": p.get("releaseId"), "system": p.get("estimationSystem"), "value": v}
            for p in points
            if is_mapping(p) and (v := p.get("estimationValue")) not in (None, "")
        ]
        if sized:
            out["points"] = sized
    if raw.get("effortSwag") not in (None, ""):
        out["effort_swag"] = parse_number(raw.get("effortSwag"))
    return out


def parent_ref(resource: str, raw: Mapping[str, Any], feature_parent: str = "Epics") -> str | None:
    """The source_id of a record's parent: program > portfolio, epic > program, feature > epic."""
    if resource == "Programs":
        value = raw.get("portfolioId")
        return source_id("Portfolios", value) if value not in (None, "", 0) else None
    if resource in ("Features", "Capabilities"):
        capability = raw.get("parentCapability")
        if (
            resource == "Features"
            and capability is not None
            and is_mapping(capability)
            and capability.get("id")
        ):
            return source_id("Capabilities", capability["id"])
        value = raw.get("parentId")
        if value not in (None, "", 0):
            return source_id("Epics" if resource == "Capabilities" else feature_parent, value)
    if resource in ("Epics", "Features", "Capabilities"):
        value = raw.get("primaryProgramId")
        return source_id("Programs", value) if value not in (None, "", 0) else None
    return None


def _value(enum: type[Enum], value: str) -> str:
    """``enum(value).value``, read from a table of the enumeration's values (it raises the
    same ValueError on a value the enumeration lacks)."""
    try:
        return _VALUES[enum][value]
    except KeyError:
        return enum(value).value  # type: ignore[no-any-return]


_VALUES: dict[type[Enum], dict[str, str]] = {
    enum: {member.value: member.value for member in enum}
    for enum in (WorkItemKind, WorkState, Phase, Health)
}


def map_work(
    resource: str,
    raw: Mapping[str, Any],
    *,
    source: str,
    base: str,
    owners: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
    feature_parent: str = "Epics",
    department_field: str | None = None,
) -> WorkItem:
    """One Jira Align item as a WorkItem.

    ``owners`` maps owner ids and user names to e-mail addresses; ``names`` maps source ids
    (``theme-2``, ``program-14``, ``release-49``) to titles, for the strategic goals, the
    program and the program increments; ``department_field`` names the custom field holding
    the City's department, where an instance keeps one.
    """
    native_id = raw.get("id")
    if native_id in (None, ""):
        raise ValueError("record has no id")
    kind, prefix = RESOURCES[resource]
    extra = _extra(raw)
    if prefix != kind:
        extra["jira_align_type"] = prefix
    names = names or {}
    state = work_state(resource, raw, extra)
    if parse_flag(raw.get("isRecycled")):
        extra["recycled"] = True  # in the recycle bin: kept, flagged, never dropped
    if parse_flag(raw.get("isCanceled")):
        extra["canceled"] = True
    estimates = _estimates(resource, raw)
    if estimates:
        extra["estimates"] = estimates
    program = raw.get("primaryProgramId")
    if program not in (None, "", 0):
        extra["program"] = str(names.get(f"program-{int(program)}", program))  # source_id
    release_ids = raw.get("releaseIds") or (
        [raw["releaseId"]] if raw.get("releaseId") not in (None, "", 0) else []
    )
    if release_ids:
        extra["program_increments"] = [
            names.get(f"release-{int(r)}", str(r)) for r in release_ids if r not in (None, "")
        ]
    goals: list[str] = []
    theme = raw.get("themeId")
    if theme not in (None, "", 0):
        goals.append(str(names.get(f"theme-{int(theme)}", theme)))  # as source_id names it
    department = None
    if department_field:
        department = (extra.get("customFields") or {}).get(department_field) or raw.get(
            department_field
        )
    score = raw.get("score")
    score_value = score.get("score") if score is not None and is_mapping(score) else score
    priority = raw.get("priority")
    budget_field = "plannedBudget" if resource == "Themes" else "budget"
    # Each value is its field's type by construction (text; aware UTC times and finite numbers
    # that parse_datetime and parse_number raise on anything else for; the enumerations'
    # values, which raise on a name they lack; a priority 1-5), so the model is built without
    # validating it again: test_mapping_fast_jira_align.py holds it to the validated model.
    return built(
        WorkItem,
        source=source,
        platform=PLATFORM,
        source_id=source_id(resource, native_id),
        url=str(raw.get("self") or f"{base}/rest/align/api/2/{resource}/{int(native_id)}"),
        updated_at=parse_datetime(raw.get("lastUpdatedDate")),
        created_at=parse_datetime(raw.get("createDate")),
        kind=_value(WorkItemKind, kind),
        number=str(native_id),
        name=str(raw.get("title") or "").strip() or f"{prefix} {native_id}",
        parent_id=parent_ref(resource, raw, feature_parent),
        state=_value(WorkState, state),
        phase=_value(Phase, work_phase(resource, raw, state)),
        health=_value(Health, health(raw, extra)),
        manager=_owner(raw, owners),
        department=str(department) if department not in (None, "") else None,
        strategic_goals=goals,
        priority=parse_priority(priority) if priority not in (None, "") else None,
        score=parse_number(score_value) if score_value not in (None, "") else None,
        planned_start=parse_datetime(raw.get("startInitiationDate")),
        planned_finish=parse_datetime(raw.get("targetCompletionDate")),
        actual_start=parse_datetime(raw.get("inProgressDate")),
        actual_finish=parse_datetime(raw.get("acceptedDate")),
        budget=parse_number(raw.get(budget_field)),
        actual_cost=parse_number(raw.get("spendToDate")),
        forecast_cost=parse_number(raw.get("estimateAtCompletion")),
        external_ref=str(raw["externalId"]) if raw.get("externalId") not in (None, "") else None,
        extra=extra,
    )


def describe() -> dict[str, Any]:
    """The crosswalk tables, for ``crosswalk plugins show jira_align``."""
    return {
        "resources": {r: {"kind": k, "source_id": f"{p}-<id>"} for r, (k, p) in RESOURCES.items()},
        "states": {
            resource: {
                str(n): {"normalized": s, "native": label} for n, (s, label) in table.items()
            }
            for resource, table in STATES.items()
        },
        "state_rules": [
            "isCanceled = true -> cancelled (the stored state kept in extra.native_state)",
            "Not Started with readyToStartDate, or a Kanban step naming "
            + "/".join(APPROVED_STEPS)
            + " -> approved",
            "a feature In Progress with isBlocked -> on_hold",
            "isRecycled = true -> kept, extra.recycled = true",
            "any other state -> unknown, the native value kept in extra.native_state",
        ],
        "theme_states": THEME_STATES,
        "phase_by_state": PHASE_BY_STATE,
        "health": HEALTH,
        "fields": WORK_FIELDS,
        "estimates": "points, estimateTshirt (code -> size), manWeeks, effortSwag -> extra.estimates",
        "tshirt": TSHIRT,
        "write_fields": WRITE_FIELDS,
        "write_states": WRITE_STATES,
    }


# Write-back: common-model field -> API field where the names differ only; references
# (manager, strategic goals, parent, department) are resolved by the writer.
WRITE_FIELDS: dict[str, str] = {
    "planned_start": "startInitiationDate",
    "planned_finish": "targetCompletionDate",
    "budget": "budget",
    "actual_cost": "spendToDate",
    "forecast_cost": "estimateAtCompletion",
}

# The states a new item may start in.
WRITE_STATES: dict[str, int] = {"proposed": 1, "approved": 1, "in_progress": 2}

# Fields the site derives itself; a value given for them is not sent.
DERIVED_FIELDS = frozenset({"phase", "kind", "number", "health", "percent_complete"})

# Standard forms (``crosswalk template apply NAME --to SOURCE``) creating through the writers.
TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "agile-epic",
        "title": "Agile epic (lean business case)",
        "kind": "form",
        "target": "work_item:epic",
        "description": (
            "A portfolio epic with its epic hypothesis statement. Applying it creates the "
            "epic in the program named by parent_id (program-<id>) on an agile platform."
        ),
        "fields": [
            {"name": "name", "label": "Epic name", "required": True, "key": True},
            {"name": "parent_id", "label": "Program (program-<id>)", "key": True},
            {
                "name": "description",
                "label": "Epic hypothesis statement",
                "required": True,
                "default": (
                    "For <customers> who <need>, the <solution> is a <what> that <value>. "
                    "Unlike <alternative>, our solution <differentiation>. Business outcomes: "
                    "<outcomes>. Leading indicators: <indicators>."
                ),
            },
            {"name": "strategic_goals", "label": "Strategic theme"},
            {"name": "manager", "label": "Epic owner (e-mail)"},
            {"name": "department"},
            {"name": "sponsor"},
            {"name": "planned_start"},
            {"name": "planned_finish"},
            {"name": "budget", "help": "The approved budget in dollars."},
        ],
        "sections": [
            {
                "title": "Hypothesis",
                "prompt": "Who it is for and what it changes.",
                "fields": ["name", "description"],
            },
            {
                "title": "Ownership",
                "fields": ["manager", "sponsor", "department", "strategic_goals"],
            },
            {"title": "Plan and money", "fields": ["planned_start", "planned_finish", "budget"]},
        ],
    },
    {
        "id": "agile-feature",
        "title": "Agile feature (benefit hypothesis)",
        "kind": "form",
        "target": "work_item:feature",
        "description": "A feature under an epic (parent_id epic-<id>), with its benefit hypothesis.",
        "fields": [
            {"name": "name", "label": "Feature name", "required": True, "key": True},
            {"name": "parent_id", "label": "Epic (epic-<id>)", "required": True, "key": True},
            {
                "name": "description",
                "label": "Benefit hypothesis and acceptance criteria",
                "required": True,
                "default": "Benefit hypothesis: <benefit>. Acceptance criteria: <criteria>.",
            },
            {"name": "manager", "label": "Feature owner (e-mail)"},
            {"name": "planned_start"},
            {"name": "planned_finish"},
        ],
    },
]
