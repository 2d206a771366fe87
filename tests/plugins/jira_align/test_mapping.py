"""Contract tests: payloads shaped exactly like the recorded Jira Align ones, through the mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from itcrosswalk.core.model import WorkItem
from itcrosswalk.plugins.jira_align import mapping

BASE = "https://city.jiraalign.com"


def epic(**changes: Any) -> dict[str, Any]:
    """An epic as ``GET /Epics/{id}`` returns it on a live site (odd values included)."""
    raw: dict[str, Any] = {
        "id": 1310,
        "title": "Resident portal single sign-on",
        "createDate": "2025-03-11T14:44:55.580Z",
        "ownerId": "Dana.Whitfield",  # sites mix user names and ids here
        "themeId": 2,
        "strategicDriver": 4,
        "description": "Single sign-on for the resident portal",
        "primaryProgramId": 14,
        "tags": None,
        "state": 2,
        "processStepId": 84,
        "processStepName": "84 - Implementing MVP",
        "acceptedDate": None,
        "acceptedUserId": None,
        "strategicValueScore": 50,
        "type": 1,
        "fcastShare": None,
        "notStartedDate": "2025-03-11T14:44:55.000Z",
        "inProgressBy": "1197",
        "inProgressDate": "2025-04-02T14:49:14.000Z",
        "isRecycled": None,
        "lastUpdatedDate": "2025-06-06T19:25:10.517Z",
        "lastUpdatedBy": "1159",
        "createdBy": "1197",
        "targetCompletionDate": None,
        "startInitiationDate": None,
        "budget": 1300000,
        "discountRate": 10.0,
        "customerIds": [],
        "effortSwag": 25,
        "score": {
            "cost": "Medium",
            "profitPotential": "High",
            "score": 74.5,
            "scoreCardId": 1,
            "values": [{"questionId": 1, "question": "Cost", "answerId": 2, "answer": "Medium"}],
        },
        "releaseIds": [49, 34],
        "additionalProgramIds": [],
        "points": [
            {"releaseId": 49, "estimationSystem": "T-Shirt", "estimationValue": "Medium"},
            {"estimationSystem": "T-Shirt", "estimationValue": None},
        ],
        "externalKey": None,
        "externalId": None,
        "spendToDate": 1250000,
        "estimateAtCompletion": 1250000,
        "isCanceled": None,
        "featureIds": [5476],
        "health": None,
        "status": None,
        "customFields": [{"customfield_70001": "Water"}, {"customfield_70002": None}],
        "links": [],
        "self": f"{BASE}/rest/align/api/2/epics/1310",
    }
    raw.update(changes)
    return raw


def feature(**changes: Any) -> dict[str, Any]:
    """A feature as a list page returns it: never edited, so ``lastUpdatedDate`` is null."""
    raw: dict[str, Any] = {
        "id": 5476,
        "title": "Mobile app survey notification",
        "description": "Notify after a call",
        "releaseId": 49,
        "ownerId": "1197",
        "state": 1,
        "createDate": "2024-05-28T15:06:30.000Z",
        "type": 1,
        "mmf": 0,
        "isBlocked": 0,
        "priority": None,
        "primaryProgramId": 14,
        "parentId": 1310,
        "pendingApprovalBy": "1197",
        "pendingApprovalDate": "2024-05-28T15:06:31.000Z",
        "readyToStartBy": None,
        "readyToStartDate": None,
        "inProgressDate": None,
        "devCompleteDate": None,
        "testCompleteDate": None,
        "acceptedDate": None,
        "isRecycled": None,
        "lastUpdatedDate": None,
        "points": 24,
        "processStepId": 91,
        "processStepName": None,
        "manWeeks": 240.0,
        "estimateTshirt": 14,
        "externalId": None,
        "jiraProjectKey": None,
        "isCanceled": None,
        "spendToDate": None,
        "estimateAtCompletion": None,
        "testCategoryIds": [2, 3],
        "customFields": [],
        "links": [],
        "self": f"{BASE}/rest/align/api/2/features/5476",
    }
    raw.update(changes)
    return raw


def work(resource: str, raw: dict[str, Any], **kwargs: Any) -> WorkItem:
    return mapping.map_work(resource, raw, source="align", base=BASE, **kwargs)


def test_a_recorded_shape_epic_maps_every_field_it_names() -> None:
    names = {
        "program-14": "Resident Experience ART",
        "theme-2": "Digital Services",
        "release-49": "PI 2025.2",
    }
    item = work(
        "Epics",
        epic(),
        owners={"Dana.Whitfield": "dana.whitfield@city.example.gov"},
        names=names,
        department_field="customfield_70001",
    )
    assert item.source_id == "epic-1310" and item.kind == "epic" and item.number == "1310"
    assert item.parent_id == "program-14"
    assert item.state == "in_progress" and item.phase == "executing" and item.health == "unknown"
    assert item.manager == "dana.whitfield@city.example.gov"
    assert item.department == "Water"
    assert item.strategic_goals == ["Digital Services"]
    assert item.score == 74.5
    assert item.budget == 1300000 and item.actual_cost == 1250000 and item.forecast_cost == 1250000
    assert item.actual_start == datetime(2025, 4, 2, 14, 49, 14, tzinfo=UTC)
    assert item.updated_at == datetime(2025, 6, 6, 19, 25, 10, 517000, tzinfo=UTC)
    assert item.url == f"{BASE}/rest/align/api/2/epics/1310"
    assert item.extra["program"] == "Resident Experience ART"
    assert item.extra["program_increments"] == ["PI 2025.2", "34"]
    assert item.extra["estimates"] == {
        "points": [{"release_id": 49, "system": "T-Shirt", "value": "Medium"}],
        "effort_swag": 25.0,
    }
    assert item.extra["customFields"] == {"customfield_70001": "Water"}
    assert (
        "tags" not in item.extra and "customerIds" not in item.extra
    )  # nulls and [] carry nothing
    assert item.extra["processStepName"] == "84 - Implementing MVP"


def test_a_never_edited_feature_keeps_its_estimates_and_its_epic() -> None:
    item = work("Features", feature())
    assert item.source_id == "feature-5476" and item.kind == "feature"
    assert item.parent_id == "epic-1310"
    assert item.updated_at is None and item.created_at == datetime(
        2024, 5, 28, 15, 6, 30, tzinfo=UTC
    )
    assert item.state == "proposed" and item.phase == "initiating"
    assert item.manager == "1197"  # no users loaded: the id is kept
    assert item.extra["estimates"] == {"points": 24.0, "tshirt": "L", "man_weeks": 240.0}
    assert item.extra["program_increments"] == ["49"]


@pytest.mark.parametrize(
    ("resource", "changes", "state", "phase"),
    [
        ("Epics", {"state": 1, "processStepName": "81 - Funnel"}, "proposed", "initiating"),
        (
            "Epics",
            {"state": 1, "processStepName": "83 - Portfolio Backlog"},
            "approved",
            "planning",
        ),
        ("Epics", {"state": 3, "processStepName": "87 - Done"}, "done", "closing"),
        ("Epics", {"state": 2, "isCanceled": True}, "cancelled", "closing"),
        (
            "Features",
            {"state": 1, "readyToStartDate": "2024-05-30T21:05:54.267Z"},
            "approved",
            "planning",
        ),
        ("Features", {"state": 2, "isBlocked": 1}, "on_hold", "executing"),
        ("Features", {"state": 4}, "in_progress", "monitoring"),
        ("Features", {"state": 5, "processStepName": "96 - Done"}, "done", "closing"),
        ("Features", {"state": "3"}, "in_progress", "monitoring"),
    ],
)
def test_states_and_phases_follow_the_crosswalk_table(
    resource: str, changes: dict[str, Any], state: str, phase: str
) -> None:
    raw = epic(**changes) if resource == "Epics" else feature(**changes)
    item = work(resource, raw)
    assert (item.state, item.phase) == (state, phase)


def test_an_unknown_state_or_health_is_kept_as_unknown_with_the_native_value() -> None:
    item = work("Epics", epic(state=9, health="Purple"))
    assert item.state == "unknown" and item.extra["native_state"] == 9
    assert item.health == "unknown" and item.extra["native_health"] == "Purple"
    assert work("Epics", epic(health="Yellow")).health == "amber"


def test_cancelled_and_recycled_items_are_kept_and_flagged() -> None:
    item = work("Features", feature(state=2, isCanceled=True, isRecycled=True))
    assert item.state == "cancelled"
    assert item.extra["native_state"] == 2
    assert item.extra["canceled"] is True and item.extra["recycled"] is True


def test_numbers_as_strings_and_empty_strings_are_read() -> None:
    item = work("Epics", epic(budget="1300000.00", spendToDate="", processStepName="", ownerId=""))
    assert item.budget == 1300000.0 and item.actual_cost is None and item.manager is None
    assert item.phase == "executing"


def test_programs_portfolios_and_themes() -> None:
    program = work(
        "Programs",
        {
            "id": 11,
            "title": "AI",
            "portfolioId": 8,
            "solutionId": None,
            "teamId": 157,
            "teamDescription": "",
            "lastUpdatedDate": None,
            "self": f"{BASE}/rest/align/api/2/programs/11",
        },
    )
    assert program.kind == "program" and program.parent_id == "portfolio-8"
    assert program.updated_at is None and program.state == "in_progress"
    assert program.extra == {"portfolioId": 8, "teamId": 157}
    theme = work(
        "Themes",
        {
            "id": 2,
            "title": "Digital Services",
            "state": 1,
            "plannedBudget": "5000000",
            "createDate": "2024-01-02T00:00:00.000Z",
            "lastUpdatedDate": None,
        },
    )
    assert theme.kind == "theme" and "jira_align_type" not in theme.extra
    assert theme.budget == 5_000_000 and theme.state == "in_progress"
    portfolio = work(
        "Portfolios", {"id": 4, "title": "Digital", "isActive": False, "lastUpdatedDate": None}
    )
    assert portfolio.state == "done" and portfolio.parent_id is None


def test_a_feature_under_a_capability_points_to_the_capability() -> None:
    raw = feature(parentCapability={"id": 77, "title": "Payments"})
    assert work("Features", raw).parent_id == "capability-77"
    assert work("Features", feature(), feature_parent="Capabilities").parent_id == "capability-1310"
    assert work("Capabilities", feature(parentId=1310)).parent_id == "epic-1310"


@pytest.mark.parametrize(
    "changes",
    [{"lastUpdatedDate": "yesterday"}, {"id": None}, {"budget": "n/a"}, {"createDate": 20240528}],
)
def test_a_malformed_record_raises_so_the_engine_quarantines_it(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        work("Epics", epic(**changes))


def test_describe_prints_the_tables() -> None:
    described = mapping.describe()
    assert described["states"]["Features"]["5"] == {"normalized": "done", "native": "Accepted"}
    assert described["resources"]["Epics"] == {"kind": "epic", "source_id": "epic-<id>"}
