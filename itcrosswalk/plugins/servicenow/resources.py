"""ServiceNow Resource Management: resource plans as assignments, their allocations as the
plans' periods (see docs/platforms/servicenow_resource_management.md).

``resource_plan`` names who is wanted (a user, a group, or a role nobody is named for) on
which task, with its planned and allocated hours; ``resource_allocation`` holds the hours
confirmed or allocated to one user over a span (monthly rows when the plan's allocation type
is monthly). A plan with allocations is timephased by them; a role plan without any is
generic demand. The person joins on the ``sys_user`` record the plan or allocation references
(its e-mail, through the store's people).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ...core.model import Assignment, AssignmentPeriod, Record
from . import mapping

# table -> (entity, roles that usually grant read access) [INF: resource_user / resource_manager]
RESOURCE_TABLES: dict[str, tuple[str, str]] = {
    "resource_plan": ("assignment", "resource_user or resource_manager"),
    "resource_allocation": ("assignment_period", "resource_user or resource_manager"),
}
RESOURCE_FIELDS: dict[str, list[str]] = {
    "assignment": ["work_item_id", "project_id", "work_item_name", "resource_id",
                   "person_name", "role", "generic", "team", "start", "finish",
                   "planned_hours", "booking", "active"],
    "assignment_period": ["assignment_id", "period_start", "period_finish", "granularity",
                          "planned_hours"],
}  # fmt: skip
PLAN_STATES = {"1": "planning", "2": "requested", "3": "confirmed", "4": "allocated",
               "5": "cancelled", "6": "rejected", "7": "completed"}  # fmt: skip
BOOKING_TYPES = {"1": "hard", "2": "soft"}


def _hours(raw: Mapping[str, Any], field: str) -> float | None:
    text = mapping.value(raw, field)
    return float(text) if text else None


def map_plan(raw: Mapping[str, Any], *, source: str, base: str) -> Record:
    """One resource plan as an assignment."""
    sid = mapping.value(raw, "sys_id")
    kind = mapping.value(raw, "resource_type") or "user"
    user = mapping.value(raw, "user_resource")
    role = mapping.display(raw, "role")
    task = mapping.value(raw, "task") or None
    state = mapping.value(raw, "state")
    return Assignment(
        source=source,
        platform="servicenow",
        source_id=sid,
        url=f"{base}/resource_plan.do?sys_id={sid}",
        updated_at=mapping.parse_datetime(mapping.value(raw, "sys_updated_on")),
        created_at=mapping.parse_datetime(mapping.value(raw, "sys_created_on")),
        work_item_id=task,
        project_id=task,
        work_item_name=mapping.display(raw, "task"),
        resource_id=user or mapping.value(raw, "group_resource") or None,
        person_name=mapping.display(raw, "user_resource") if user else None,
        role=role,
        generic=kind == "role" or (kind != "user" and not user),
        team=mapping.display(raw, "group_resource"),
        start=mapping.parse_datetime(mapping.value(raw, "start_date")),
        finish=mapping.parse_datetime(mapping.value(raw, "end_date")),
        planned_hours=_hours(raw, "planned_hours"),
        actual_hours=_hours(raw, "actual_hours"),
        booking=PLAN_STATES.get(state, state or None),
        active=PLAN_STATES.get(state) not in ("cancelled", "rejected"),
        extra={"number": mapping.value(raw, "number"), "resource_type": kind, "state": state,
               "allocated_hours": _hours(raw, "allocated_hours")},
    )  # fmt: skip


def map_allocation(raw: Mapping[str, Any], *, source: str, base: str) -> Record:
    """One allocation as a period of its plan; the hours are the allocated (or, on a soft
    booking not yet allocated, the requested) ones."""
    sid = mapping.value(raw, "sys_id")
    plan = mapping.value(raw, "resource_plan")
    if not plan:
        raise ValueError(f"resource_allocation {sid} belongs to no resource_plan")
    start = mapping.parse_date(mapping.value(raw, "start_date"))
    end = mapping.parse_date(mapping.value(raw, "end_date"))
    if start is None or end is None:
        raise ValueError(f"resource_allocation {sid} has no start_date or end_date")
    if end < start:
        raise ValueError(f"resource_allocation {sid} ends ({end}) before it starts ({start})")
    span = (end - start).days + 1
    grain = "day" if span == 1 else "week" if span <= 7 else "month"
    hours = _hours(raw, "allocated_hours")
    if hours is None:
        hours = _hours(raw, "requested_hours")
    return AssignmentPeriod(
        source=source,
        platform="servicenow",
        source_id=sid,
        url=f"{base}/resource_allocation.do?sys_id={sid}",
        updated_at=mapping.parse_datetime(mapping.value(raw, "sys_updated_on")),
        assignment_id=plan,
        period_start=start,
        period_finish=end + timedelta(days=1),
        granularity=grain,
        planned_hours=hours,
        extra={"user": mapping.value(raw, "user"),
               "booking_type": BOOKING_TYPES.get(mapping.value(raw, "booking_type"))},
    )  # fmt: skip


def resource_streams(adapter: Any) -> list[Any]:
    """The resource plan and allocation streams, read as every Table API table is."""
    from .adapter import TableStream

    class ResourceStream(TableStream):
        def __init__(self, table: str) -> None:
            self.adapter = adapter
            self.table = table
            self.name = table  # type: ignore[misc]
            self.entity = RESOURCE_TABLES[table][0]  # type: ignore[misc]
            self.id_sweep = False  # type: ignore[misc]
            from .adapter import KeysetPaginator

            self.paginator = KeysetPaginator()

        def prepare(self, raws: list[dict[str, Any]]) -> None:
            return None

        def map(self, raw: Mapping[str, Any]) -> Record:
            mapper = map_plan if self.table == "resource_plan" else map_allocation
            return mapper(raw, source=self.adapter.source.name, base=self.adapter.base)

        def links(self, record: Record) -> list[tuple[str, str, str]]:
            task = getattr(record, "work_item_id", None)
            return [("staffs", "work_item", task)] if task else []

    return [ResourceStream(table) for table in RESOURCE_TABLES]
