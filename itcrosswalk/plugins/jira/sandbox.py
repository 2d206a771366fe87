"""A Jira Cloud site with Jira Service Management on loopback, as the real one answers.

Written from ``shared/platforms/jira.md`` and the recorded payloads in ``shared/fixtures/jira``
(never from the adapter). It serves the sandbox city's service desk for the departments that
run JSM (the world's tickets held by ``jira``) in project ``CSD``, and the Jira Software epics
and initiatives (the world's work held by ``jira``) in project ``JSW``, with the traps:

- ``/rest/api/{2,3}/serverInfo`` says ``deploymentType: Cloud``, which is what the ``jira``
  package reads on connect to choose its Cloud paths; ``/field`` is what it reads on its first
  search (its field-name cache);
- the old ``/rest/api/{2,3}/search`` answers 410 with the CHANGE-2046 body;
- ``/rest/api/{2,3}/search/jql`` (GET and POST): bounded JQL only, ``startAt`` ignored, ids only
  unless ``fields`` names some, pages capped below ``maxResults`` when fields are asked for, an
  opaque ``nextPageToken`` bound to the query (keyset: a record that changes mid-read moves to
  the end, it is not skipped), no ``total``, and on the last page ``isLast`` with the token
  absent (or ``null``, switchable); ``reconcileIssues`` for issues written in the last moments,
  which search otherwise misses for ``search_lag`` seconds;
- a JQL datetime literal (``"2026/10/30 13:05"``) is read at minute precision in the searching
  account's profile time zone, an epoch-milliseconds literal as it is; timestamps are written
  with the account's offset and milliseconds, never ``Z``;
- SLA fields in the recorded shapes (``ongoingCycle`` absent when no cycle runs, the field
  ``null`` where the SLA does not apply), visible to service desk agents only;
- the changelog through ``/issue/{id}/changelog`` (``startAt`` paging) and
  ``/changelog/bulkfetch`` (token paging); the search's ``expand=changelog`` keeps 40 histories;
- 401, 400 and 410 in the ``{errorMessages, errors}`` envelope; 429 with ``Retry-After`` and
  ``X-RateLimit-Reset``, and a longer penalty for a client that comes back early;
- writes: issues created with labels and properties, transitions with a resolution, comments.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from ...sandbox.emulator import Emulator, Response
from ...sandbox.faults import Faults
from ...sandbox.world import Sla, Ticket, Work, World

API = r"/rest/api/(?:2|3|latest)"

REMOVED_SEARCH = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)
NOT_AUTHENTICATED = "Client must be authenticated to access this resource."

CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
# status id -> (name, category): JSM's ITSM workflow and Jira Software's simple one
STATUSES: dict[str, tuple[str, str]] = {
    "10000": ("Open", "new"),
    "10001": ("Work in progress", "indeterminate"),
    "10002": ("Waiting for customer", "indeterminate"),
    "10003": ("Resolved", "done"),
    "10004": ("Closed", "done"),
    "10005": ("Canceled", "done"),
    "10010": ("To Do", "new"),
    "10011": ("In Progress", "indeterminate"),
    "10012": ("Done", "done"),
}
TICKET_STATUS = {
    "new": "10000",
    "in_progress": "10001",
    "on_hold": "10002",
    "resolved": "10003",
    "closed": "10004",
    "cancelled": "10005",
}
WORK_STATUS = {
    "proposed": "10010",
    "approved": "10010",
    "in_progress": "10011",
    "on_hold": "10011",
    "done": "10012",
    "cancelled": "10012",
}
RESOLUTIONS = {"10000": "Done", "10001": "Won't Do"}
PRIORITIES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}
# issue type id -> (name, hierarchy level, project it lives in)
ISSUE_TYPES: dict[str, tuple[str, int, str]] = {
    "10100": ("[System] Incident", 0, "CSD"),
    "10101": ("[System] Service request", 0, "CSD"),
    "10102": ("[System] Problem", 0, "CSD"),
    "10103": ("[System] Change", 0, "CSD"),
    "10200": ("Epic", 1, "JSW"),
    "10201": ("Initiative", 2, "JSW"),
    "10202": ("Task", 0, "JSW"),
}
KIND_TYPE = {"incident": "10100", "request": "10101", "problem": "10102", "change": "10103"}
# request type id -> (name, issue type id)
REQUEST_TYPES: dict[str, tuple[str, str]] = {
    "1": ("Report a system problem", "10100"),
    "2": ("Get IT help", "10101"),
    "3": ("Investigate a problem", "10102"),
    "4": ("Request a change", "10103"),
}
KIND_REQUEST_TYPE = {"incident": "1", "request": "2", "problem": "3", "change": "4"}
PROJECTS = {
    "CSD": {"id": "10000", "name": "City Service Desk", "projectTypeKey": "service_desk"},
    "JSW": {"id": "10001", "name": "City Digital Services", "projectTypeKey": "software"},
}
SERVICE_DESK = {"id": "1", "projectId": "10000", "projectKey": "CSD"}

F_REQUEST_TYPE = "customfield_10010"
F_ORGANIZATIONS = "customfield_10002"
F_RESOLUTION_SLA = "customfield_10020"
F_RESPONSE_SLA = "customfield_10021"
F_GROUP = "customfield_10050"
F_START = "customfield_10015"
F_DEPARTMENT = "customfield_10060"
F_FIRST_RESPONSE = "customfield_10070"

FIELDS: list[dict[str, Any]] = [
    {"id": "summary", "name": "Summary", "schema": {"type": "string", "system": "summary"}},
    {"id": "issuetype", "name": "Issue Type", "schema": {"type": "issuetype", "system": "issuetype"}},
    {"id": "project", "name": "Project", "schema": {"type": "project", "system": "project"}},
    {"id": "status", "name": "Status", "schema": {"type": "status", "system": "status"}},
    {"id": "priority", "name": "Priority", "schema": {"type": "priority", "system": "priority"}},
    {"id": "resolution", "name": "Resolution", "schema": {"type": "resolution", "system": "resolution"}},
    {"id": "resolutiondate", "name": "Resolved", "schema": {"type": "datetime", "system": "resolutiondate"}},
    {"id": "created", "name": "Created", "schema": {"type": "datetime", "system": "created"}},
    {"id": "updated", "name": "Updated", "schema": {"type": "datetime", "system": "updated"}},
    {"id": "statuscategorychangedate", "name": "Status Category Changed", "schema": {"type": "datetime", "system": "statuscategorychangedate"}},
    {"id": "assignee", "name": "Assignee", "schema": {"type": "user", "system": "assignee"}},
    {"id": "reporter", "name": "Reporter", "schema": {"type": "user", "system": "reporter"}},
    {"id": "components", "name": "Components", "schema": {"type": "array", "items": "component", "system": "components"}},
    {"id": "labels", "name": "Labels", "schema": {"type": "array", "items": "string", "system": "labels"}},
    {"id": "description", "name": "Description", "schema": {"type": "string", "system": "description"}},
    {"id": "duedate", "name": "Due date", "schema": {"type": "date", "system": "duedate"}},
    {"id": "parent", "name": "Parent", "schema": {"type": "issuelink", "system": "parent"}},
    {"id": F_REQUEST_TYPE, "name": "Request Type", "schema": {"type": "sd-customerrequesttype", "custom": "com.atlassian.servicedesk:vp-origin", "customId": 10010}},
    {"id": F_ORGANIZATIONS, "name": "Organizations", "schema": {"type": "array", "items": "sd-customerorganization", "custom": "com.atlassian.servicedesk:sd-customer-organizations", "customId": 10002}},
    {"id": F_RESOLUTION_SLA, "name": "Time to resolution", "schema": {"type": "sd-servicelevelagreement", "custom": "com.atlassian.servicedesk:sd-sla-field", "customId": 10020}},
    {"id": F_RESPONSE_SLA, "name": "Time to first response", "schema": {"type": "sd-servicelevelagreement", "custom": "com.atlassian.servicedesk:sd-sla-field", "customId": 10021}},
    {"id": F_GROUP, "name": "Assignment group", "schema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10050}},
    {"id": F_START, "name": "Start date", "schema": {"type": "date", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker", "customId": 10015}},
    {"id": F_DEPARTMENT, "name": "Department", "schema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10060}},
    {"id": F_FIRST_RESPONSE, "name": "[CHART] Date of First Response", "schema": {"type": "datetime", "custom": "com.atlassian.jira.ext.charting:firstresponsedate", "customId": 10070}},
]  # fmt: skip
for _f in FIELDS:
    _f.setdefault("custom", _f["id"].startswith("customfield_"))
    _f.setdefault("navigable", True)
    _f.setdefault("searchable", True)
    _f.setdefault(
        "clauseNames",
        [_f["id"]] if not _f["custom"] else [_f["id"], f"cf[{_f['id'].split('_')[1]}]", _f["name"]],
    )
FIELD_IDS = {f["id"] for f in FIELDS}
SLA_FIELDS = (F_RESOLUTION_SLA, F_RESPONSE_SLA)
# Hours to first response by priority (the desk's goal; the world keeps resolution SLAs).
RESPONSE_GOAL_HOURS = {1: 1, 2: 2, 3: 4, 4: 8, 5: 8}
# JQL field -> how the emulator reads it off an issue
JQL_FIELDS = {
    "project", "issuetype", "type", "updated", "created", "key", "issuekey", "id", "labels",
    "status", "statuscategory", "resolution", "assignee", "reporter", "priority",
}  # fmt: skip
ORDERABLE = {"updated", "created", "id", "key", "issuekey"}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _pseudo_ms(seed: str) -> int:
    # Jira keeps milliseconds; the world keeps seconds: a stable fraction per record.
    return int(hashlib.sha1(seed.encode()).hexdigest()[:4], 16) % 1000


@dataclass
class Account:
    """An account the site knows: who it is, its profile time zone and what it may see."""

    account_id: str
    email: str
    name: str
    time_zone: str = "America/Los_Angeles"
    active: bool = True
    secret: str | None = None
    agent: bool = True
    browse: bool = True
    person: bool = False
    """A person of the city (listed by the user search), not an integration account."""


@dataclass
class Issue:
    id: int
    key: str
    project: str
    type_id: str
    summary: str
    status: str
    priority: str | None
    resolution: str | None
    created: datetime
    updated: datetime
    resolved: datetime | None
    assignee: str | None
    reporter: str | None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    parent: int | None = None
    due: str | None = None
    description: str = ""
    histories: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    written_at: float = 0.0
    """When an API write last touched it (monotonic), for search's eventual consistency."""
    sla: dict[str, Any] = field(default_factory=dict)
    """SLA field id -> the world's view of it (see ``_sla_value``)."""


