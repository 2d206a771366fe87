"""Contract tests: ProjectData rows shaped exactly as the feed sends them, through the mapping.

The first rows follow the recorded verbose sample in Microsoft's docs (an on-premises PWA:
``__metadata``, decimals as strings with six places, percent as an integer, no dates selected);
the others add what the platform notes say the feed does (JSON light ISO dates, ``/Date(ms)/``,
custom fields named after display names, nulls and empty strings).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from itcrosswalk.core.model import Person, WorkItem
from itcrosswalk.plugins.project_online import mapping

BASE = "http://pwa-host/pwa"

VERBOSE_SELECT_ROWS: list[dict[str, Any]] = [
    {
        "__metadata": {
            "id": "http://pwa-host/pwa/_api/ProjectData/Projects(guid'a1b2c3d4-0000-4000-8000-000000000001')",
            "uri": "http://pwa-host/pwa/_api/ProjectData/Projects(guid'a1b2c3d4-0000-4000-8000-000000000001')",
            "type": "ReportingData.Project",
        },
        "ProjectId": "a1b2c3d4-0000-4000-8000-000000000001",
        "ProjectActualCost": "0.000000",
        "ProjectCost": "0.000000",
        "ProjectName": "Task list created in PWA",
        "ProjectPercentCompleted": 0,
        "ProjectWork": "16.000000",
    },
    {
        "__metadata": {
            "id": "http://pwa-host/pwa/_api/ProjectData/Projects(guid'a1b2c3d4-0000-4000-8000-000000000002')",
            "uri": "http://pwa-host/pwa/_api/ProjectData/Projects(guid'a1b2c3d4-0000-4000-8000-000000000002')",
            "type": "ReportingData.Project",
        },
        "ProjectId": "a1b2c3d4-0000-4000-8000-000000000002",
        "ProjectActualCost": "700.000000",
        "ProjectCost": "2400.000000",
        "ProjectName": "Water main replacement, phase 2",
        "ProjectPercentCompleted": 29,
        "ProjectWork": "48.000000",
    },
]


def test_the_recorded_verbose_shape_maps_with_decimals_from_strings() -> None:
    empty, started = (
        mapping.map_project(row, source="pwa", base=BASE) for row in VERBOSE_SELECT_ROWS
    )
    assert isinstance(started, WorkItem) and started.kind == "project"
    assert started.forecast_cost == 2400.0 and started.actual_cost == 700.0
    assert started.percent_complete == 29.0
    assert started.extra["work_hours"] == 48.0
    assert "__metadata" not in started.extra
    # An empty project (no tasks, nothing spent) is still a project, with its zeros kept.
    assert empty.name == "Task list created in PWA"
    assert empty.forecast_cost == 0.0 and empty.percent_complete == 0.0
    assert empty.planned_start is None and empty.state == "unknown"
    assert empty.url.endswith("projuid=a1b2c3d4-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/Date(1356998400000)/", datetime(2013, 1, 1, tzinfo=UTC)),
        ("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC)),
        (
            "/Date(1356998400000+0060)/",
            datetime(2013, 1, 1, tzinfo=UTC),
        ),  # DateTimeOffset ticks are UTC
        ("2013-01-01T08:00:00", datetime(2013, 1, 1, 8, tzinfo=UTC)),
        ("2013-01-01T08:00:00.123", datetime(2013, 1, 1, 8, 0, 0, 123000, tzinfo=UTC)),
        ("2013-01-01T08:00:00Z", datetime(2013, 1, 1, 8, tzinfo=UTC)),
        ("2013-01-01T08:00:00-07:00", datetime(2013, 1, 1, 15, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_dates_in_the_feeds_formats(value: Any, expected: datetime | None) -> None:
    assert mapping.parse_datetime(value) == expected


def test_dates_without_an_offset_are_the_servers_local_time() -> None:
    phoenix = ZoneInfo("America/Phoenix")  # no daylight saving: always UTC-7
    assert mapping.parse_datetime("2026-07-01T08:00:00", phoenix) == datetime(
        2026, 7, 1, 15, tzinfo=UTC
    )
    assert mapping.parse_datetime("/Date(1782892800000)/", phoenix) == datetime(
        2026, 7, 1, 15, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["01/07/2026", "/Date(abc)/", "tomorrow", 1782892800000])
def test_a_date_in_no_known_format_raises_so_the_record_is_quarantined(value: Any) -> None:
    with pytest.raises(ValueError):
        mapping.parse_datetime(value)


LIGHT_PROJECT: dict[str, Any] = {
    "ProjectId": "5263ee3e-66e6-e111-9fc9-00155d35d32e",
    "ProjectName": "Stormwater asset inventory",
    "ProjectStartDate": "2026-02-02T08:00:00",
    "ProjectFinishDate": "2026-12-18T17:00:00",
    "ProjectActualStartDate": "2026-02-09T08:00:00",
    "ProjectActualFinishDate": None,
    "ProjectPercentCompleted": 41,
    "ProjectCost": "515000.000000",
    "ProjectActualCost": "201000.500000",
    "ProjectRemainingCost": "313999.500000",
    "ProjectBudgetCost": None,
    "ProjectBaselineCost": "480000.000000",
    "ProjectBaselineStartDate": "2026-02-02T08:00:00",
    "ProjectBaselineFinishDate": "2026-11-30T17:00:00",
    "ProjectWork": "5120.000000",
    "ProjectBCWS": "300000.000000",
    "ProjectBCWP": "196800.000000",
    "ProjectACWP": "201000.500000",
    "ProjectOwnerName": "Minh Nguyen",
    "ProjectManagerName": "",
    "ProjectDepartments": "Water",
    "ProjectModifiedDate": "2026-10-30T16:42:10.853",
    "ProjectCreatedDate": "2025-12-01T09:00:00",
    "ProjectStatusDate": "2026-10-31T17:00:00",
    "EnterpriseProjectTypeName": "Capital Improvement Project",
    "StageName": "Execute",
    # Custom fields, as the feed names them: spaces and punctuation gone, letters kept.
    "ProjectState": "In Progress",
    "OverallHealth": "(2) At Risk",
    "StrategicGoals": "Resilient Infrastructure; Climate Action",
    "CityPriority": "2 - High",
    "Départementdemandeur": "Eau potable",
    "BudgetCodeFY27": "",
    "CouncilDistrict": None,
}


def test_a_light_row_with_custom_fields_mapped_by_display_name() -> None:
    custom = {
        "state": "Project State",
        "health": "Overall Health",
        "goals": "Strategic Goals",
        "priority": "City Priority",
        "department": "Département demandeur",
    }
    item = mapping.map_project(LIGHT_PROJECT, source="pwa", base=BASE, custom_fields=custom)
    assert item.state == "in_progress" and item.health == "amber" and item.phase == "executing"
    assert item.strategic_goals == ["Resilient Infrastructure", "Climate Action"]
    assert item.priority == 2
    assert item.department == "Eau potable"  # the custom field wins over ProjectDepartments
    assert item.manager == "Minh Nguyen"
    assert item.planned_start == datetime(2026, 2, 2, 8, tzinfo=UTC)
    assert item.actual_finish is None
    assert item.updated_at == datetime(2026, 10, 30, 16, 42, 10, 853000, tzinfo=UTC)
    # Earned-value inputs come from the feed's own fields; the budget is the baseline cost.
    assert (item.planned_value, item.earned_value, item.actual_cost) == (
        300000.0,
        196800.0,
        201000.5,
    )
    assert item.budget == 480000.0 and item.forecast_cost == 515000.0
    # The baseline (the plan committed to) is its own field, apart from the current schedule.
    assert item.baseline_finish == datetime(2026, 11, 30, 17, tzinfo=UTC)
    assert "baseline_finish" not in item.extra
    assert item.extra["remaining_cost"] == 313999.5
    assert item.extra["status_date"] == "2026-10-31T17:00:00+00:00"
    assert item.extra["enterprise_project_type"] == "Capital Improvement Project"
    assert item.extra["custom_fields"]["Départementdemandeur"] == "Eau potable"
    assert "BudgetCodeFY27" not in item.extra and "CouncilDistrict" not in item.extra


def test_custom_fields_nobody_mapped_are_kept_intact_in_extra() -> None:
    item = mapping.map_project(LIGHT_PROJECT, source="pwa", base=BASE)
    assert item.extra["Départementdemandeur"] == "Eau potable"
    assert item.extra["ProjectState"] == "In Progress"
    assert item.state == "unknown" and item.department == "Water"


def test_unknown_native_values_become_unknown_with_the_value_kept() -> None:
    row = {**LIGHT_PROJECT, "ProjectState": "Awaiting Council", "StageName": "Permitting"}
    item = mapping.map_project(
        row, source="pwa", base=BASE, custom_fields={"state": "ProjectState"}
    )
    assert item.state == "unknown" and item.extra["native_state"] == "Awaiting Council"
    assert item.phase == "unknown" and item.extra["native_phase"] == "Permitting"


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("Strategic Goals", "StrategicGoals"),
        ("Département demandeur", "Départementdemandeur"),
        ("Budget (FY27) - Code #", "BudgetFY27Code"),
        ("Project_Sponsor", "Project_Sponsor"),
    ],
)
def test_a_custom_fields_feed_property_is_its_display_name_without_spaces_and_symbols(
    display: str, expected: str
) -> None:
    assert mapping.property_name(display) == expected


def test_a_malformed_row_raises_for_quarantine() -> None:
    with pytest.raises(ValueError, match="ProjectId"):
        mapping.map_project({"ProjectName": "x"}, source="pwa", base=BASE)
    with pytest.raises(ValueError):
        mapping.map_project({**LIGHT_PROJECT, "ProjectCost": "n/a"}, source="pwa", base=BASE)


def test_summary_tasks_and_milestones_hang_off_their_project_or_parent() -> None:
    top = {
        "ProjectId": "p-1",
        "TaskId": "t-1",
        "TaskName": "Design",
        "TaskParentTaskId": "p-summary",
        "TaskOutlineLevel": 1,
        "TaskIsSummary": True,
        "TaskIsMilestone": False,
        "TaskWBS": "1",
        "TaskStartDate": "/Date(1767254400000)/",
        "TaskFinishDate": "/Date(1769932800000)/",
        "TaskCost": "12000.000000",
        "TaskBCWS": "6000.000000",
        "TaskBCWP": "4000.000000",
        "TaskACWP": "4500.000000",
        "TaskPercentCompleted": 33,
        "TaskModifiedDate": "/Date(1767340800000)/",
    }
    milestone = {
        **top,
        "TaskId": "t-2",
        "TaskName": "Design approved",
        "TaskParentTaskId": "t-1",
        "TaskOutlineLevel": 2,
        "TaskIsSummary": False,
        "TaskIsMilestone": True,
        "TaskWBS": "1.3",
    }
    design = mapping.map_task(top, source="pwa", base=BASE)
    approved = mapping.map_task(milestone, source="pwa", base=BASE)
    assert design.kind == "task" and design.parent_id == "p-1" and design.number == "1"
    assert design.planned_start == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert (design.planned_value, design.earned_value, design.actual_cost) == (
        6000.0,
        4000.0,
        4500.0,
    )
    assert approved.kind == "milestone" and approved.parent_id == "t-1"


def test_a_resource_becomes_a_person_with_the_upn_from_the_claims_account() -> None:
    row = {
        "ResourceId": "r-1",
        "ResourceName": "Aisha Patel",
        "ResourceEmailAddress": "",
        "ResourceNTAccount": "i:0#.f|membership|Aisha.Patel@city.example.gov",
        "ResourceDepartments": "ITD",
        "ResourceIsActive": True,
        "ResourceModifiedDate": "2026-09-01T10:00:00",
        "ResourceStandardRate": "65.000000",
    }
    person = mapping.map_resource(row, source="pwa", base=BASE)
    assert isinstance(person, Person)
    assert person.upn == "aisha.patel@city.example.gov" and person.email is None
    assert person.extra["ResourceStandardRate"] == "65.000000"
    windows = mapping.map_resource(
        {**row, "ResourceNTAccount": "i:0#.w|city\\apatel"}, source="pwa", base=BASE
    )
    assert windows.upn is None


def test_issue_and_risk_logs_are_counted_by_sharepoint_status() -> None:
    risks = [
        {"Status": "(1) Active", "Exposure": 1.2},
        {"Status": "(2) Postponed", "Exposure": 4.0},
        {"Status": "(1) Active", "Exposure": None},
    ]
    assert mapping.summarize_log(risks, "risks") == {
        "total": 3,
        "active": 2,
        "max_active_exposure": 1.2,
    }
    assert mapping.summarize_log([], "issues") == {"total": 0, "active": 0}


def test_describe_documents_the_tables() -> None:
    tables = mapping.describe()
    assert tables["state"]["on hold"] == "on_hold"
    assert "ProjectBCWS" in tables["project_fields"]["planned_value"]
    assert set(tables["custom_field_targets"]) >= {"department", "goals", "priority"}
