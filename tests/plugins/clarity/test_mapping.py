"""The crosswalk tables against the recorded and documented Clarity payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from itcrosswalk.plugins.clarity import mapping

FIXTURES = Path(__file__).parent / "fixtures"
PHOENIX = ZoneInfo("America/Phoenix")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_the_recorded_idea_maps_to_a_demand_with_its_money_as_given() -> None:
    raw = load("idea_get_single_full.json")
    demand = mapping.map_idea(
        raw, source="ppm", base="https://ppm", zone=UTC, emails={}, custom_fields={}
    )
    assert demand.source_id == "idea-5000004" and demand.number == "CA-1"
    assert demand.state == "approved"  # status 1, not converted
    assert demand.estimated_cost == 111.0 and demand.extra["estimated_benefit"] == 222.0
    assert demand.extra["currency"] == "USD"
    assert demand.submitted_at == datetime(2020, 8, 25, 11, 51, 54, tzinfo=UTC)
    assert demand.priority == 2  # Clarity's 10 on its 0-36 scale


def test_listed_ideas_with_explicit_nulls_map() -> None:
    listed = load("ideas_list_modified_since.json")["_results"]
    demands = [
        mapping.map_idea(r, source="ppm", base="https://ppm", zone=UTC, emails={}, custom_fields={})
        for r in listed
    ]
    assert [d.state for d in demands] == ["approved", "submitted"]
    assert demands[1].estimated_cost is None


def test_recorded_tasks_keep_their_mixed_parent_references() -> None:
    tasks = load("project_tasks_recorded.json")["tasks"]
    mapped = [
        mapping.map_task(t, project=5057011, source="ppm", base="https://ppm", zone=UTC, emails={})
        for t in tasks
    ]
    assert mapped[0].parent_id == "project-5057011"  # "prj_5057011"
    assert mapped[1].parent_id == "task-5099238"  # a bare integer
    assert mapped[0].source_id == "task-5101076"  # _internalId, not the recorded _self's id
    assert all(m.state == "approved" for m in mapped)  # Not Started
    assert mapped[1].planned_start == datetime(2020, 4, 7, 8, 0, tzinfo=UTC)


def test_the_documented_bulk_project_maps_with_a_string_internal_id() -> None:
    raw = load("projects_bulk_post_partial_errors_doc.json")["response"]["_results"][0]
    project = mapping.map_project(
        raw, source="ppm", base="https://ppm", zone=PHOENIX, labels={}, emails={}, custom_fields={}
    )
    assert project.source_id == "project-5000001"
    assert project.state == "on_hold"  # financialStatus H (Hold) outranks "Unapproved"
    assert project.updated_at == datetime(2015, 4, 1, 15, 38, 31, tzinfo=UTC)  # 08:38 in Phoenix


@pytest.mark.parametrize(
    ("status", "progress", "active", "financial", "state"),
    [
        ("0", "0", True, "O", "proposed"),
        ("1", "0", True, "O", "approved"),
        ("1", "1", True, "O", "in_progress"),
        ("1", "1", True, "H", "on_hold"),
        ("1", "2", False, "C", "done"),
        ("2", "0", False, "C", "cancelled"),
        ("1", "1", False, "O", "cancelled"),
        ("5", "1", True, "O", "unknown"),
    ],
)
def test_state_rules(status: str, progress: str, active: bool, financial: str, state: str) -> None:
    raw = {
        "status": {"id": status},
        "progress": {"id": progress},
        "isActive": active,
        "financialStatus": {"id": financial},
    }
    assert mapping.work_state(raw)[0] == state


def test_health_comes_from_the_tenants_labels_not_its_ids() -> None:
    labels = {
        "10": "On Track",
        "20": "Minor Variance",
        "30": "Significant Variance",
        "40": "Purple",
    }
    for ident, colour in (("10", "green"), ("20", "amber"), ("30", "red"), ("40", "unknown")):
        found, kept = mapping.health({"statusIndicator": {"id": ident}}, labels)
        assert found == colour
        assert bool(kept) is (colour == "unknown")


def test_local_times_are_read_and_written_in_the_servers_zone() -> None:
    moment = mapping.parse_local("2026-03-08T01:30:00", PHOENIX)
    assert moment == datetime(2026, 3, 8, 8, 30, tzinfo=UTC)
    assert mapping.to_local(datetime(2026, 3, 8, 8, 30, 59, 999, tzinfo=UTC), PHOENIX) == (
        "2026-03-08T01:30:59"  # floored to the second
    )


def test_money_and_ids_as_clarity_gives_them() -> None:
    assert mapping.parse_money({"amount": "111.00", "currency": "USD"}) == 111.0
    assert mapping.parse_money("2500.50") == 2500.5 and mapping.parse_money(None) is None
    assert mapping.source_id("project", "5000001") == mapping.source_id("project", 5000001)
    with pytest.raises(ValueError):
        mapping.parse_money(True)
