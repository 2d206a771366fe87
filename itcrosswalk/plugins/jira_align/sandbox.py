"""A Jira Align site on loopback: REST API 2.0 (``/rest/align/api/2/``) as the real one answers.

It serves the sandbox city's agile programs (the world's work items held by ``jira_align``:
a portfolio, its program, epics and features) plus the reference data around them (strategic
themes, program increments as Releases, teams, users), following
``shared/platforms/jira_align.md`` and the recorded payloads: integer ids per resource; list
answers as bare JSON arrays with no count and no next link; ``$top`` at most 100 with
``$skip``; ``$select``; ``$filter`` with ``eq ne gt ge lt le`` joined by ``and``/``or``,
where a date compares by its date only (the time part is ignored); ``lastUpdatedDate`` null
on items never edited since their import; cancelled and recycled items still returned;
errors as RFC 7807 problem details (validation failures with an ``errors`` map); 401 without
a valid API token (``Authorization: bearer``; Basic with an API token for Atlassian Guard
sites); 429 with ``Retry-After``; POST creating epics and features. A filter the site does not
support is refused with 400, as the real one refuses what its query parser does not know.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from ...sandbox.emulator import Emulator, Response
from ...sandbox.faults import Faults
from ...sandbox.filters import compare
from ...sandbox.world import Work, World

API = "/rest/align/api/2"
PROBLEM = "application/problem+json; charset=utf-8"

# resource (lower case, as routes are case-insensitive) -> the name the site uses in links
RESOURCES = {
    "portfolios": "portfolios",
    "programs": "programs",
    "themes": "themes",
    "epics": "epics",
    "capabilities": "capabilities",
    "features": "features",
    "releases": "releases",
    "teams": "teams",
    "users": "users",
}

# The fields each resource has (from the API's DTOs): $select and $filter accept these only.
EPIC_FIELDS = [
    "id", "title", "createDate", "ownerId", "themeId", "strategicDriver", "description",
    "primaryProgramId", "tags", "state", "processStepId", "processStepName", "acceptedDate",
    "acceptedUserId", "strategicValueScore", "type", "fcastShare", "reportColor", "mvp",
    "investmentType", "notStartedBy", "notStartedDate", "notStartedDateEnd", "inProgressBy",
    "inProgressDate", "inProgressDateEnd", "isRecycled", "lastUpdatedDate", "lastUpdatedBy",
    "createdBy", "targetCompletionDate", "startInitiationDate", "portfolioAskDate",
    "externalOpEx", "externalCapEx", "totalCapEx", "totalOpEx", "budget", "discountRate",
    "customerIds", "epicObjectId", "capitalized", "effortSwag", "hypothesis", "workCodeId",
    "score", "releaseIds", "additionalProgramIds", "additionalProcessStepIds", "points",
    "externalKey", "externalId", "externalProject", "connectorId", "spendToDate",
    "estimateAtCompletion", "isSplit", "parentSplitId", "isCanceled", "dependencyIds",
    "featureIds", "health", "status", "customFields", "links", "self",
]  # fmt: skip
FEATURE_FIELDS = [
    "id", "title", "description", "releaseId", "ownerId", "state", "createDate", "type", "mmf",
    "isBlocked", "priority", "primaryProgramId", "productId", "isMultiProgram", "themeId",
    "parentId", "reportColor", "startSprintId", "endSprintId", "targetCompletionDate",
    "startInitiationDate", "portfolioAskDate", "category", "capitalized", "requesterId",
    "blockedReason", "score", "acceptedDate", "acceptedUserId", "pendingApprovalBy",
    "pendingApprovalDate", "readyToStartBy", "readyToStartDate", "inProgressBy",
    "inProgressDate", "devCompleteBy", "devCompleteDate", "testCompleteBy", "testCompleteDate",
    "isRecycled", "createdBy", "lastUpdatedDate", "lastUpdatedBy", "points", "tags",
    "processStepId", "processStepName", "additionalProcessStepIds", "manWeeks", "externalKey",
    "estimateTshirt", "parentSplitId", "externalId", "jiraProjectKey", "featureSummary",
    "externalProject", "connectorId", "budget", "isCanceled", "spendToDate",
    "estimateAtCompletion", "isSplit", "itemToSyncDate", "releaseVehicleIds",
    "additionalProgramIds", "productObjectiveIds", "affectedCountryIds", "testCategoryIds",
    "customFields", "links", "self",
]  # fmt: skip
CAPABILITY_FIELDS = [
    "id", "title", "description", "state", "createDate", "ownerId", "parentId",
    "primaryProgramId", "processStepId", "acceptedDate", "inProgressDate", "notStartedDate",
    "targetCompletionDate", "startInitiationDate", "isRecycled", "isCanceled", "lastUpdatedDate",
    "lastUpdatedBy", "createdBy", "externalId", "externalKey", "releaseIds", "points", "type",
    "customFields", "links", "self",
]  # fmt: skip
FIELDS: dict[str, list[str]] = {
    "portfolios": [
        "id", "title", "description", "isActive", "isPrivate", "divisionId", "teamId",
        "teamDescription", "scoreCardId", "intakeFormId", "regionId", "caseDevelopmentId",
        "lastUpdatedDate", "self",
    ],
    "programs": [
        "id", "title", "portfolioId", "solutionId", "isSolution", "teamId", "teamDescription",
        "scoreCardId", "intakeFormId", "regionId", "caseDevelopmentId", "lastUpdatedDate", "self",
    ],
    "themes": [
        "id", "title", "description", "state", "isActive", "isMajor", "strategic", "goalId",
        "plannedBudget", "programIds", "releaseIds", "reportColor", "startInitiationDate",
        "targetCompletionDate", "portfolioAskDate", "createDate", "createdBy", "lastUpdatedDate",
        "externalId", "externalKey", "customFields", "links", "self",
    ],
    "epics": EPIC_FIELDS,
    "capabilities": CAPABILITY_FIELDS,
    "features": FEATURE_FIELDS,
    "releases": [
        "id", "title", "shortName", "releaseNumber", "description", "status", "type",
        "scheduleType", "startDate", "endDate", "health", "budget", "blendedHourlyRate",
        "portfolioId", "programIds", "regionIds", "createDate", "lastUpdatedDate",
        "lastUpdatedBy", "self",
    ],
    "teams": [
        "id", "name", "shortName", "description", "type", "isActive", "isKanbanTeam", "programId",
        "programIds", "ownerId", "createDate", "lastUpdatedDate", "self",
    ],
    "users": [
        "id", "uid", "firstName", "lastName", "fullName", "email", "title", "status", "isLocked",
        "managerId", "createDate", "lastUpdatedDate", "lastLoginDate", "self",
    ],
}  # fmt: skip

# world state -> (epic state, Kanban step) and (feature state, extra flags)
EPIC_STATE = {
    "proposed": (1, "81 - Funnel"),
    "approved": (1, "83 - Portfolio Backlog"),
    "in_progress": (2, "84 - Implementing MVP"),
    "on_hold": (2, "84 - Implementing MVP"),
    "done": (3, "87 - Done"),
    "cancelled": (1, "82 - Analyzing"),
}
FEATURE_STATE = {
    "proposed": (1, "90 - Pending Approval"),
    "approved": (1, "91 - Ready"),
    "in_progress": (2, "93 - In Progress"),
    "on_hold": (2, "93 - In Progress"),
    "done": (5, "96 - Done"),
    "cancelled": (1, "90 - Pending Approval"),
}
HEALTH = {"green": "Green", "amber": "Yellow", "red": "Red"}
TSHIRT = [4, 8, 14, 20]

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*)|(?P<paren>[()]))"
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


class FilterError(ValueError):
    """A ``$filter`` the site's parser does not accept."""