class JiraSite(Emulator):
    """The Jira Cloud emulator.

    Args:
        world: the city to serve.
        faults: the switches tests flip (429s, 503s, truncated bodies, changes between pages).
        users: name -> secret (the API token, or a personal access token for bearer auth).
        agents: the users who are service desk agents (all by default): the others do not see
            SLA fields, and the JSM request endpoints answer them 403.
        browsers: the users with Browse projects (all by default): the others see no project.
        time_zones: user -> IANA profile time zone (default America/Los_Angeles).
        page_cap: most issues a search page holds when fields are asked for.
        last_token: on the last page the token is ``absent`` (the fixed behaviour) or ``null``.
        search_lag: seconds an API write stays invisible to search unless reconciled.
        changelog_padding: extra field edits per ticket, to make changelogs longer than 40.
        fail_search: the ordinal of a search request (1 for the first) that answers 503 once,
            for a read that dies between two pages.
        deployment: ``Cloud``, or ``Server`` for a Data Center site: REST API 2 only, the
            classic ``/search`` with ``startAt`` and ``total``, no ``/search/jql``, no bulk
            changelog, personal access tokens as bearer.
    """

    def __init__(
        self,
        world: World,
        faults: Faults | None = None,
        *,
        users: dict[str, str],
        agents: Iterable[str] | None = None,
        browsers: Iterable[str] | None = None,
        time_zones: dict[str, str] | None = None,
        page_cap: int = 100,
        last_token: str = "absent",
        search_lag: float = 0.0,
        changelog_padding: int = 0,
        fail_search: int | None = None,
        deployment: str = "Cloud",
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str, str, Any]] = []
        self.lock = threading.RLock()
        self.page_cap = page_cap
        self.last_token = last_token
        self.search_lag = search_lag
        self.fail_search = fail_search
        self.deployment = deployment
        self.searches = 0
        self.version = 0
        """Bumped by every change, so a cached query order is never stale."""
        self._matches: dict[Any, tuple[int, list[Issue], list[tuple[float, ...]]]] = {}
        self.host = "127.0.0.1"
        self.penalty_until = 0.0
        self.accounts: dict[str, Account] = {}
        self.by_id: dict[str, Account] = {}
        agents_set = set(agents) if agents is not None else None
        browse_set = set(browsers) if browsers is not None else None
        zones = time_zones or {}
        for person in world.people:
            self._add_account(
                Account(
                    account_id=_account_id(person.id),
                    email=person.upn,
                    name=person.name,
                    active=person.active,
                    person=True,
                )
            )
        for name, secret in users.items():
            self._add_account(
                Account(
                    account_id=_account_id(hashlib.md5(name.encode()).hexdigest()),
                    email=name,
                    name=f"itcrosswalk ({name})",
                    time_zone=zones.get(name, "America/Los_Angeles"),
                    secret=secret,
                    agent=agents_set is None or name in agents_set,
                    browse=browse_set is None or name in browse_set,
                ),
                login=name,
            )
        self.issues: dict[int, Issue] = {}
        self.keys: dict[str, int] = {}
        self.counters = {"CSD": 0, "JSW": 0}
        self.next_id = 10001
        self._load(world, changelog_padding)

    # -- the world ----------------------------------------------------------------------------

    def _add_account(self, account: Account, login: str | None = None) -> None:
        self.accounts[login or account.email] = account
        self.by_id[account.account_id] = account

    def _person_account(self, person_id: str | None) -> str | None:
        return _account_id(person_id) if person_id else None

    def _new_issue(self, project: str, **kwargs: Any) -> Issue:
        self.counters[project] += 1
        issue = Issue(
            id=self.next_id, key=f"{project}-{self.counters[project]}", project=project, **kwargs
        )
        self.next_id += 1
        self.version += 1
        self.issues[issue.id] = issue
        self.keys[issue.key] = issue.id
        return issue

    def _load(self, world: World, padding: int) -> None:
        departments = {d.id: d.name for d in world.departments}
        slas: dict[str, Sla] = {s.ticket_id: s for s in world.slas}
        for ticket in sorted(world.tickets, key=lambda t: t.opened):
            if ticket.platform != "jira":
                continue
            issue = self._new_issue(
                "CSD",
                type_id=KIND_TYPE[ticket.kind],
                summary=ticket.title,
                status=TICKET_STATUS[ticket.state],
                priority=str(ticket.priority),
                resolution=(
                    "10001"
                    if ticket.state == "cancelled"
                    else "10000"
                    if ticket.state in ("resolved", "closed")
                    else None
                ),
                created=ticket.opened,
                updated=ticket.updated,
                resolved=ticket.resolved
                or (ticket.closed if ticket.state == "cancelled" else None),
                assignee=self._person_account(ticket.assignee_id),
                reporter=self._person_account(ticket.caller_id),
                components=[ticket.category],
                custom={
                    F_REQUEST_TYPE: KIND_REQUEST_TYPE[ticket.kind],
                    F_ORGANIZATIONS: [departments.get(ticket.department, ticket.department)],
                    F_GROUP: ticket.assignment_group,
                    F_FIRST_RESPONSE: ticket.responded,
                },
            )
            issue.histories = self._histories(issue, ticket, padding)
            issue.sla = self._slas(ticket, slas.get(ticket.id))
        parents: dict[str, int] = {}
        for work in sorted(
            (w for w in world.work if w.platform == "jira"), key=lambda w: w.kind != "program"
        ):
            issue = self._work_issue(work, departments, parents)
            parents[work.id] = issue.id

    def _work_issue(
        self, work: Work, departments: dict[str, str], parents: dict[str, int]
    ) -> Issue:
        done = work.state in ("done", "cancelled")
        return self._new_issue(
            "JSW",
            type_id="10201" if work.kind == "program" else "10200",
            summary=work.name,
            status=WORK_STATUS[work.state],
            priority=str(work.priority),
            resolution=("10001" if work.state == "cancelled" else "10000") if done else None,
            created=work.created,
            updated=work.updated,
            resolved=work.actual_finish if done else None,
            assignee=self._person_account(work.manager_id),
            reporter=self._person_account(work.sponsor_id),
            custom={
                F_START: work.planned_start.date().isoformat() if work.planned_start else None,
                F_DEPARTMENT: departments.get(work.department, work.department),
            },
            parent=parents.get(work.parent_id) if work.parent_id else None,
            due=work.planned_finish.date().isoformat() if work.planned_finish else None,
            description=f"{work.name} ({work.number})",
        )

    def _histories(self, issue: Issue, ticket: Ticket, padding: int) -> list[dict[str, Any]]:
        """The status, resolution and assignment-group changes that led to the ticket's state."""
        steps: list[tuple[datetime, list[dict[str, Any]]]] = []
        start = ticket.responded or ticket.opened + timedelta(minutes=5)
        end = ticket.resolved or ticket.closed or max(ticket.updated, start)
        span = max(60.0, (end - start).total_seconds())

        def at(share: float) -> datetime:
            return min(start + timedelta(seconds=span * share), ticket.updated)

        def status(from_id: str, to_id: str) -> dict[str, Any]:
            return {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": from_id,
                "fromString": STATUSES[from_id][0],
                "to": to_id,
                "toString": STATUSES[to_id][0],
            }

        def resolution(from_id: str | None, to_id: str | None) -> dict[str, Any]:
            return {
                "field": "resolution",
                "fieldtype": "jira",
                "fieldId": "resolution",
                "from": from_id,
                "fromString": RESOLUTIONS.get(from_id or ""),
                "to": to_id,
                "toString": RESOLUTIONS.get(to_id or ""),
            }

        current = TICKET_STATUS["new"]
        if ticket.state != "new":
            current = TICKET_STATUS["in_progress"]
            steps.append((start, [status(TICKET_STATUS["new"], current)]))
        groups = [g for g in self.world.groups if g != ticket.assignment_group]
        previous = groups[0] if groups else ticket.assignment_group
        hops = ticket.reassignment_count
        for number in range(hops):
            # The ticket ends with its world group: the hops come from others.
            target = (
                ticket.assignment_group
                if number == hops - 1
                else groups[(number + 1) % len(groups)]
            )
            steps.append(
                (
                    at(0.1 + 0.3 * (number + 1) / (hops + 1)),
                    [
                        {
                            "field": "Assignment group",
                            "fieldtype": "custom",
                            "fieldId": F_GROUP,
                            "from": None,
                            "fromString": previous,
                            "to": None,
                            "toString": target,
                        }
                    ],
                )
            )
            previous = target
        for number in range(ticket.reopen_count):
            share = 0.5 + 0.4 * number / max(1, ticket.reopen_count)
            steps.append(
                (at(share), [status(current, TICKET_STATUS["resolved"]), resolution(None, "10000")])
            )
            steps.append(
                (
                    at(share + 0.02),
                    [
                        status(TICKET_STATUS["resolved"], TICKET_STATUS["in_progress"]),
                        resolution("10000", None),
                    ],
                )
            )
            current = TICKET_STATUS["in_progress"]
        if ticket.state == "on_hold":
            steps.append((at(0.95), [status(current, TICKET_STATUS["on_hold"])]))
        elif ticket.state in ("resolved", "closed") and ticket.resolved:
            steps.append(
                (
                    ticket.resolved,
                    [status(current, TICKET_STATUS["resolved"]), resolution(None, "10000")],
                )
            )
            current = TICKET_STATUS["resolved"]
            if ticket.state == "closed" and ticket.closed:
                steps.append((ticket.closed, [status(current, TICKET_STATUS["closed"])]))
        elif ticket.state == "cancelled":
            steps.append(
                (
                    ticket.closed or end,
                    [status(current, TICKET_STATUS["cancelled"]), resolution(None, "10001")],
                )
            )
        for number in range(padding):
            steps.append(
                (
                    at(number / max(1, padding)),
                    [
                        {
                            "field": "description",
                            "fieldtype": "jira",
                            "fieldId": "description",
                            "from": None,
                            "fromString": f"draft {number}",
                            "to": None,
                            "toString": f"draft {number + 1}",
                        }
                    ],
                )
            )
        steps.sort(key=lambda step: step[0])
        author = issue.assignee or issue.reporter
        return [
            {
                "id": str(issue.id * 1000 + number),
                "author": {"accountId": author} if author else None,
                "created": when,
                "items": items,
            }
            for number, (when, items) in enumerate(steps)
        ]

    def _slas(self, ticket: Ticket, sla: Sla | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if ticket.kind in ("incident", "request") and sla is not None:
            out[F_RESOLUTION_SLA] = {
                "id": "1",
                "name": "Time to resolution",
                "start": sla.start,
                "stop": sla.end,
                "breach": sla.planned_end,
                "breached": sla.has_breached,
                "goal": (sla.planned_end - sla.start).total_seconds(),
                "elapsed": sla.business_elapsed_seconds,
                "paused": sla.stage == "paused",
            }
            goal = RESPONSE_GOAL_HOURS[ticket.priority] * 3600.0
            breach = ticket.opened + timedelta(seconds=goal)
            stop = ticket.responded
            out[F_RESPONSE_SLA] = {
                "id": "2",
                "name": "Time to first response",
                "start": ticket.opened,
                "stop": stop,
                "breach": breach,
                "breached": (stop or self.world.now) > breach,
                "goal": goal,
                "elapsed": ((stop or self.world.now) - ticket.opened).total_seconds(),
                "paused": False,
            }
        elif ticket.kind == "change":
            # Configured on the desk, never started for changes (the recorded "not started").
            out[F_RESOLUTION_SLA] = {"id": "1", "name": "Time to resolution", "start": None}
        return out

    # -- rendering ----------------------------------------------------------------------------

    def base(self) -> str:
        return f"https://{self.host}"

    def _stamp(self, moment: datetime | None, account: Account, seed: str = "") -> str | None:
        if moment is None:
            return None
        local = moment.astimezone(ZoneInfo(account.time_zone))
        millis = moment.microsecond // 1000 if moment.microsecond else _pseudo_ms(seed)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}" + local.strftime("%z")

    def _precise(self, moment: datetime, seed: str) -> datetime:
        """The instant Jira holds for a world time (the world keeps seconds)."""
        if moment.microsecond:
            return moment
        return moment.replace(microsecond=_pseudo_ms(seed) * 1000)

    def _time(self, moment: datetime, account: Account) -> dict[str, Any]:
        local = moment.astimezone(ZoneInfo(account.time_zone))
        return {
            "iso8601": local.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "jira": local.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{moment.microsecond // 1000:03d}"
            + local.strftime("%z"),
            "friendly": local.strftime("%d/%b/%y %I:%M %p"),
            "epochMillis": _ms(moment),
        }

    @staticmethod
    def _duration(seconds: float) -> dict[str, Any]:
        millis = int(seconds * 1000)
        hours, rest = divmod(abs(millis) // 60000, 60)
        sign = "-" if millis < 0 else ""
        return {"millis": millis, "friendly": f"{sign}{hours}h {rest}m"}

    def _sla_value(self, issue: Issue, field_id: str, account: Account) -> Any:
        sla = issue.sla.get(field_id)
        if sla is None:
            return None
        value: dict[str, Any] = {
            "id": sla["id"],
            "name": sla["name"],
            "_links": {
                "self": f"{self.base()}/rest/servicedeskapi/request/{issue.id}/sla/{sla['id']}"
            },
            "completedCycles": [],
        }
        if sla.get("start") is not None:
            cycle: dict[str, Any] = {
                "startTime": self._time(sla["start"], account),
                "breachTime": self._time(sla["breach"], account),
                "breached": sla["breached"],
                "goalDuration": self._duration(sla["goal"]),
                "elapsedTime": self._duration(sla["elapsed"]),
                "remainingTime": self._duration(sla["goal"] - sla["elapsed"]),
            }
            if sla["stop"] is not None:
                cycle["stopTime"] = self._time(sla["stop"], account)
                order = [
                    "startTime",
                    "stopTime",
                    "breachTime",
                    "breached",
                    "goalDuration",
                    "elapsedTime",
                    "remainingTime",
                ]
                value["completedCycles"] = [{k: cycle[k] for k in order}]
            else:
                cycle["paused"] = sla["paused"]
                cycle["withinCalendarHours"] = False
                value["ongoingCycle"] = cycle
        value["slaDisplayFormat"] = "NEW_SLA_FORMAT"
        return value

    def _user(self, account_id: str | None, viewer: Account) -> dict[str, Any] | None:
        if account_id is None:
            return None
        account = self.by_id.get(account_id)
        if account is None:
            return None
        return {
            "self": f"{self.base()}/rest/api/3/user?accountId={account.account_id}",
            "accountId": account.account_id,
            "emailAddress": account.email,
            "displayName": account.name,
            "active": account.active,
            "timeZone": account.time_zone,
            "accountType": "atlassian",
        }

    def _status(self, status_id: str) -> dict[str, Any]:
        name, category = STATUSES[status_id]
        return {
            "self": f"{self.base()}/rest/api/3/status/{status_id}",
            "description": "",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self.base()}/rest/api/3/statuscategory/{CATEGORIES[category]['id']}",
                **CATEGORIES[category],
            },
        }

    def _issue_type(self, type_id: str) -> dict[str, Any]:
        name, level, _project = ISSUE_TYPES[type_id]
        return {
            "self": f"{self.base()}/rest/api/3/issuetype/{type_id}",
            "id": type_id,
            "description": "",
            "name": name,
            "subtask": False,
            "hierarchyLevel": level,
        }

    def _project(self, key: str) -> dict[str, Any]:
        project = PROJECTS[key]
        return {
            "self": f"{self.base()}/rest/api/3/project/{project['id']}",
            "id": project["id"],
            "key": key,
            "name": project["name"],
            "projectTypeKey": project["projectTypeKey"],
            "simplified": False,
        }

    def _all_fields(self, issue: Issue, account: Account) -> dict[str, Any]:
        seed = str(issue.id)
        out: dict[str, Any] = {
            "summary": issue.summary,
            "issuetype": self._issue_type(issue.type_id),
            "project": self._project(issue.project),
            "status": self._status(issue.status),
            "priority": {
                "self": f"{self.base()}/rest/api/3/priority/{issue.priority}",
                "name": PRIORITIES[issue.priority],
                "id": issue.priority,
            }
            if issue.priority
            else None,
            "resolution": {"id": issue.resolution, "name": RESOLUTIONS[issue.resolution]}
            if issue.resolution
            else None,
            "resolutiondate": self._stamp(issue.resolved, account, seed + "r"),
            "created": self._stamp(issue.created, account, seed + "c"),
            "updated": self._stamp(self._precise(issue.updated, seed + "u"), account, seed + "u"),
            "statuscategorychangedate": self._stamp(
                (issue.histories[-1]["created"] if issue.histories else issue.created),
                account,
                seed + "s",
            ),
            "assignee": self._user(issue.assignee, account),
            "reporter": self._user(issue.reporter, account),
            "components": [
                {
                    "self": f"{self.base()}/rest/api/3/component/{10000 + n}",
                    "id": str(10000 + n),
                    "name": name,
                }
                for n, name in enumerate(issue.components)
            ],
            "labels": list(issue.labels),
            "description": {
                "version": 1,
                "type": "doc",
                "content": [
                    {
                        "type": "paragraph",
                        "content": [{"type": "text", "text": issue.description or issue.summary}],
                    }
                ],
            },
            "duedate": issue.due,
            F_START: issue.custom.get(F_START),
            F_DEPARTMENT: {
                "value": issue.custom[F_DEPARTMENT],
                "id": _option_id(issue.custom[F_DEPARTMENT]),
            }
            if issue.custom.get(F_DEPARTMENT)
            else None,
            F_GROUP: {"value": issue.custom[F_GROUP], "id": _option_id(issue.custom[F_GROUP])}
            if issue.custom.get(F_GROUP)
            else None,
            F_ORGANIZATIONS: [
                {"id": _option_id(name), "name": name}
                for name in issue.custom.get(F_ORGANIZATIONS) or []
            ],
            F_FIRST_RESPONSE: self._stamp(issue.custom.get(F_FIRST_RESPONSE), account, seed + "f"),
            F_REQUEST_TYPE: self._request_type_value(issue, account),
        }
        if issue.parent is not None and issue.parent in self.issues:
            parent = self.issues[issue.parent]
            out["parent"] = {
                "id": str(parent.id),
                "key": parent.key,
                "self": f"{self.base()}/rest/api/3/issue/{parent.id}",
                "fields": {
                    "summary": parent.summary,
                    "issuetype": self._issue_type(parent.type_id),
                },
            }
        else:
            out["parent"] = None
        if account.agent:
            for field_id in SLA_FIELDS:
                out[field_id] = self._sla_value(issue, field_id, account)
        return out

    def _request_type_value(self, issue: Issue, account: Account) -> Any:
        request_type = issue.custom.get(F_REQUEST_TYPE)
        if not request_type:
            return None
        name, type_id = REQUEST_TYPES[request_type]
        status_name, category = STATUSES[issue.status]
        return {
            "_links": {
                "jiraRest": f"{self.base()}/rest/api/2/issue/{issue.id}",
                "web": f"{self.base()}/servicedesk/customer/portal/1/{issue.key}",
                "agent": f"{self.base()}/browse/{issue.key}",
                "self": f"{self.base()}/rest/servicedeskapi/request/{issue.id}",
            },
            "requestType": {
                "_expands": ["field"],
                "id": request_type,
                "_links": {
                    "self": f"{self.base()}/rest/servicedeskapi/servicedesk/1/requesttype/{request_type}"
                },
                "name": name,
                "description": "",
                "helpText": "",
                "defaultName": name,
                "issueTypeId": type_id,
                "serviceDeskId": "1",
                "portalId": "1",
                "groupIds": ["1"],
            },
            "currentStatus": {
                "status": status_name,
                "statusCategory": category.upper(),
                "statusDate": self._time(
                    self._precise(
                        issue.histories[-1]["created"] if issue.histories else issue.created,
                        str(issue.id),
                    ),
                    account,
                ),
            },
        }

    def render(
        self, issue: Issue, account: Account, fields: list[str], expand: str = ""
    ) -> dict[str, Any]:
        """An issue as search and GET /issue return it, with the fields asked for."""
        out: dict[str, Any] = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": str(issue.id),
            "self": f"{self.base()}/rest/api/3/issue/{issue.id}",
            "key": issue.key,
        }
        wanted = [f for f in fields if f not in ("id", "key", "self")]
        if not wanted and "key" not in fields:
            return {"id": str(issue.id)}
        if wanted:
            every = self._all_fields(issue, account)
            if "*all" in wanted or "*navigable" in wanted:
                chosen = every
            else:
                chosen = {f: every.get(f) for f in wanted if f in every}
                if not account.agent:
                    for field_id in SLA_FIELDS:
                        chosen.pop(field_id, None)  # not null: absent, as for any hidden field
            out["fields"] = chosen
        if "changelog" in expand.split(","):
            histories = [self._history(h, account) for h in issue.histories]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": min(40, len(histories)),
                "total": len(histories),
                "histories": histories[-40:],
            }
        return out

    def _history(self, history: dict[str, Any], account: Account) -> dict[str, Any]:
        author = history.get("author")
        return {
            "id": history["id"],
            "author": self._user(author["accountId"], account) if author else None,
            "created": self._stamp(history["created"], account, history["id"]),
            "items": history["items"],
        }

    # -- JQL ----------------------------------------------------------------------------------

    def _literal_time(self, token: str, account: Account) -> datetime:
        text = token.strip('"').strip("'")
        if re.fullmatch(r"-?\d+", text):
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        for pattern in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
            try:
                naive = datetime.strptime(text, pattern)
            except ValueError:
                continue
            # The searching account's profile time zone, at minute precision.
            return naive.replace(tzinfo=ZoneInfo(account.time_zone)).astimezone(UTC)
        raise JqlError(
            f"Date value '{text}' for field 'updated' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'."
        )

    def parse(
        self, jql: str, account: Account
    ) -> tuple[Callable[[Issue], bool], list[tuple[str, bool]], bool]:
        """A JQL query as a predicate, its ORDER BY, and whether it restricts anything."""
        tokens = re.findall(r'"[^"]*"|\'[^\']*\'|!=|>=|<=|~|[=<>(),]|[^\s=<>!(),~]+', jql)
        order: list[tuple[str, bool]] = []
        lowered = [t.lower() for t in tokens]
        if "order" in lowered:
            at = lowered.index("order")
            if at + 1 >= len(lowered) or lowered[at + 1] != "by":
                raise JqlError("Error in the JQL Query: Expecting 'by' after 'order'.")
            spec = tokens[at + 2 :]
            tokens = tokens[:at]
            current: list[str] = []
            for token in [*spec, ","]:
                if token == ",":
                    if not current:
                        raise JqlError(
                            "Error in the JQL Query: Expecting a field name in the ORDER BY clause."
                        )
                    name = current[0].lower()
                    if name not in ORDERABLE and name not in JQL_FIELDS:
                        raise JqlError(
                            f"Field '{current[0]}' does not exist or you do not have permission to view it."
                        )
                    descending = len(current) > 1 and current[1].lower() == "desc"
                    order.append(("key" if name == "issuekey" else name, descending))
                    current = []
                else:
                    current.append(token)
            if len(order) > 7:
                raise JqlError("The ORDER BY clause can have at most 7 fields.")
        clauses: list[Callable[[Issue], bool]] = []
        position = depth = 0
        while position < len(tokens):
            if clauses:
                while position < len(tokens) and tokens[position] == ")" and depth:
                    position, depth = position + 1, depth - 1
                if position >= len(tokens):
                    break
                if tokens[position].lower() != "and":
                    raise JqlError(
                        f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{tokens[position]}'."
                    )
                position += 1
            # Only AND joins clauses here, so grouping parentheses change nothing.
            while position < len(tokens) and tokens[position] == "(":
                position, depth = position + 1, depth + 1
            if position + 2 > len(tokens):
                raise JqlError("Error in the JQL Query: the query ends before its condition does.")
            name, op = tokens[position].lower(), tokens[position + 1].lower()
            position += 2
            if name not in JQL_FIELDS and not name.startswith("cf["):
                raise JqlError(
                    f"Field '{tokens[position - 2]}' does not exist or you do not have permission to view it."
                )
            negate = False
            if op == "not" and position < len(tokens) and tokens[position].lower() == "in":
                negate, op = True, "in"
                position += 1
            if op == "in":
                if position >= len(tokens) or tokens[position] != "(":
                    raise JqlError("Error in the JQL Query: Expecting '(' after 'in'.")
                values: list[str] = []
                position += 1
                while position < len(tokens) and tokens[position] != ")":
                    if tokens[position] != ",":
                        values.append(tokens[position].strip('"').strip("'"))
                    position += 1
                position += 1
                clauses.append(self._clause(name, "in", values, account, negate))
            elif op in ("=", "!=", ">=", ">", "<=", "<"):
                if position >= len(tokens):
                    raise JqlError(f"Error in the JQL Query: Expecting a value after '{op}'.")
                clauses.append(self._clause(name, op, [tokens[position]], account, False))
                position += 1
            else:
                raise JqlError(
                    f"Error in the JQL Query: The operator '{op}' is not supported by the '{name}' field."
                )

        if depth:
            raise JqlError("Error in the JQL Query: Expecting ')' before the end of the query.")

        def predicate(issue: Issue) -> bool:
            return all(clause(issue) for clause in clauses)

        return predicate, order, bool(clauses)

    def _clause(
        self, name: str, op: str, values: list[str], account: Account, negate: bool
    ) -> Callable[[Issue], bool]:
        if name in ("updated", "created"):
            bound = self._literal_time(values[0], account)

            def compare(issue: Issue) -> bool:
                seed = str(issue.id) + ("u" if name == "updated" else "c")
                moment = self._precise(issue.updated, seed) if name == "updated" else issue.created
                return {
                    ">=": moment >= bound,
                    ">": moment > bound,
                    "<=": moment <= bound,
                    "<": moment < bound,
                    "=": moment == bound,
                    "!=": moment != bound,
                }[op]

            return compare
        wanted = [v.strip('"').strip("'") for v in values]
        folded = {w.lower() for w in wanted}

        def native(issue: Issue) -> set[str]:
            if name == "project":
                return {issue.project.lower(), PROJECTS[issue.project]["id"]}
            if name in ("issuetype", "type"):
                return {issue.type_id, ISSUE_TYPES[issue.type_id][0].lower()}
            if name in ("key", "issuekey"):
                return {issue.key.lower(), str(issue.id)}
            if name == "id":
                return {str(issue.id)}
            if name == "labels":
                return {label.lower() for label in issue.labels}
            if name == "status":
                return {issue.status, STATUSES[issue.status][0].lower()}
            if name == "statuscategory":
                category = STATUSES[issue.status][1]
                return {
                    category,
                    CATEGORIES[category]["name"].lower(),
                    str(CATEGORIES[category]["id"]),
                }
            if name == "resolution":
                return (
                    {issue.resolution, RESOLUTIONS[issue.resolution].lower()}
                    if issue.resolution
                    else {"empty"}
                )
            if name == "priority":
                return (
                    {issue.priority, PRIORITIES[issue.priority].lower()}
                    if issue.priority
                    else set()
                )
            if name in ("assignee", "reporter"):
                account_id = issue.assignee if name == "assignee" else issue.reporter
                return {account_id.lower()} if account_id else {"empty"}
            return set()

        if name == "project":
            unknown = [
                w
                for w in wanted
                if w.upper() not in PROJECTS and w not in {p["id"] for p in PROJECTS.values()}
            ]
            if unknown or not account.browse:
                raise JqlError(
                    f"The value '{(unknown or wanted)[0]}' does not exist for the field 'project'."
                )
        if op in ("=", "in"):
            return lambda issue: bool(native(issue) & folded) != negate
        if op == "!=":
            return lambda issue: not (native(issue) & folded)
        raise JqlError(
            f"Error in the JQL Query: The operator '{op}' is not supported by the '{name}' field."
        )

    def _sort_key(self, order: list[tuple[str, bool]]) -> Callable[[Issue], tuple[float, ...]]:
        spec = [*order, ("id", False)]

        def key(issue: Issue) -> tuple[float, ...]:
            parts: list[float] = []
            for name, descending in spec:
                if name == "updated":
                    value = float(_ms(self._precise(issue.updated, str(issue.id) + "u")))
                elif name == "created":
                    value = float(_ms(issue.created))
                elif name == "key":
                    value = float(
                        list(PROJECTS).index(issue.project) * 10**9 + int(issue.key.split("-")[1])
                    )
                else:
                    value = float(issue.id)
                parts.append(-value if descending else value)
            return tuple(parts)

        return key

    # -- HTTP ---------------------------------------------------------------------------------

    def _error(
        self,
        status: int,
        messages: list[str],
        errors: dict[str, str] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        return self.json(status, {"errorMessages": messages, "errors": errors or {}}, extra)

    def _account(self, environ: dict[str, Any]) -> Account | None:
        given = self.credentials(environ)
        with self.lock:
            if given.scheme == "bearer":
                return next(
                    (a for a in self.accounts.values() if a.secret and a.secret == given.secret),
                    None,
                )
            if given.scheme == "basic":
                account = self.accounts.get(given.user)
                return account if account and account.secret == given.secret else None
        return None

    def revoke(self, user: str) -> None:
        """Revoke a user's API token, as an admin does at id.atlassian.com."""
        with self.lock:
            self.version += 1
            self.accounts[user].secret = None

    def throttled(self, wait: int) -> Response:
        with self.lock:
            now = time.monotonic()
            wait = max(1, wait)
            if now < self.penalty_until:
                # Retrying before Retry-After "returns the same or longer wait".
                wait = int(self.penalty_until - now) + wait
            self.penalty_until = now + wait
        reset = (datetime.now(UTC) + timedelta(seconds=wait)).strftime("%Y-%m-%dT%H:%MZ")
        return self._error(
            429,
            ["Rate limit exceeded."],
            extra=[
                ("Retry-After", str(wait)),
                ("X-RateLimit-Reset", reset),
                ("X-RateLimit-Limit", "100"),
                ("X-RateLimit-Remaining", "0"),
                ("RateLimit-Reason", "jira-burst-based"),
            ],
        )

    def unavailable(self) -> Response:
        return self._error(
            503, ["Service unavailable, please try again later."], extra=[("Retry-After", "1")]
        )

    def _body(self, environ: dict[str, Any]) -> Any:
        try:
            return self.json_body(environ, {})
        except ValueError:
            return None

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        self.host = environ.get("HTTP_HOST", self.host)
        searching = bool(re.fullmatch(rf"{API}/search/jql/?", path))
        with self.lock:
            early = time.monotonic() < self.penalty_until
        fault, answer = self.fault(listing=searching)
        if fault == "throttle" or early:
            return (
                answer
                if fault == "throttle" and answer
                else self.throttled(int(self.faults.retry_after))
            )
        if searching:
            with self.lock:
                self.searches += 1
                if self.searches == self.fail_search:
                    fault = "error"
        if fault == "error":
            return self.unavailable()
        account = self._account(environ)
        if account is None:
            return self._error(
                401,
                [NOT_AUTHENTICATED],
                extra=[
                    ("WWW-Authenticate", 'OAuth realm="https%3A%2F%2Fcity.atlassian.net"'),
                    ("X-Seraph-LoginReason", "AUTHENTICATED_FAILED"),
                ],
            )
        params = parse_qs(query, keep_blank_values=True)
        body = self._body(environ) if method in ("POST", "PUT") else {}
        if body is None:
            return self._error(400, ["Unexpected character: the body is not valid JSON."])
        with self.lock:
            self.bodies.append((method, path, body))
            return self._route(method, path, params, body, account, corrupt=fault == "malformed")

    def _route(
        self,
        method: str,
        path: str,
        params: dict[str, list[str]],
        body: Any,
        account: Account,
        *,
        corrupt: bool,
    ) -> Response:
        def one(name: str, default: str = "") -> str:
            return params.get(name, [default])[-1]

        cloud = self.deployment == "Cloud"
        if not cloud and (
            path.startswith("/rest/api/3/")
            or re.fullmatch(
                rf"{API}/(search/jql|search/approximate-count|changelog/bulkfetch)/?", path
            )
        ):
            return self._error(404, ["null for uri: " + path])
        if re.fullmatch(rf"{API}/serverInfo/?", path):
            return self.json(
                "200 OK",
                {
                    "baseUrl": self.base(),
                    "displayUrl": self.base(),
                    "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.15",
                    "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 15],
                    "deploymentType": self.deployment,
                    "buildNumber": 100289,
                    "buildDate": "2026-11-27T00:00:00.000+0000",
                    "serverTime": self._stamp(datetime.now(UTC), account),
                    "scmInfo": "0",
                    "serverTitle": "Jira",
                },
            )
        if re.fullmatch(rf"{API}/myself/?", path):
            return self.json(
                "200 OK",
                {
                    **(self._user(account.account_id, account) or {}),
                    "locale": "en_US",
                    "groups": {"size": 1, "items": []},
                },
            )
        if re.fullmatch(rf"{API}/mypermissions/?", path):
            wanted = [p for p in one("permissions").split(",") if p] or ["BROWSE_PROJECTS"]
            granted = {
                "BROWSE_PROJECTS": account.browse,
                "CREATE_ISSUES": account.browse,
                "TRANSITION_ISSUES": account.browse,
            }
            return self.json(
                "200 OK",
                {
                    "permissions": {
                        p: {"key": p, "havePermission": granted.get(p, False)} for p in wanted
                    }
                },
            )
        if re.fullmatch(rf"{API}/field/?", path):
            return self.json("200 OK", FIELDS)
        if re.fullmatch(rf"{API}/(?:status|statuses)/?", path):
            return self.json("200 OK", [self._status(s) for s in STATUSES])
        if re.fullmatch(rf"{API}/issuetype/?", path):
            return self.json("200 OK", [self._issue_type(t) for t in ISSUE_TYPES])
        if re.fullmatch(rf"{API}/project/?", path):
            return self.json(
                "200 OK", [self._project(k) for k in PROJECTS] if account.browse else []
            )
        if re.fullmatch(rf"{API}/search/?", path):
            if cloud:
                return self._error(410, [REMOVED_SEARCH])
            return self._classic_search(
                params if method == "GET" else body, method == "GET", account
            )
        if re.fullmatch(rf"{API}/search/jql/?", path) and method in ("GET", "POST"):
            return self._search(
                params if method == "GET" else body, method == "GET", account, corrupt
            )
        if re.fullmatch(rf"{API}/search/approximate-count/?", path) and method == "POST":
            try:
                predicate, _order, bounded = self.parse(str(body.get("jql", "")), account)
            except JqlError as exc:
                return self._error(400, [str(exc)])
            if not bounded:
                return self._error(400, [UNBOUNDED])
            return self.json(
                "200 OK", {"count": sum(1 for i in self.issues.values() if predicate(i))}
            )
        if re.fullmatch(rf"{API}/changelog/bulkfetch/?", path) and method == "POST":
            return self._bulk_changelog(body, account)
        if re.fullmatch(rf"{API}/users/search/?", path):
            return self._users(
                int(one("startAt", "0") or 0), int(one("maxResults", "50") or 50), account
            )
        match = re.fullmatch(rf"{API}/issue/([^/]+)/changelog/?", path)
        if match:
            issue = self._find(match.group(1), account)
            if issue is None:
                return self._issue_missing()
            return self._changelog(
                issue, int(one("startAt", "0") or 0), int(one("maxResults", "100") or 100), account
            )
        match = re.fullmatch(rf"{API}/issue/([^/]+)/properties/([^/]+)/?", path)
        if match:
            issue = self._find(match.group(1), account)
            if issue is None:
                return self._issue_missing()
            if method == "PUT":
                created = match.group(2) not in issue.properties
                issue.properties[match.group(2)] = body
                return ("201 Created" if created else "200 OK", [], b"")
            if match.group(2) not in issue.properties:
                return self._error(
                    404, [f"The property with key '{match.group(2)}' does not exist."]
                )
            return self.json(
                "200 OK", {"key": match.group(2), "value": issue.properties[match.group(2)]}
            )
        match = re.fullmatch(rf"{API}/issue/([^/]+)/transitions/?", path)
        if match:
            issue = self._find(match.group(1), account)
            if issue is None:
                return self._issue_missing()
            if method == "GET":
                return self.json(
                    "200 OK", {"expand": "transitions", "transitions": self._transitions(issue)}
                )
            return self._transition(issue, body)
        match = re.fullmatch(rf"{API}/issue/([^/]+)/comment/?", path)
        if match and method == "POST":
            issue = self._find(match.group(1), account)
            if issue is None:
                return self._issue_missing()
            if not isinstance(body.get("body"), dict) and "/api/3/" in path:
                return self._error(400, [], {"comment": "Comment body is not valid!"})
            self._touch(issue)
            return self.json(
                "201 Created", {"id": str(len(issue.histories) + 1), "body": body.get("body")}
            )
        match = re.fullmatch(rf"{API}/issue/([^/]+)/?", path)
        if match and method == "GET":
            issue = self._find(match.group(1), account)
            if issue is None:
                return self._issue_missing()
            wanted = [f for v in params.get("fields", ["*all"]) for f in v.split(",") if f]
            return self.json("200 OK", self.render(issue, account, wanted, one("expand")))
        if re.fullmatch(rf"{API}/issue/?", path) and method == "POST":
            return self._create(body, account)
        if re.fullmatch(r"/rest/servicedeskapi/servicedesk/?", path):
            if not account.agent:
                return self._error(403, ["You do not have permission to view service desks."])
            return self.json(
                "200 OK",
                {
                    "size": 1,
                    "start": 0,
                    "limit": 50,
                    "isLastPage": True,
                    "values": [{**SERVICE_DESK, "projectName": PROJECTS["CSD"]["name"]}],
                },
            )
        match = re.fullmatch(r"/rest/servicedeskapi/request/([^/]+)/sla/?", path)
        if match:
            if not account.agent:
                return self._error(
                    403, ["You do not have permission to view SLA information for this request."]
                )
            issue = self._find(match.group(1), account)
            if issue is None:
                return self._issue_missing()
            values = [
                v for f in SLA_FIELDS if (v := self._sla_value(issue, f, account)) is not None
            ]
            return self.json(
                "200 OK",
                {
                    "size": len(values),
                    "start": 0,
                    "limit": 50,
                    "isLastPage": True,
                    "values": values,
                },
            )
        return self._error(404, [f"No resource at {path}."])

    @staticmethod
    def _issue_missing() -> Response:
        return (
            "404 Not Found",
            [("Content-Type", "application/json;charset=UTF-8")],
            json.dumps(
                {
                    "errorMessages": [
                        "Issue does not exist or you do not have permission to see it."
                    ],
                    "errors": {},
                }
            ).encode(),
        )

    def _find(self, ref: str, account: Account) -> Issue | None:
        if not account.browse:
            return None
        if ref.isdigit():
            return self.issues.get(int(ref))
        found = self.keys.get(ref.upper())
        return self.issues.get(found) if found is not None else None

    def _search(
        self, args: dict[str, Any], query_string: bool, account: Account, corrupt: bool
    ) -> Response:
        def get(name: str) -> Any:
            value = args.get(name)
            if query_string and isinstance(value, list):
                return value if name in ("fields", "reconcileIssues") else value[-1]
            return value

        jql = str(get("jql") or "")
        fields_arg = get("fields") or []
        if isinstance(fields_arg, str):
            fields_arg = [fields_arg]
        fields = [f.strip() for v in fields_arg for f in str(v).split(",") if f.strip()]
        unknown = [
            f
            for f in fields
            if not f.startswith("*") and f not in FIELD_IDS and f not in ("id", "key")
        ]
        if unknown:
            # Jira ignores field ids it does not know in the fields list.
            fields = [f for f in fields if f not in unknown]
        try:
            asked = int(get("maxResults") or 50)
        except (TypeError, ValueError):
            return self._error(400, ["The value of maxResults must be a number."])
        reconcile_arg = get("reconcileIssues") or []
        if isinstance(reconcile_arg, str):
            reconcile_arg = reconcile_arg.split(",")
        reconcile = {int(r) for r in reconcile_arg if str(r).strip().isdigit()}
        if len(reconcile) > 50:
            return self._error(400, ["reconcileIssues accepts at most 50 issue ids."])
        expand = get("expand") or ""
        if isinstance(expand, list):
            expand = ",".join(expand)
        try:
            predicate, order, bounded = self.parse(jql, account)
        except JqlError as exc:
            return self._error(400, [str(exc)])
        if not bounded:
            return self._error(400, [UNBOUNDED])
        ids_only = all(f in ("id", "key") for f in fields)
        cap = 5000 if ids_only else self.page_cap // (2 if "*all" in fields else 1)
        size = max(1, min(asked, cap))
        binding = hashlib.sha1(json.dumps([jql, fields, asked]).encode()).hexdigest()[:16]
        sort_key = self._sort_key(order)
        after: list[float] | None = None
        token = get("nextPageToken")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
                if decoded["q"] != binding:
                    raise ValueError("another query")
                after = decoded["a"]
            except (ValueError, KeyError, TypeError):
                return self._error(400, ["The provided next page token is invalid or expired."])
        now = time.monotonic()
        cache_key = (jql, account.email, tuple(sorted(reconcile)))
        cached = self._matches.get(cache_key)
        if cached is not None and cached[0] == self.version and not self.search_lag:
            matched, keys = cached[1], cached[2]
        else:
            matched = sorted(
                (
                    i
                    for i in self.issues.values()
                    if account.browse
                    and predicate(i)
                    and (
                        now - i.written_at >= self.search_lag
                        or i.id in reconcile
                        or not i.written_at
                    )
                ),
                key=sort_key,
            )
            keys = [sort_key(i) for i in matched]
            # One query's order is kept while nothing changes: pages of a long read are cheap.
            self._matches = {cache_key: (self.version, matched, keys)}
        start = bisect.bisect_right(keys, tuple(after)) if after is not None else 0
        page = matched[start : start + size]
        rest = matched[start + size : start + size + 1]
        out: dict[str, Any] = {"issues": [self.render(i, account, fields, expand) for i in page]}
        if rest and page:
            out["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps(
                    {"q": binding, "a": list(sort_key(page[-1])), "t": int(time.time() * 1000)}
                ).encode()
            ).decode()
            out["isLast"] = False
        else:
            if self.last_token == "null":
                out["nextPageToken"] = None
            out["isLast"] = True
        answer = self.json("200 OK", out)
        self.page_served(rest if page else [], self._touch)
        return self.cut(answer) if corrupt else answer

    def _classic_search(
        self, args: dict[str, Any], query_string: bool, account: Account
    ) -> Response:
        """Data Center's ``/rest/api/2/search``: ``startAt`` offsets and a ``total``."""

        def get(name: str) -> Any:
            value = args.get(name)
            if query_string and isinstance(value, list):
                return value if name == "fields" else value[-1]
            return value

        fields_arg = get("fields") or ["*navigable"]
        if isinstance(fields_arg, str):
            fields_arg = [fields_arg]
        fields = [f.strip() for v in fields_arg for f in str(v).split(",") if f.strip()]
        try:
            start = int(get("startAt") or 0)
            size = max(
                1, min(int(get("maxResults") or 50), 1000 if fields == ["id"] else self.page_cap)
            )
            predicate, order, _bounded = self.parse(str(get("jql") or ""), account)
        except JqlError as exc:
            return self._error(400, [str(exc)])
        except (TypeError, ValueError):
            return self._error(400, ["startAt and maxResults take whole numbers."])
        matched = sorted(
            (i for i in self.issues.values() if account.browse and predicate(i)),
            key=self._sort_key(order),
        )
        page = matched[start : start + size]
        return self.json(
            "200 OK",
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(matched),
                "issues": [self.render(i, account, fields, str(get("expand") or "")) for i in page],
            },
        )

    def _changelog(self, issue: Issue, start: int, size: int, account: Account) -> Response:
        size = max(1, min(size, 100))
        histories = issue.histories[start : start + size]
        return self.json(
            "200 OK",
            {
                "self": f"{self.base()}/rest/api/3/issue/{issue.key}/changelog?maxResults={size}&startAt={start}",
                "maxResults": size,
                "startAt": start,
                "total": len(issue.histories),
                "isLast": start + size >= len(issue.histories),
                "values": [self._history(h, account) for h in histories],
            },
        )

    def _bulk_changelog(self, body: dict[str, Any], account: Account) -> Response:
        refs = [str(r) for r in body.get("issueIdsOrKeys") or []]
        if not refs or len(refs) > 1000:
            return self._error(400, ["issueIdsOrKeys must name between 1 and 1000 issues."])
        wanted = set(body.get("fieldIds") or [])
        if len(wanted) > 10:
            return self._error(400, ["fieldIds accepts at most 10 fields."])
        size = max(1, min(int(body.get("maxResults") or 1000), 10000))
        binding = hashlib.sha1(json.dumps([refs, sorted(wanted), size]).encode()).hexdigest()[:16]
        offset = 0
        token = body.get("nextPageToken")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
                if decoded["q"] != binding:
                    raise ValueError("another request")
                offset = int(decoded["o"])
            except (ValueError, KeyError, TypeError):
                return self._error(400, ["The provided next page token is invalid or expired."])
        flat: list[tuple[Issue, dict[str, Any]]] = []
        for ref in refs:
            issue = self._find(ref, account)
            if issue is None:
                continue
            for history in issue.histories:
                items = [i for i in history["items"] if not wanted or i["fieldId"] in wanted]
                if items:
                    flat.append((issue, {**history, "items": items}))
        page = flat[offset : offset + size]
        grouped: dict[int, list[dict[str, Any]]] = {}
        for issue, history in page:
            grouped.setdefault(issue.id, []).append(self._history(history, account))
        out: dict[str, Any] = {
            "issueChangeLogs": [
                {"issueId": str(k), "changeHistories": v} for k, v in grouped.items()
            ]
        }
        if offset + size < len(flat):
            out["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"q": binding, "o": offset + size}).encode()
            ).decode()
        return self.json("200 OK", out)

    def _users(self, start: int, size: int, viewer: Account) -> Response:
        size = max(1, min(size, 1000))
        people = [a for a in self.accounts.values() if a.person]
        people.sort(key=lambda a: a.account_id)
        return self.json(
            "200 OK", [self._user(a.account_id, viewer) for a in people[start : start + size]]
        )

    # -- writes -------------------------------------------------------------------------------

    def _touch(self, issue: Issue) -> None:
        self.version += 1
        issue.updated = datetime.now(UTC)
        issue.written_at = time.monotonic()

    def touch(self, key: str, **changes: Any) -> Issue:
        """Edit an issue as a user would: fields set, ``updated`` now (not a write through the
        API, so search sees it at once)."""
        with self.lock:
            self.version += 1
            issue = self.issues[self.keys[key]]
            for name, value in changes.items():
                setattr(issue, name, value)
            issue.updated = changes.get("updated") or datetime.now(UTC)
            return issue

    def delete(self, key: str) -> None:
        """Delete an issue: it vanishes, with no record of it (Jira keeps none)."""
        with self.lock:
            self.version += 1
            issue_id = self.keys.pop(key)
            del self.issues[issue_id]

    def has(self, native_id: str) -> bool:
        with self.lock:
            return native_id.upper() in self.keys or native_id in map(str, self.keys.values())

    def forget(self, native_id: str) -> bool:
        with self.lock:
            key = next((k for k, i in self.keys.items() if native_id in (k, str(i))), None)
        if key is None:
            return False
        self.delete(key)
        return True

    def move(self, key: str, project: str) -> Issue:
        """Move an issue to another project: a new key, the same id, ``updated`` now."""
        with self.lock:
            self.version += 1
            issue = self.issues[self.keys.pop(key)]
            self.counters[project] += 1
            issue.project = project
            issue.key = f"{project}-{self.counters[project]}"
            self.keys[issue.key] = issue.id
            issue.updated = datetime.now(UTC)
            return issue

    def _create(self, body: dict[str, Any], account: Account) -> Response:
        given = body.get("fields") or {}
        errors: dict[str, str] = {}
        project_ref = (given.get("project") or {}).get("key") or (given.get("project") or {}).get(
            "id"
        )
        project = next((k for k, p in PROJECTS.items() if project_ref in (k, p["id"])), None)
        if project is None or not account.browse:
            errors["project"] = "valid project is required"
        type_ref = given.get("issuetype") or {}
        type_id = next(
            (
                t
                for t, (name, _level, _p) in ISSUE_TYPES.items()
                if type_ref.get("id") == t or type_ref.get("name") == name
            ),
            None,
        )
        if type_id is None:
            errors["issuetype"] = "valid issue type is required"
        elif project is not None and ISSUE_TYPES[type_id][2] != project:
            errors["issuetype"] = "The issue type selected is invalid."
        if not str(given.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        allowed = {
            "project", "issuetype", "summary", "description", "priority", "labels", "assignee",
            "reporter", "duedate", "parent", "components", F_REQUEST_TYPE, F_GROUP, F_START, F_DEPARTMENT,
        }  # fmt: skip
        for name in given:
            if name not in allowed:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        for label in given.get("labels") or []:
            if " " in str(label) or len(str(label)) > 255:
                errors["labels"] = (
                    "The label can't contain spaces and must be 255 characters or fewer."
                )
        priority = (given.get("priority") or {}).get("name") or (given.get("priority") or {}).get(
            "id"
        )
        priority_id = next((i for i, n in PRIORITIES.items() if priority in (i, n)), None)
        if priority is not None and priority_id is None:
            errors["priority"] = f"Priority name '{priority}' is not valid"
        request_type = given.get(F_REQUEST_TYPE)
        if request_type is not None and str(request_type) not in REQUEST_TYPES:
            errors[F_REQUEST_TYPE] = "The request type is not valid for this service project."
        if errors:
            return self._error(400, [], errors)
        assert project is not None and type_id is not None
        now = datetime.now(UTC)
        description = given.get("description")
        if isinstance(description, dict):
            description = " ".join(
                part.get("text", "")
                for block in description.get("content", [])
                for part in block.get("content", [])
            )
        parent = (given.get("parent") or {}).get("key") or (given.get("parent") or {}).get("id")
        issue = self._new_issue(
            project,
            type_id=type_id,
            summary=str(given["summary"]),
            status="10000" if project == "CSD" else "10010",
            priority=priority_id or "3",
            resolution=None,
            created=now,
            updated=now,
            resolved=None,
            assignee=None,
            reporter=account.account_id,
            labels=[str(label) for label in given.get("labels") or []],
            custom={
                F_REQUEST_TYPE: str(request_type) if request_type else None,
                F_START: given.get(F_START),
                F_DEPARTMENT: (given.get(F_DEPARTMENT) or {}).get("value"),
                F_GROUP: (given.get(F_GROUP) or {}).get("value"),
            },
            parent=self.keys.get(str(parent).upper())
            or (int(parent) if str(parent).isdigit() else None)
            if parent
            else None,
            due=given.get("duedate"),
            description=str(description or ""),
        )
        issue.written_at = time.monotonic()
        return self.json(
            "201 Created",
            {
                "id": str(issue.id),
                "key": issue.key,
                "self": f"{self.base()}/rest/api/3/issue/{issue.id}",
            },
        )

    def _transitions(self, issue: Issue) -> list[dict[str, Any]]:
        targets = (
            ["10001", "10002", "10003", "10004", "10005"]
            if issue.project == "CSD"
            else ["10011", "10012"]
        )
        return [
            {
                "id": str(int(target) - 9000),
                "name": STATUSES[target][0],
                "to": self._status(target),
                "hasScreen": False,
            }
            for target in targets
            if target != issue.status
        ]

    def _transition(self, issue: Issue, body: dict[str, Any]) -> Response:
        wanted = str((body.get("transition") or {}).get("id") or "")
        match = next((t for t in self._transitions(issue) if t["id"] == wanted), None)
        if match is None:
            return self._error(400, [f"Transition id '{wanted}' is not valid for this issue."])
        target = match["to"]["id"]
        resolution = ((body.get("fields") or {}).get("resolution") or {}).get("name")
        if resolution is not None and resolution not in RESOLUTIONS.values():
            return self._error(400, [], {"resolution": f"Resolution '{resolution}' is not valid."})
        previous = issue.status
        issue.status = target
        items = [
            {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": previous,
             "fromString": STATUSES[previous][0], "to": target, "toString": STATUSES[target][0]}
        ]  # fmt: skip
        if STATUSES[target][1] == "done":
            code = next((c for c, n in RESOLUTIONS.items() if n == (resolution or "Done")), "10000")
            issue.resolution = code
            issue.resolved = datetime.now(UTC)
        self._touch(issue)
        issue.histories.append(
            {
                "id": str(issue.id * 1000 + len(issue.histories)),
                "author": None,
                "created": issue.updated,
                "items": items,
            }
        )
        return ("204 No Content", [], b"")


class JqlError(ValueError):
    """A JQL query the site rejects, with the site's message."""


def _account_id(seed: str) -> str:
    digest = hashlib.sha1(seed.encode()).hexdigest()
    return f"712020:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _option_id(value: str) -> str:
    return str(10000 + int(hashlib.sha1(value.encode()).hexdigest()[:4], 16) % 9000)


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> JiraSite:
    """The emulator serving ``world`` (see :class:`JiraSite` for the options)."""
    return JiraSite(world, faults, **kwargs)


def sandbox_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.NAME]`` keys pointing itcrosswalk at the emulator: the e-mail and API
    token, and the site's assignment-group and department fields."""
    return {
        "auth": {"type": "basic", "user": user, "password": secret_ref},
        "assignment_group_field": F_GROUP,
        "department_field": F_DEPARTMENT,
    }
