"""The crosswalk tables on recorded Dataverse rows (MPXJ's crm11 org) and on the emulator's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.plugins.planner_premium import mapping

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "planner_premium"
BASE = "https://org7a979f91.crm11.dynamics.com"
LABELS = {"msdyn_priority": {1: "Urgent", 3: "Important", 5: "Medium", 9: "Low"}}


def fixture(name: str) -> dict[str, Any]:
    if not FIXTURES.exists():
        pytest.skip("the shared fixtures are not beside this checkout")
    row = json.loads((FIXTURES / name).read_text())
    return {k: v for k, v in row.items() if not k.startswith("_note") and not k.startswith("_keys")}


def test_a_recorded_task_maps_with_its_bucket_wall_times_and_priority_label() -> None:
    raw = fixture("msdyn_projecttask_recorded_mpxj.json")
    raw.update(msdyn_projecttaskid="a7c97a92-e2e4-f011-89f4-6045bd0b8013", msdyn_subject="Design",
               msdyn_progress=0.25)  # fmt: skip
    raw.setdefault("_msdyn_project_value", "18702d8b-e2e4-f011-8406-6045bd0ae75a")
    task = mapping.map_task(raw, source="pp", base=BASE, labels=LABELS)
    assert task.percent_complete == 25.0  # a fraction, shown as a percent
    assert task.priority == 3 and task.extra["priority_label"] == "Medium"
    assert (
        task.planned_start is not None
        and task.planned_start.isoformat() == "2019-10-15T09:00:00+00:00"
    )
    # msdyn_tza* are the calendar's wall times: kept as naive text, never as instants.
    assert task.extra["msdyn_tzascheduledstart"] == "2019-10-15T09:00:00"
    assert task.extra["_msdyn_projectbucket_value"] == "afc97a92-e2e4-f011-89f4-6045bd0b8013"
    assert task.parent_id == raw.get("_msdyn_parenttask_value") or raw["_msdyn_project_value"]


def test_labels_come_from_the_org_then_the_formatted_value_never_a_number_table() -> None:
    row = {
        "msdyn_priority": 5,
        "msdyn_priority@OData.Community.Display.V1.FormattedValue": "Mittel",
    }
    assert mapping.label(row, "msdyn_priority", LABELS) == "Medium"
    assert mapping.label(row, "msdyn_priority", {}) == "Mittel"
    assert mapping.label({"msdyn_priority": 5}, "msdyn_priority", {}) is None


def test_progress_outside_a_fraction_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="msdyn_progress 40.0 is not a fraction"):
        mapping.fraction_percent(40)
    assert mapping.fraction_percent(1) == 100.0 and mapping.fraction_percent(None) is None


def test_planned_work_is_a_string_parsed_twice() -> None:
    raw = fixture("msdyn_resourceassignment_recorded_mpxj.json")
    slots = mapping.planned_work(raw["msdyn_plannedwork"])
    assert len(slots) == 5 and slots[0] == {
        "hours": 8, "start": "2019-10-15T09:00:00+00:00", "end": "2019-10-15T17:00:00+00:00",
    }  # fmt: skip


def test_an_inactive_plan_is_done_cancelled_or_on_hold_by_its_status_label() -> None:
    labels = {"statuscode": {192350010: "Closed", 192350011: "Cancelled", 192350012: "Put on hold"}}
    for value, state in ((192350010, "done"), (192350011, "cancelled"), (192350012, "on_hold")):
        raw = {"statecode": 1, "statuscode": value}
        assert mapping.project_state(raw, labels, 40.0) == state
    assert mapping.project_state({"statecode": 0, "statuscode": 1}, labels, 100.0) == "done"
