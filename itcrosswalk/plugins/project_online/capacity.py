"""Project Server bookings and capacity from ProjectData: ``Assignments`` as assignments,
``AssignmentTimephasedDataSet`` (work by day) as their periods, and
``ResourceTimephasedDataSet`` (capacity by day, from the resource's calendar and max units) as
capacity. Work is in hours in the reporting feed; decimals arrive as strings.

The timephased sets carry no modified date: they are read whole on every sync (and what
disappeared is tombstoned). A generic resource's assignment is demand for the role; a person
joins on the resource's claims account or e-mail (the ``Resources`` stream), and, where neither
is kept, on the display name when exactly one person carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ...core.model import Assignment, AssignmentPeriod, Capacity, Record
from . import mapping
from .adapter import FeedStream

CAPACITY_FIELDS: dict[str, list[str]] = {
    "assignment": ["work_item_id", "project_id", "work_item_name", "resource_id", "person_name",
                   "role", "generic", "start", "finish", "planned_hours", "granularity"],
    "assignment_period": ["assignment_id", "period_start", "period_finish", "granularity",
                          "planned_hours", "actual_hours"],
    "capacity": ["resource_id", "person_name", "period_start", "period_finish", "granularity",
                 "hours"],
}  # fmt: skip


def _day(raw: Mapping[str, Any], zone: Any) -> Any:
    moment = mapping.parse_datetime(raw.get("TimeByDay"), zone)
    if moment is None:
        raise ValueError("row has no TimeByDay")
    return moment.astimezone(zone).date()


class ProjectAssignments(FeedStream):
    name = "Assignments"
    set_name = "Assignments"
    entity = "assignment"
    key = "AssignmentId"
    cursor_field = "AssignmentModifiedDate"

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.generic_resources()

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        sid = mapping.text(raw.get("AssignmentId"))
        if not sid:
            raise ValueError("row has no AssignmentId")
        resource = mapping.text(raw.get("ResourceId"))
        generic = resource in a.generic_resources()
        name = mapping.text(raw.get("ResourceName"))
        project = mapping.text(raw.get("ProjectId"))
        return Assignment(
            source=a.source.name,
            platform="project_online",
            source_id=sid,
            updated_at=mapping.parse_datetime(raw.get("AssignmentModifiedDate"), a.zone),
            work_item_id=mapping.text(raw.get("TaskId")),
            project_id=project,
            work_item_name=mapping.text(raw.get("TaskName")),
            resource_id=resource,
            person_name=None if generic else name,
            role=name if generic else None,
            generic=generic,
            start=mapping.parse_datetime(raw.get("AssignmentStartDate"), a.zone),
            finish=mapping.parse_datetime(raw.get("AssignmentFinishDate"), a.zone),
            planned_hours=mapping.parse_decimal(raw.get("AssignmentWork")),
            actual_hours=mapping.parse_decimal(raw.get("AssignmentActualWork")),
            granularity="day",
            extra={"cost": mapping.parse_decimal(raw.get("AssignmentCost"))},
        )

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        project = getattr(record, "project_id", None)
        return [("staffs", "work_item", project)] if project else []


class AssignmentTimephased(FeedStream):
    name = "AssignmentTimephasedDataSet"
    set_name = "AssignmentTimephasedDataSet"
    entity = "assignment_period"
    key = "AssignmentId"
    cursor_field = None
    incremental = False

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        assignment, day = mapping.text(raw.get("AssignmentId")), mapping.text(raw.get("TimeByDay"))
        return f"{assignment}:{day[:10]}" if assignment and day else assignment

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        assignment = mapping.text(raw.get("AssignmentId"))
        if not assignment:
            raise ValueError("row has no AssignmentId")
        day = _day(raw, a.zone)
        return AssignmentPeriod(
            source=a.source.name,
            platform="project_online",
            source_id=f"{assignment}:{day.isoformat()}",
            assignment_id=assignment,
            period_start=day,
            period_finish=day + timedelta(days=1),
            granularity="day",
            planned_hours=mapping.parse_decimal(raw.get("AssignmentWork")),
            actual_hours=mapping.parse_decimal(raw.get("AssignmentActualWork")),
        )

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        return []


class ResourceTimephased(FeedStream):
    name = "ResourceTimephasedDataSet"
    set_name = "ResourceTimephasedDataSet"
    entity = "capacity"
    key = "ResourceId"
    cursor_field = None
    incremental = False

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        resource, day = mapping.text(raw.get("ResourceId")), mapping.text(raw.get("TimeByDay"))
        return f"{resource}:{day[:10]}" if resource and day else resource

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        resource = mapping.text(raw.get("ResourceId"))
        if not resource:
            raise ValueError("row has no ResourceId")
        day = _day(raw, a.zone)
        hours = mapping.parse_decimal(raw.get("Capacity"))
        if hours is None:
            raise ValueError(f"resource {resource} on {day}: no Capacity")
        return Capacity(
            source=a.source.name,
            platform="project_online",
            source_id=f"{resource}:{day.isoformat()}",
            resource_id=resource,
            person_name=mapping.text(raw.get("ResourceName")),
            period_start=day,
            period_finish=day + timedelta(days=1),
            granularity="day",
            hours=hours,
            extra={"base_capacity": mapping.parse_decimal(raw.get("BaseCapacity"))},
        )

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        return []


def capacity_streams(adapter: Any) -> list[FeedStream]:
    return [ProjectAssignments(adapter), AssignmentTimephased(adapter), ResourceTimephased(adapter)]


def read_generic_resources(adapter: Any) -> set[str]:
    """The ids of the generic resources (roles), read once: Assignments rows do not say."""
    rows, link = adapter.feed("Resources", {"$select": "ResourceId,ResourceIsGeneric"})
    found: list[dict[str, Any]] = list(rows)
    seen: set[str] = set()
    while link and link not in seen:
        seen.add(link)
        rows, link = adapter.feed_link(link, "Resources")
        found.extend(rows)
    return {
        str(mapping.text(r.get("ResourceId")))
        for r in found
        if mapping.parse_bool(r.get("ResourceIsGeneric")) is True
    }
