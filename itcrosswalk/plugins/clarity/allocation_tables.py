"""The emulator's team allocations: team rows for the world's Clarity bookings, each with its
``allocationCurve`` (hours per month), served as a TSV that is its total unless ``tsvParams``
asks for periods, as Clarity does. Imports neither adapter nor mapping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any


def render_team_allocations(
    emulator: Any,
    world: Any,
    resource_ids: dict[str, int],
    project_ids: dict[str, int],
    lookup: Callable[[str, str | None], Any],
) -> None:
    """Append a team row per Clarity booking of ``world`` to ``emulator.data["teams"]``: a
    named resource (or, for a role nobody fills, no resource and the ``requirementName``)."""
    people = {p.id: p for p in world.people}
    for booking in (b for b in world.bookings if b.platform == "clarity"):
        project = project_ids.get(booking.work_id)
        if project is None:
            continue
        months = sorted(booking.months)
        last = months[-1]
        after = date(last.year + last.month // 12, last.month % 12 + 1, 1)
        person = people.get(booking.person_id) if booking.person_id else None
        total = round(sum(booking.months.values()), 2)
        hard = booking.booking == "hard"
        emulator.data["teams"].append(
            {
                "_internalId": emulator._id(),
                "_projectId": project,
                "resource": None
                if person is None
                else {
                    "displayValue": f"{person.last_name}, {person.first_name}",
                    "_type": "lookup",
                    "id": str(resource_ids[person.id]),
                },
                "requirementName": booking.role if person is None else None,
                "projectRoleName": booking.role,
                "bookingStatus": lookup("BOOKING_STATUS", "H" if hard else "S"),
                "allocation": total,
                "hardAllocation": total if hard else 0.0,
                "startDate": emulator.local(datetime.combine(months[0], time(8), UTC)),
                "finishDate": emulator.local(
                    datetime.combine(after - timedelta(days=1), time(17), UTC)
                ),
                "lastUpdatedDate": emulator.local(booking.updated),
                "_curve": [(month, booking.months[month]) for month in months],
            }
        )


def shape_allocation(
    emulator: Any,
    collection: str,
    row: dict[str, Any],
    fields: list[str] | None,
    params: dict[str, str],
    out: dict[str, Any],
) -> None:
    """A team row's ``allocationCurve`` as the TSV ``tsvParams`` asks for (in hours)."""
    if collection != "teams" or "_curve" not in row:
        return
    if fields is not None and "allocationCurve" not in fields:
        return
    curve = emulator._tsv(row["_curve"], params.get("tsvParams"))
    curve["dataType"] = "numeric"
    out["allocationCurve"] = curve
