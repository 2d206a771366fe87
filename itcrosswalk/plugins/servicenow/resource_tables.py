"""The emulator's Resource Management tables: ``resource_role``, ``resource_plan`` and
``resource_allocation`` rendered from the world's ServiceNow bookings, as an instance keeps
them (docs/platforms/servicenow_resource_management.md). Imports neither adapter nor mapping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

REFERENCES = {
    "resource_plan": {"user_resource": "sys_user", "role": "resource_role", "task": "pm_project"},
    "resource_allocation": {"resource_plan": "resource_plan", "user": "sys_user"},
}


def render_resource_tables(
    add: Any, world: Any, sid: Any, ts: Any, references: dict[str, dict[str, str]]
) -> None:
    """Add ``resource_plan`` and ``resource_allocation`` rows for the world's ServiceNow
    bookings to an emulator: one plan per booking, one monthly allocation per month booked
    (a role plan with nobody named has no allocations, as a requested plan has none)."""
    for table, fields in REFERENCES.items():
        references.setdefault(table, {}).update(fields)
    roles = sorted({b.role for b in world.bookings if b.platform == "servicenow"})
    for role in roles:
        add("resource_role", {"sys_id": sid("role", role), "name": role})
    for number, booking in enumerate(b for b in world.bookings if b.platform == "servicenow"):
        months = sorted(booking.months)
        first: date = months[0]
        last_month = months[-1]
        after = date(last_month.year + last_month.month // 12, last_month.month % 12 + 1, 1)
        last = after - timedelta(days=1)
        named = booking.person_id is not None
        plan_id = booking.id
        total = round(sum(booking.months.values()), 2)
        add(
            "resource_plan",
            {
                "sys_id": plan_id,
                "number": f"RPLN{1000001 + number}",
                "short_description": f"{booking.role} for the project",
                "resource_type": "user" if named else "role",
                "user_resource": booking.person_id or "",
                "group_resource": "",
                "role": sid("role", booking.role),
                "task": booking.work_id,
                "start_date": ts(datetime.combine(first, time(8), UTC)),
                "end_date": ts(datetime.combine(last, time(17), UTC)),
                "planned_hours": f"{total:.2f}",
                "allocated_hours": f"{total:.2f}" if named else "0",
                "request_type": "hours",
                "allocation_type": "monthly",
                "state": "4" if named and booking.booking == "hard" else "3" if named else "2",
            },
            booking.updated,
        )
        if not named:
            continue
        for month in months:
            following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
            hours = booking.months[month]
            add(
                "resource_allocation",
                {
                    "sys_id": sid("alloc", booking.id, month.isoformat()),
                    "resource_plan": plan_id,
                    "user": booking.person_id,
                    "start_date": month.isoformat(),
                    "end_date": (following - timedelta(days=1)).isoformat(),
                    "requested_hours": f"{hours:.2f}",
                    "allocated_hours": f"{hours:.2f}" if booking.booking == "hard" else "",
                    "booking_type": "1" if booking.booking == "hard" else "2",
                },
                booking.updated,
            )