def _ts(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> str:
    return _ts(datetime.now(UTC)) or ""


def _is_date(text: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}", text))


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(right, str) and isinstance(left, str) and _is_date(right) and _is_date(left):
        left, right = left[:10], right[:10]  # dates compare by the date only
    return compare(op, left, right)


def parse_filter(text: str, fields: set[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for ``field op value [and|or field op value ...]``; ``and`` binds first.

    Raises :class:`FilterError` for anything else: unknown fields, functions, parentheses.
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise FilterError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    if not tokens:
        raise FilterError("The $filter query option is empty.")
    groups: list[list[tuple[str, str, Any]]] = [[]]
    i = 0
    while i < len(tokens):
        if tokens[i][0] == "paren":
            raise FilterError(f"Syntax error: grouping is not supported in '{text}'.")
        if i + 2 >= len(tokens):
            raise FilterError(f"Syntax error at the end of '{text}'.")
        (k1, field), (k2, op), (k3, literal) = tokens[i : i + 3]
        if k1 != "word" or k2 != "word" or op.lower() not in _OPS:
            raise FilterError(f"Syntax error near '{field} {op}' in '{text}'.")
        if field not in fields:
            raise FilterError(f"Could not find a property named '{field}' on type 'Align.Api.Dto'.")
        value: Any
        if k3 == "str":
            value = literal[1:-1].replace("''", "'")
        elif k3 == "num":
            value = float(literal) if "." in literal else int(literal)
        elif k3 == "word" and literal.lower() in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[literal.lower()]
        else:
            raise FilterError(f"Syntax error near '{literal}' in '{text}'.")
        groups[-1].append((field, op.lower(), value))
        i += 3
        if i < len(tokens):
            joiner = tokens[i][1].lower() if tokens[i][0] == "word" else ""
            if joiner == "or":
                groups.append([])
            elif joiner != "and":
                raise FilterError(f"Syntax error near '{tokens[i][1]}' in '{text}'.")
            i += 1
            if i >= len(tokens):
                raise FilterError(f"Syntax error at the end of '{text}'.")

    def matches(row: dict[str, Any]) -> bool:
        return any(all(_compare(op, row.get(f), v) for f, op, v in group) for group in groups)

    return matches


class JiraAlignEmulator(Emulator):
    """A WSGI application answering as a Jira Align site's REST API 2.0 does.

    Args:
        world: the seeded city.
        faults: switchable faults (throttling, 5xx, malformed bodies, rows changing mid-read).
        users: user name -> API token; a token authenticates as ``bearer``, and Basic
            ``user:token`` works too (Atlassian Guard sites).
        unfilterable: resources whose ``$filter`` the site refuses (older sites, some resources).
        fields: resource -> the fields its DTO has (``$select``-able), over :data:`FIELDS`
            (an older site lacks some).
    """

    content_type = "application/json; charset=utf-8"

    def __init__(
        self,
        world: World,
        faults: Faults | None = None,
        *,
        users: dict[str, str] | None = None,
        unfilterable: Iterable[str] = (),
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.users = dict(users) if users is not None else {"admin": "admin-api-token"}
        self.unfilterable = {r.lower() for r in unfilterable}
        self.fields = {name: list(names) for name, names in {**FIELDS, **(fields or {})}.items()}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.host = "localhost"
        self.data: dict[str, list[dict[str, Any]]] = {name: [] for name in RESOURCES}
        self.ids: dict[str, dict[str, int]] = {}
        self._render()

    # -- rendering the world -------------------------------------------------------------------

    def _link(self, resource: str, native_id: int) -> str:
        # The site names itself in `self` links; the host is the one the request came to.
        return f"https://{{host}}{API}/{RESOURCES[resource]}/{native_id}"

    def _add(self, resource: str, row: dict[str, Any]) -> dict[str, Any]:
        row["self"] = self._link(resource, row["id"])
        self.data[resource].append(row)
        return row

    def _render(self) -> None:
        w = self.world
        agile = [x for x in w.work if x.platform == "jira_align"]
        people = {p.id: p for p in w.people}
        user_ids: dict[str, int] = {}
        for i, person in enumerate(w.people):
            uid = person.upn.split("@")[0]
            user_ids[person.id] = 1100 + i
            self._add(
                "users",
                {
                    "id": 1100 + i,
                    "uid": uid,
                    "firstName": person.first_name,
                    "lastName": person.last_name,
                    "fullName": person.name,
                    "email": person.upn,
                    "title": person.title,
                    "status": "Active" if person.active else "Inactive",
                    "isLocked": 0,
                    "managerId": None,
                    "createDate": _ts(person.created),
                    "lastUpdatedDate": _ts(person.updated),
                    "lastLoginDate": None,
                },
            )

        def owner(person_id: str | None, index: int) -> str | None:
            # Recorded sites mix user ids ("1197") and user names ("Scott.Desiree") in ownerId.
            if person_id is None or person_id not in people:
                return None
            if index % 3 == 1:
                return people[person_id].upn.split("@")[0]
            return str(user_ids[person_id])

        def edited(item: Work, index: int) -> str | None:
            # Items imported and never touched since carry no lastUpdatedDate.
            if item.state in ("proposed", "approved") and index % 2 == 0:
                return None
            return _ts(item.updated)

        portfolio_ids: dict[str, int] = {}
        program_ids: dict[str, int] = {}
        epic_ids: dict[str, int] = {}
        for item in (x for x in agile if x.kind == "portfolio"):
            native = 4 + len(portfolio_ids)
            portfolio_ids[item.id] = native
            self._add(
                "portfolios",
                {
                    "id": native,
                    "title": item.name,
                    "description": f"{item.name} ({item.department.upper()})",
                    "isActive": item.state not in ("done", "cancelled"),
                    "isPrivate": False,
                    "divisionId": None,
                    "teamId": 150 + native,
                    "teamDescription": None,
                    "scoreCardId": 1,
                    "intakeFormId": 0,
                    "regionId": None,
                    "caseDevelopmentId": None,
                    "lastUpdatedDate": None if native % 2 == 0 else _ts(item.updated),
                },
            )
        for item in (x for x in agile if x.kind == "program"):
            native = 11 + len(program_ids)
            program_ids[item.id] = native
            self._add(
                "programs",
                {
                    "id": native,
                    "title": item.name,
                    "portfolioId": portfolio_ids.get(item.parent_id or ""),
                    "solutionId": None,
                    "isSolution": None,
                    "teamId": 156 + native,
                    "teamDescription": None,
                    "scoreCardId": 0,
                    "intakeFormId": 0,
                    "regionId": None,
                    "caseDevelopmentId": None,
                    "lastUpdatedDate": _ts(item.updated),
                },
            )
            self._add(
                "teams",
                {
                    "id": 156 + native,
                    "name": f"{item.name} team",
                    "shortName": item.number,
                    "description": None,
                    "type": 1,
                    "isActive": 1,
                    "isKanbanTeam": 0,
                    "programId": native,
                    "programIds": [native],
                    "ownerId": owner(item.manager_id, 0),
                    "createDate": _ts(item.created),
                    "lastUpdatedDate": None,
                },
            )
        epics = [x for x in agile if x.kind == "epic"]
        goals = sorted({g for e in epics for g in e.goals})
        theme_ids = {goal: 2 + i for i, goal in enumerate(goals)}
        for goal, native in theme_ids.items():
            self._add(
                "themes",
                {
                    "id": native,
                    "title": goal,
                    "description": f"Strategic theme: {goal}",
                    "state": 1,
                    "isActive": 1,
                    "isMajor": 1,
                    "strategic": 1,
                    "goalId": None,
                    "plannedBudget": 5_000_000 if native % 2 else None,
                    "programIds": sorted(program_ids.values()),
                    "releaseIds": [],
                    "reportColor": "#6EBDAB",
                    "startInitiationDate": None,
                    "targetCompletionDate": None,
                    "portfolioAskDate": None,
                    "createDate": _ts(w.now - timedelta(days=700 - native)),
                    "createdBy": "1100",
                    "lastUpdatedDate": None if native % 2 == 0 else _ts(w.now - timedelta(days=90)),
                    "externalId": None,
                    "externalKey": None,
                    "customFields": [],
                    "links": [],
                },
            )
        # Program increments: quarters around the world's "now", for every program.
        quarter = datetime(w.now.year, ((w.now.month - 1) // 3) * 3 + 1, 1, tzinfo=UTC)
        releases: list[dict[str, Any]] = []
        for i in range(-2, 2):
            month = quarter.month + 3 * i
            year = quarter.year + (month - 1) // 12
            start = datetime(year, (month - 1) % 12 + 1, 1, tzinfo=UTC)
            end = (start + timedelta(days=95)).replace(day=1) - timedelta(days=1)
            native = 49 + i
            releases.append(
                self._add(
                    "releases",
                    {
                        "id": native,
                        "title": f"PI {start.year}.{(start.month - 1) // 3 + 1}",
                        "shortName": f"PI{start.year % 100}{(start.month - 1) // 3 + 1}",
                        "releaseNumber": f"{start.year}.{(start.month - 1) // 3 + 1}",
                        "description": None,
                        "status": 1 if end < w.now else 2,
                        "type": 1,
                        "scheduleType": 1,
                        "startDate": _ts(start),
                        "endDate": _ts(end.replace(hour=23, minute=59)),
                        "health": None,
                        "budget": None,
                        "blendedHourlyRate": 95,
                        "portfolioId": next(iter(portfolio_ids.values()), None),
                        "programIds": sorted(program_ids.values()),
                        "regionIds": [],
                        "createDate": _ts(start - timedelta(days=60)),
                        "lastUpdatedDate": _ts(start - timedelta(days=30)),
                        "lastUpdatedBy": "1100",
                    },
                )
            )
        for index, item in enumerate(epics):
            native = 1200 + index
            epic_ids[item.id] = native
            state, step = EPIC_STATE[item.state]
            release_ids = [r["id"] for r in releases[index % 2 : index % 2 + 2]]
            self._add(
                "epics",
                {
                    "id": native,
                    "title": item.name,
                    "createDate": _ts(item.created),
                    "ownerId": owner(item.manager_id, index),
                    "themeId": theme_ids[item.goals[0]] if item.goals else None,
                    "strategicDriver": 1 + index % 4,
                    "description": f"{item.name} ({item.number})",
                    "primaryProgramId": program_ids.get(item.parent_id or ""),
                    "tags": None,
                    "state": state,
                    "processStepId": int(step.split(" ")[0]),
                    "processStepName": step,
                    "acceptedDate": _ts(item.actual_finish),
                    "acceptedUserId": "1100" if item.actual_finish else None,
                    "strategicValueScore": None if index % 3 == 0 else 20 * (index % 5),
                    "type": 1,
                    "fcastShare": None,
                    "reportColor": "#6EBDAB",
                    "mvp": None,
                    "investmentType": None,
                    "notStartedBy": None,
                    "notStartedDate": _ts(item.created),
                    "notStartedDateEnd": None,
                    "inProgressBy": None,
                    "inProgressDate": _ts(item.actual_start),
                    "inProgressDateEnd": None,
                    "isRecycled": None,
                    "lastUpdatedDate": edited(item, index),
                    "lastUpdatedBy": "1100",
                    "createdBy": "1100",
                    "targetCompletionDate": _ts(item.planned_finish),
                    "startInitiationDate": _ts(item.planned_start),
                    "portfolioAskDate": None,
                    "externalOpEx": None,
                    "externalCapEx": None,
                    "totalCapEx": 0,
                    "totalOpEx": 0,
                    "budget": int(item.budget) if index % 4 else None,
                    "discountRate": 10.0,
                    "customerIds": [],
                    "epicObjectId": 2,
                    "capitalized": 1,
                    "effortSwag": 25 if index % 2 else None,
                    "hypothesis": None,
                    "workCodeId": None,
                    "score": {
                        "cost": "Medium",
                        "profitPotential": "High",
                        "timeToMarket": "Medium",
                        "developmentRisks": "Medium",
                        "score": round(item.priority * 14.9, 1),
                        "scoreCardId": 1,
                        "values": [],
                    },
                    "releaseIds": release_ids,
                    "additionalProgramIds": [],
                    "additionalProcessStepIds": [],
                    "points": [
                        {"releaseId": r, "estimationSystem": "T-Shirt", "estimationValue": "Medium"}
                        for r in release_ids
                    ],
                    "externalKey": None,
                    "externalId": item.number if index % 2 else None,
                    "externalProject": None,
                    "connectorId": None,
                    "spendToDate": item.actual_cost if index % 4 else None,
                    "estimateAtCompletion": item.forecast_cost if index % 4 else None,
                    "isSplit": None,
                    "parentSplitId": None,
                    "isCanceled": True if item.state == "cancelled" else None,
                    "dependencyIds": [],
                    "featureIds": [],
                    "health": HEALTH[item.health] if index % 5 else None,
                    "status": None,
                    "customFields": [
                        {"customfield_70001": item.department},
                        {"customfield_70002": None},
                    ],
                    "links": [],
                },
            )
        by_epic = {e["id"]: e for e in self.data["epics"]}
        for index, item in enumerate(x for x in agile if x.kind == "feature"):
            native = 5400 + index
            parent = epic_ids.get(item.parent_id or "")
            state, step = FEATURE_STATE[item.state]
            epic = by_epic.get(parent) if parent else None
            if epic is not None:
                epic["featureIds"].append(native)
            release = releases[index % len(releases)]["id"]
            self._add(
                "features",
                {
                    "id": native,
                    "title": item.name,
                    "description": f"{item.name} ({item.number})",
                    "releaseId": release,
                    "ownerId": owner(item.manager_id, index),
                    "state": state,
                    "createDate": _ts(item.created),
                    "type": 1,
                    "mmf": 0,
                    "isBlocked": 1 if item.state == "on_hold" else 0,
                    "priority": None,
                    "primaryProgramId": epic["primaryProgramId"] if epic else None,
                    "productId": 21,
                    "isMultiProgram": None,
                    "themeId": None,
                    "parentId": parent,
                    "reportColor": "#9faebf",
                    "startSprintId": None,
                    "endSprintId": None,
                    "targetCompletionDate": _ts(item.planned_finish),
                    "startInitiationDate": _ts(item.planned_start),
                    "portfolioAskDate": None,
                    "category": None,
                    "capitalized": None,
                    "requesterId": None,
                    "blockedReason": "Waiting on vendor" if item.state == "on_hold" else None,
                    "score": None,
                    "acceptedDate": _ts(item.actual_finish),
                    "acceptedUserId": None,
                    "pendingApprovalBy": "1100",
                    "pendingApprovalDate": _ts(item.created),
                    "readyToStartBy": None,
                    "readyToStartDate": _ts(item.created + timedelta(days=3))
                    if item.state != "proposed" and item.state != "cancelled"
                    else None,
                    "inProgressBy": None,
                    "inProgressDate": _ts(item.actual_start),
                    "devCompleteBy": None,
                    "devCompleteDate": None,
                    "testCompleteBy": None,
                    "testCompleteDate": None,
                    "isRecycled": None,
                    "createdBy": "1100",
                    "lastUpdatedDate": edited(item, index),
                    "lastUpdatedBy": "1100",
                    "points": 8 * (1 + index % 3) if index % 2 else None,
                    "tags": None,
                    "processStepId": int(step.split(" ")[0]),
                    "processStepName": step,
                    "additionalProcessStepIds": [],
                    "manWeeks": float(4 + index % 6) if index % 2 else None,
                    "externalKey": None,
                    "estimateTshirt": TSHIRT[index % 4] if index % 2 else None,
                    "parentSplitId": None,
                    "externalId": None,
                    "jiraProjectKey": "CITY" if index % 2 else None,
                    "featureSummary": None,
                    "externalProject": None,
                    "connectorId": None,
                    "budget": None,
                    "isCanceled": True if item.state == "cancelled" else None,
                    "spendToDate": None,
                    "estimateAtCompletion": None,
                    "isSplit": None,
                    "itemToSyncDate": _ts(item.created),
                    "releaseVehicleIds": [],
                    "additionalProgramIds": [],
                    "productObjectiveIds": [],
                    "affectedCountryIds": [],
                    "testCategoryIds": [],
                    "customFields": [],
                    "links": [],
                },
            )

    # -- changes (tests and faults) -------------------------------------------------------------

    def find(self, resource: str, native_id: int) -> dict[str, Any] | None:
        for row in self.data[resource.lower()]:
            if row["id"] == native_id:
                return row
        return None

    def touch(self, resource: str, native_id: int, **changes: Any) -> dict[str, Any]:
        """Edit an item as a user would: fields set, ``lastUpdatedDate`` now."""
        with self.lock:
            row = self.find(resource, native_id)
            if row is None:
                raise KeyError(f"{resource} {native_id}")
            row.update(changes)
            if not (self.faults.same_second_edits and row.get("lastUpdatedDate")):
                row["lastUpdatedDate"] = _now()
            return row

    def file_unedited(self, resource: str, **fields: Any) -> dict[str, Any]:
        """An item filed (by an import, an integration, a user) and never edited since:
        ``createDate`` now and ``lastUpdatedDate`` null, as the site leaves it."""
        with self.lock:
            resource = resource.lower()
            native = max((r["id"] for r in self.data[resource]), default=0) + 1
            template = dict(self.data[resource][-1]) if self.data[resource] else {}
            row: dict[str, Any] = {f: template.get(f) for f in self.fields[resource]}
            row.update(fields)
            row.update(id=native, createDate=_now(), lastUpdatedDate=None)
            return self._add(resource, row)

    def delete(self, resource: str, native_id: int) -> None:
        """Remove an item for good (purged from the recycle bin)."""
        with self.lock:
            rows = self.data[resource.lower()]
            rows[:] = [r for r in rows if r["id"] != native_id]

    def has(self, native_id: str) -> bool:
        with self.lock:
            return any(str(r["id"]) == native_id for rows in self.data.values() for r in rows)

    def forget(self, native_id: str) -> bool:
        with self.lock:
            for resource, rows in self.data.items():
                if any(str(r["id"]) == native_id for r in rows):
                    self.delete(resource, int(native_id))
                    return True
        return False

    def regenerate_tokens(self) -> None:
        """Every user regenerates their API token: the old ones stop working."""
        with self.lock:
            self.users = {user: secrets.token_urlsafe(18) for user in self.users}

    # -- HTTP ----------------------------------------------------------------------------------

    def logged_query(self, query: str) -> str:
        return unquote(query)

    def _problem(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        instance: str = "",
        errors: dict[str, list[str]] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        kinds = {
            400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
            401: "https://tools.ietf.org/html/rfc7235#section-3.1",
            403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
            404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
            429: "https://tools.ietf.org/html/rfc6585#section-4",
            503: "https://tools.ietf.org/html/rfc7231#section-6.6.4",
        }
        payload: dict[str, Any] = {
            "type": kinds.get(status, "about:blank"),
            "title": title,
            "status": status,
        }
        if detail is not None:
            payload["detail"] = detail
        if instance:
            payload["instance"] = instance
        if errors is not None:
            payload["errors"] = errors
        payload["traceId"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
        line, headers, body = self.json(status, payload, extra)
        return line, [("Content-Type", PROBLEM), *headers[1:]], body

    def throttled(self, wait: int) -> Response:
        return self._problem(
            429,
            "Too Many Requests",
            "API rate limit exceeded. Try again later.",
            extra=[("Retry-After", str(wait))],
        )

    def unavailable(self) -> Response:
        return self._problem(503, "Service Unavailable", "The service is temporarily unavailable.")

    def _authenticated(self, environ: dict[str, Any]) -> bool:
        given = self.credentials(environ)
        with self.lock:
            if given.scheme == "bearer":
                return given.secret in set(self.users.values())
            return given.scheme == "basic" and self.users.get(given.user) == given.secret

    def dispatch(
        self, environ: dict[str, Any], method: str, path: str, query: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        self.host = environ.get("HTTP_HOST", self.host)
        match = re.fullmatch(rf"{API}/([A-Za-z]+)(?:/(\d+))?/?", path, re.IGNORECASE)
        listing = method == "GET" and bool(match) and match.group(2) is None  # type: ignore[union-attr]
        fault, answer = self.fault(listing=listing)
        if answer:
            return answer
        if not self._authenticated(environ):
            return self._problem(401, "Unauthorized", extra=[("WWW-Authenticate", "Bearer")])
        if match is None or match.group(1).lower() not in RESOURCES:
            return self._problem(404, "Not Found", instance=path)
        resource = match.group(1).lower()
        native_id = int(match.group(2)) if match.group(2) else None
        params = self.params(query)
        if method == "GET" and native_id is None:
            return self._list(resource, params, path, corrupt=fault == "malformed")
        if method == "GET":
            row = self.find(resource, native_id)  # type: ignore[arg-type]
            if row is None:
                return self._problem(
                    404, "Not Found", f"No {resource[:-1]} with id {native_id}.", instance=path
                )
            return self.json("200 OK", self._select(row, params, resource))
        if method == "POST" and native_id is None and resource in ("epics", "features"):
            return self._create(environ, resource, path)
        return self._problem(405, "Method Not Allowed", instance=path)

    def _select(self, row: dict[str, Any], params: dict[str, str], resource: str) -> dict[str, Any]:
        chosen = params.get("$select")
        if not chosen:
            return row
        return {f: row.get(f) for f in (s.strip() for s in chosen.split(",")) if f}

    def _list(
        self, resource: str, params: dict[str, str], path: str, *, corrupt: bool
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        fields = set(self.fields[resource])
        try:
            top = int(params.get("$top", "100"))
            skip = int(params.get("$skip", "0"))
        except ValueError:
            return self._problem(
                400, "Bad Request", "$top and $skip take whole numbers.", instance=path
            )
        if top > 100:
            return self._problem(
                400,
                "Bad Request",
                f"The limit of '100' for Top query has been exceeded. The value from the incoming request is '{top}'.",
                instance=path,
            )
        if top < 0 or skip < 0:
            return self._problem(
                400, "Bad Request", "$top and $skip may not be negative.", instance=path
            )
        chosen = params.get("$select")
        if chosen:
            unknown = [f for f in (s.strip() for s in chosen.split(",")) if f and f not in fields]
            if unknown:
                return self._problem(
                    400,
                    "Bad Request",
                    f"Could not find a property named '{unknown[0]}' on type 'Align.Api.Dto'.",
                    instance=path,
                )
        rows = self.data[resource]
        if "$filter" in params:
            if resource in self.unfilterable:
                return self._problem(
                    400,
                    "Bad Request",
                    f"The query specified in the URI is not valid. Filtering is not supported on {resource}.",
                    instance=path,
                )
            try:
                predicate = parse_filter(params["$filter"], fields)
            except FilterError as exc:
                return self._problem(
                    400,
                    "Bad Request",
                    f"The query specified in the URI is not valid. {exc}",
                    instance=path,
                )
            with self.lock:
                rows = [r for r in rows if predicate(r)]
        with self.lock:
            rows = sorted(rows, key=lambda r: r["id"])
            page = [self._select(r, params, resource) for r in rows[skip : skip + top]]
            reached = {r["id"] for r in rows[: skip + top]}
            ahead = (r for r in self.data[resource] if r["id"] not in reached)
            self.page_served(ahead, lambda row: row.update(lastUpdatedDate=_now()))
        answer = self.json("200 OK", page)
        return self.cut(answer) if corrupt else answer

    def _create(
        self, environ: dict[str, Any], resource: str, path: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            body = self.json_body(environ)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._problem(
                400,
                "One or more validation errors occurred.",
                errors={"$": ["The JSON value could not be converted to a DTO."]},
                instance=path,
            )
        errors: dict[str, list[str]] = {}
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            errors["Title"] = ["The Title field is required."]
        elif len(title) > 255:
            errors["Title"] = ["The field Title must be a string with a maximum length of 255."]
        program = body.get("primaryProgramId")
        if program is None:
            errors["PrimaryProgramId"] = ["The PrimaryProgramId field is required."]
        elif not isinstance(program, int) or self.find("programs", program) is None:
            errors["PrimaryProgramId"] = [f"Program with id {program} does not exist."]
        if resource == "features":
            parent = body.get("parentId")
            if parent is not None and (
                not isinstance(parent, int) or self.find("epics", parent) is None
            ):
                errors["ParentId"] = [f"Epic with id {parent} does not exist."]
        theme = body.get("themeId")
        if theme is not None and (not isinstance(theme, int) or self.find("themes", theme) is None):
            errors["ThemeId"] = [f"Theme with id {theme} does not exist."]
        if body.get("state") not in (None, 1, 2, 3, 4, 5):
            errors["State"] = [f"The value '{body.get('state')}' is not valid for State."]
        if errors:
            return self._problem(
                400, "One or more validation errors occurred.", errors=errors, instance=path
            )
        with self.lock:
            native = max((r["id"] for r in self.data[resource]), default=0) + 1
            created = _now()
            row: dict[str, Any] = {f: None for f in self.fields[resource]}
            row.update({k: v for k, v in body.items() if k in self.fields[resource] and k != "id"})
            row.update(
                id=native,
                state=body.get("state") or 1,
                type=body.get("type") or 1,
                createDate=created,
                # The site stamps an update as it files the new item.
                lastUpdatedDate=created,
                createdBy="1100",
                lastUpdatedBy="1100",
                customFields=body.get("customFields") or [],
                links=[],
                additionalProgramIds=[],
                additionalProcessStepIds=[],
            )
            for key in ("releaseIds", "featureIds", "dependencyIds", "points", "customerIds"):
                if key in row and row[key] is None:
                    row[key] = []
            self._add(resource, row)
        location = f"https://{self.host}{API}/{resource}/{native}"
        return self.json("201 Created", row, [("Location", location)])


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> JiraAlignEmulator:
    """The emulator serving ``world`` (see :class:`JiraAlignEmulator` for the options)."""
    return JiraAlignEmulator(world, faults, **kwargs)


def sandbox_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.NAME]`` keys pointing itcrosswalk at the emulator: its API token."""
    return {"auth": {"type": "bearer", "token": secret_ref}, "full_sweep_every_days": 7}
