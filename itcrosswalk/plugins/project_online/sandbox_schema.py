"""What the emulated Project Web App's reporting database (ProjectData) holds: its entity sets,
their keys, properties and Edm types, page limits, navigation properties, the enterprise custom
fields and the words Project Server uses for the city's values.

A new entity set (timephased data, cost fields, ...) is declared here (``SCHEMA``, ``KEYS``,
``TYPES``, ``PAGE_LIMITS``, and ``MODIFIED`` when it has a modified date) and rendered from the
world in :mod:`.sandbox_rows`; the feed, ``$filter``, ``$select``, paging and ``$metadata`` then
serve it with no other change.
"""

from __future__ import annotations

import re
import uuid

NS = uuid.UUID("0d7b7f0e-5c8e-4d55-9a0b-6b1f0f1e2a77")
PAGE_LIMITS: dict[str, int] = {
    "Projects": 100,
    "Tasks": 300,
    "Assignments": 250,
    "Resources": 200,
    "ProjectBaselines": 100,
    "TaskBaselines": 300,
    "Issues": 200,
    "Risks": 200,
}
KEYS: dict[str, tuple[str, ...]] = {
    "Projects": ("ProjectId",),
    "Tasks": ("ProjectId", "TaskId"),
    "Assignments": ("ProjectId", "AssignmentId"),
    "Resources": ("ResourceId",),
    "ProjectBaselines": ("ProjectId", "BaselineNumber"),
    "TaskBaselines": ("ProjectId", "TaskId", "BaselineNumber"),
    "Issues": ("ProjectId", "IssueId"),
    "Risks": ("ProjectId", "RiskId"),
}
TYPES: dict[str, str] = {
    "Projects": "Project",
    "Tasks": "Task",
    "Assignments": "Assignment",
    "Resources": "Resource",
    "ProjectBaselines": "ProjectBaseline",
    "TaskBaselines": "TaskBaseline",
    "Issues": "Issue",
    "Risks": "Risk",
}
MODIFIED: dict[str, str] = {
    "Projects": "ProjectModifiedDate",
    "Tasks": "TaskModifiedDate",
    "Resources": "ResourceModifiedDate",
    "Assignments": "AssignmentModifiedDate",
}

# property -> Edm type, per entity set (what $metadata would say)
G, S, D, T, N, B, F = "Guid", "String", "Decimal", "DateTime", "Int32", "Boolean", "Double"
SCHEMA: dict[str, dict[str, str]] = {
    "Projects": {
        "ProjectId": G,
        "ProjectName": S,
        "ProjectDescription": S,
        "ProjectStartDate": T,
        "ProjectFinishDate": T,
        "ProjectActualStartDate": T,
        "ProjectActualFinishDate": T,
        "ProjectPercentCompleted": N,
        "ProjectPercentWorkCompleted": N,
        "ProjectCost": D,
        "ProjectActualCost": D,
        "ProjectRemainingCost": D,
        "ProjectBudgetCost": D,
        "ProjectWork": D,
        "ProjectActualWork": D,
        "ProjectRemainingWork": D,
        "ProjectBCWS": D,
        "ProjectBCWP": D,
        "ProjectACWP": D,
        "ProjectOwnerId": G,
        "ProjectOwnerName": S,
        "ProjectManagerName": S,
        "ProjectDepartments": S,
        "ProjectStatusDate": T,
        "ProjectModifiedDate": T,
        "ProjectCreatedDate": T,
        "ProjectLastPublishedDate": T,
        "ProjectType": N,
        "EnterpriseProjectTypeId": G,
        "EnterpriseProjectTypeName": S,
    },
    "Tasks": {
        "ProjectId": G,
        "TaskId": G,
        "ProjectName": S,
        "TaskName": S,
        "TaskParentTaskId": G,
        "TaskParentTaskName": S,
        "TaskOutlineLevel": N,
        "TaskOutlineNumber": S,
        "TaskWBS": S,
        "TaskIndex": N,
        "TaskIsSummary": B,
        "TaskIsMilestone": B,
        "TaskIsProjectSummary": B,
        "TaskIsCritical": B,
        "TaskStartDate": T,
        "TaskFinishDate": T,
        "TaskActualStartDate": T,
        "TaskActualFinishDate": T,
        "TaskPercentCompleted": N,
        "TaskCost": D,
        "TaskActualCost": D,
        "TaskRemainingCost": D,
        "TaskWork": D,
        "TaskBCWS": D,
        "TaskBCWP": D,
        "TaskACWP": D,
        "TaskModifiedDate": T,
        "TaskCreatedDate": T,
    },
    "Assignments": {
        "ProjectId": G,
        "AssignmentId": G,
        "TaskId": G,
        "ResourceId": G,
        "ResourceName": S,
        "TaskName": S,
        "AssignmentWork": D,
        "AssignmentCost": D,
        "AssignmentActualCost": D,
        "AssignmentStartDate": T,
        "AssignmentFinishDate": T,
        "AssignmentModifiedDate": T,
    },
    "Resources": {
        "ResourceId": G,
        "ResourceName": S,
        "ResourceEmailAddress": S,
        "ResourceNTAccount": S,
        "ResourceDepartments": S,
        "ResourceIsActive": B,
        "ResourceIsGeneric": B,
        "ResourceType": N,
        "ResourceInitials": S,
        "ResourceStandardRate": D,
        "ResourceModifiedDate": T,
        "ResourceCreatedDate": T,
    },
    "ProjectBaselines": {
        "ProjectId": G,
        "BaselineNumber": N,
        "ProjectName": S,
        "ProjectBaselineStartDate": T,
        "ProjectBaselineFinishDate": T,
        "ProjectBaselineCost": D,
        "ProjectBaselineWork": D,
        "ProjectBaselineBudgetCost": D,
        "ProjectBaselineModifiedDate": T,
    },
    "TaskBaselines": {
        "ProjectId": G,
        "TaskId": G,
        "BaselineNumber": N,
        "TaskName": S,
        "TaskBaselineStartDate": T,
        "TaskBaselineFinishDate": T,
        "TaskBaselineCost": D,
        "TaskBaselineWork": D,
        "TaskBaselineBudgetCost": D,
        "TaskBaselineModifiedDate": T,
    },
    "Issues": {
        "ProjectId": G,
        "IssueId": G,
        "ProjectName": S,
        "Title": S,
        "Status": S,
        "Priority": S,
        "Category": S,
        "DueDate": T,
        "ModifiedDate": T,
    },
    "Risks": {
        "ProjectId": G,
        "RiskId": G,
        "ProjectName": S,
        "Title": S,
        "Status": S,
        "Probability": F,
        "Impact": F,
        "Exposure": F,
        "Cost": D,
        "DueDate": T,
        "ModifiedDate": T,
    },
}

