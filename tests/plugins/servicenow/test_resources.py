"""ServiceNow resource plans and allocations as the model has them; a malformed allocation is
an error naming the record (the sync quarantines it with its payload)."""

from __future__ import annotations

from datetime import date

import pytest

from itcrosswalk.core.model import Assignment, AssignmentPeriod
from itcrosswalk.plugins.servicenow.resources import map_allocation, map_plan

BASE = "https://city.service-now.com"


def test_a_role_plan_is_generic_demand_and_a_user_plan_names_the_user() -> None:
    role = map_plan(
        {"sys_id": "p1", "resource_type": "role", "role": {"value": "r1", "display_value": "DBA"},
         "task": "prj1", "planned_hours": "84.00", "state": "2"},
        source="snow", base=BASE,
    )  # fmt: skip
    assert isinstance(role, Assignment)
    assert (role.generic, role.role, role.planned_hours, role.booking) == (
        True,
        "DBA",
        84.0,
        "requested",
    )
    user = map_plan(
        {"sys_id": "p2", "resource_type": "user", "user_resource": "u1", "task": "prj1",
         "start_date": "2026-03-01 08:00:00", "end_date": "2026-03-31 17:00:00", "state": "4"},
        source="snow", base=BASE,
    )  # fmt: skip
    assert (user.generic, user.resource_id, user.booking, user.active) == (
        False,
        "u1",
        "allocated",
        True,
    )


def test_a_soft_allocation_counts_its_requested_hours_until_it_is_allocated() -> None:
    period = map_allocation(
        {"sys_id": "a1", "resource_plan": "p2", "user": "u1", "start_date": "2026-03-01",
         "end_date": "2026-03-31", "requested_hours": "100.00", "allocated_hours": "",
         "booking_type": "2"},
        source="snow", base=BASE,
    )  # fmt: skip
    assert isinstance(period, AssignmentPeriod)
    assert (period.period_start, period.period_finish) == (date(2026, 3, 1), date(2026, 4, 1))
    assert (period.planned_hours, period.granularity, period.extra["booking_type"]) == (
        100.0,
        "month",
        "soft",
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"sys_id": "a2", "start_date": "2026-03-01", "end_date": "2026-03-31"}, "belongs to no resource_plan"),
        ({"sys_id": "a3", "resource_plan": "p2", "start_date": "2026-03-01"}, "no start_date or end_date"),
        ({"sys_id": "a4", "resource_plan": "p2", "start_date": "2026-03-09", "end_date": "2026-03-02"},
         "ends (2026-03-02) before it starts"),
    ],
)  # fmt: skip
def test_a_malformed_allocation_names_itself(raw: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=r"resource_allocation a\d") as error:
        map_allocation(raw, source="snow", base=BASE)
    assert words in str(error.value)
