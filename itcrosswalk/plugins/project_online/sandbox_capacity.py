"""The emulated PWA's bookings and capacity: an ``Assignments`` row per Project Server booking of
the world (on the project's summary task), its work by day in ``AssignmentTimephasedDataSet``,
and each booked resource's capacity by day in ``ResourceTimephasedDataSet`` (8 hours on a
weekday on the standard calendar, a part-timer's share of it, 0 on a weekend; rows for every
day, as the reporting database keeps them). Timephased rows exist only for working days with
work: a day without a row is no work that day.

The reporting database holds every resource's capacity; the emulator renders it only for the
resources the world books on Project Server, over the months booked, to stay small.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from .sandbox_schema import guid, hex_guid

DAY_HOURS = 8.0


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _month_days(month: date) -> list[date]:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    days, day = [], month
    while day < following:
        days.append(day)
        day += timedelta(days=1)
    return days


def render_capacity(rows: Any) -> None:
    """Add the world's Project Server bookings to ``rows.sets`` (a :class:`ReportingRows`)."""
    world = rows.world
    people = {p.id: p for p in world.people}
    projects = {
        w.id: w for w in world.work if w.platform == "project_online" and w.kind == "project"
    }
    capacity_days: dict[str, set[date]] = {}
    for booking in world.bookings:
        if booking.platform != "project_online" or booking.work_id not in projects:
            continue
        person = people.get(booking.person_id or "")
        project = projects[booking.work_id]
        pid = hex_guid(project.id)
        task_id = guid(pid, "project-summary")
        resource_id = hex_guid(person.id) if person else guid("generic", booking.role)
        assignment_id = guid(booking.id, "assignment")
        months = sorted(booking.months)
        work_days = [d for m in months for d in _month_days(m) if d.weekday() < 5]
        rows.sets["Assignments"].append(
            {
                "ProjectId": pid,
                "AssignmentId": assignment_id,
                "TaskId": task_id,
                "ResourceId": resource_id,
                "ResourceName": person.name if person else booking.role,
                "TaskName": project.name,
                "AssignmentWork": round(sum(booking.months.values()), 2),
                "AssignmentCost": round(sum(booking.months.values()) * 60.0, 2),
                "AssignmentActualCost": 0.0,
                "AssignmentStartDate": _midnight(work_days[0]).replace(hour=8),
                "AssignmentFinishDate": _midnight(work_days[-1]).replace(hour=17),
                "AssignmentModifiedDate": booking.updated,
            }
        )
        for month in months:
            days = [d for d in _month_days(month) if d.weekday() < 5]
            each = booking.months[month] / len(days)
            for day in days:
                rows.sets["AssignmentTimephasedDataSet"].append(
                    {
                        "AssignmentId": assignment_id,
                        "ProjectId": pid,
                        "TaskId": task_id,
                        "ResourceId": resource_id,
                        "TimeByDay": _midnight(day),
                        "AssignmentWork": round(each, 6),
                        "AssignmentActualWork": 0.0,
                        "ProjectName": project.name,
                        "TaskName": project.name,
                    }
                )
        if person is not None:
            capacity_days.setdefault(person.id, set()).update(
                d for m in months for d in _month_days(m)
            )
    for person_id, days in sorted(capacity_days.items()):
        person = people[person_id]
        share = world.part_time.get(person_id, 1.0)
        for day in sorted(days):
            hours = DAY_HOURS * share if day.weekday() < 5 else 0.0
            rows.sets["ResourceTimephasedDataSet"].append(
                {
                    "ResourceId": hex_guid(person_id),
                    "TimeByDay": _midnight(day),
                    "Capacity": round(hours, 6),
                    "BaseCapacity": DAY_HOURS if day.weekday() < 5 else 0.0,
                    "ResourceName": person.name,
                }
            )