NAVIGATION: dict[str, tuple[str, ...]] = {
    "Projects": ("Assignments", "Deliverables", "Issues", "Risks", "Tasks", "ProjectBaselines"),
    "Tasks": ("Assignments", "Baselines", "Project", "Issues", "Risks"),
    "Resources": ("Assignments", "ResourceDemandTimephasedInfo"),
    "Assignments": ("Project", "Resource", "Task"),
}

# Enterprise custom fields of the emulated PWA: display name -> (feed property, values from a Work)
CUSTOM_FIELDS: dict[str, str] = {
    "Project Departments": "ProjectDepartments",  # built in, a custom field all the same
    "Project Manager": "ProjectManager",
    "Project State": "ProjectState",
    "Project Phase": "ProjectPhase",
    "Overall Health": "OverallHealth",
    "Strategic Goals": "StrategicGoals",
    "City Priority": "CityPriority",
    "Project Sponsor": "ProjectSponsor",
    "Project Number": "ProjectNumber",
    "Année fiscale": "Annéefiscale",
    "Business Case Approved": "BusinessCaseApproved",
}
STATE_WORDS = {
    "proposed": "Proposed",
    "approved": "Approved",
    "in_progress": "In Progress",
    "on_hold": "On Hold",
    "done": "Completed",
    "cancelled": "Cancelled",
}
PHASE_WORDS = {
    "initiating": "Initiate",
    "planning": "Plan",
    "executing": "Execute",
    "monitoring": "Monitor",
    "closing": "Close",
}
HEALTH_WORDS = {"green": "On Track", "amber": "At Risk", "red": "Off Track"}
PRIORITY_WORDS = {
    1: "1 - Critical",
    2: "2 - High",
    3: "3 - Medium",
    4: "4 - Low",
    5: "5 - Planning",
}
PROJECT_TYPES = {
    "Enterprise Project": "09fa52b4-059b-4527-926e-99f9be96437a",
    "City Standard Project": "3b7a1b9c-6a50-4d4a-9d6c-0d2c6a0e5f11",
    "Capital Improvement Project": "6e2f4f8e-2b1d-4c55-8b7a-9a1c3d5e7f22",
}
DEMO_CUSTOM_FIELDS = {
    "manager": "Project Manager",
    "state": "Project State",
    "phase": "Project Phase",
    "health": "Overall Health",
    "goals": "Strategic Goals",
    "priority": "City Priority",
    "sponsor": "Project Sponsor",
    "number": "Project Number",
    "business_case_approved": "Business Case Approved",
}
JOB_SUCCESS = 4


def guid(*parts: str) -> str:
    return str(uuid.uuid5(NS, "|".join(parts)))


def hex_guid(value: str) -> str:
    """A world id (32 hex) as a GUID string."""
    return str(uuid.UUID(hex=value)) if re.fullmatch(r"[0-9a-f]{32}", value) else guid(value)
