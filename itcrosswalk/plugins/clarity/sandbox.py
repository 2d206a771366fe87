"""A Clarity PPM tenant on loopback: the public REST API (``/ppm/rest/v1``) as the notes describe it.

Written from ``shared/platforms/clarity.md`` and the recorded payloads, not from the adapter:

- ``/ppm/rest/v1`` and, for single sign-on tenants, ``/tokens/rest/v1`` (token auth only);
  Basic auth, a session (``POST auth/login`` -> ``authToken`` header, ``DELETE auth/logout``),
  and API keys (``x-api-ppm-client`` + ``Authorization: Bearer``) that expire;
- collections in the documented envelope (``_pageSize``, ``_totalCount``, ``_results``,
  ``_recordsReturned``, ``_next``/``_previous`` only when more records exist), ``limit`` 25 by
  default and capped at 500 for parent objects, 200 for child objects (the cap is applied
  silently: ``_pageSize`` says what was served); ``offset``; ``sort``; ``fields`` (an attribute
  that is not API-enabled is refused, as the platform refuses unknown attributes); the filter
  grammar (parenthesised comparisons, ``and``/``or``, quoted strings, ``in (...)``);
- datetimes as naive local time of the server's zone, compared as such in filters, at whole
  seconds; lookups as ``{displayValue, _type, id}`` with a string id; money with a string
  ``amount``; explicit nulls; ``_internalId`` a number in lists and a string in bulk results;
- ``costplandetails``/``benefitplandetails`` (plan lines, TSVs summed unless ``tsvParams``
  asks for periods) that require their investment and plan-type filters;
- error bodies ``{resourceId, httpStatus, errorMessage, errorCode}``; 401 for bad or expired
  credentials and for missing rights; bulk ``POST {"d": [...]}`` answering 200 with
  ``_results`` and ``_errors``; ``/describe`` listing the resources the user may use and, per
  resource, the attributes with their API ids (custom ones only when API-enabled).

Switches reproduce what real tenants spring: ``broken_next`` (the mangled ``_next`` of KB
427298), ``expired_sessions`` (a session answered with a 200 HTML login page, as behind single
sign-on), ``missing_rights``, ``key_expires``, the server ``timezone``, and the shared
:class:`~itcrosswalk.sandbox.faults.Faults`. Error codes and attribute names the notes do not
record (``baselineStart``, ``isProgram``, ``convertedProject``, the auth error codes) are
inferred, and named so in the notes' spirit: they are hypotheses about a real tenant.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ...sandbox.emulator import Emulator, Response
from ...sandbox.faults import Faults
from ...sandbox.filters import compare
from ...sandbox.world import World

PUBLIC = "/ppm/rest/v1"
TOKENS = "/tokens/rest/v1"
CLIENT_ID = "CROSSWALK"
PARENT_CAP = 500
CHILD_CAP = 200
DEFAULT_LIMIT = 25

LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign In</title></head><body>"
    b'<form method="post" action="/idp/SSO.saml2"><input name="username"/>'
    b'<input type="password" name="password"/></form></body></html>'
)

# The functional right each resource needs (the user also needs "API - Access").
RIGHTS = {
    "projects": "Project - Navigate",
    "tasks": "Project - View Management",
    "teams": "Project - View Management",
    "ideas": "Idea - Navigate",
    "resources": "Resource - Navigate",
    "costPlans": "Financial Plan - View",
    "costplandetails": "Financial Plan - View",
    "benefitPlans": "Benefit Plan - View",
    "benefitplandetails": "Benefit Plan - View",
    "lookups": "",
    "describe": "",
    "virtual": "",
}

LOOKUPS: dict[str, list[tuple[str, str]]] = {
    "INVESTMENT_OBJ_STATUS": [("0", "Unapproved"), ("1", "Approved"), ("2", "Rejected")],
    "INVESTMENT_OBJ_PROGRESS": [("0", "Not Started"), ("1", "Started"), ("2", "Completed")],
    "PAC_PROJECT_STATUS": [("O", "Open"), ("H", "Hold"), ("C", "Closed")],
    # Tenant-defined: this tenant's ids are not the colours' names.
    "INVESTMENT_STATUS_INDICATOR": [
        ("10", "On Track"),
        ("20", "Minor Variance"),
        ("30", "Significant Variance"),
    ],
    "PRTASK_STATUS": [("0", "Not Started"), ("1", "Started"), ("2", "Completed")],
    "IDEA_WORK_STATUS": [
        ("REQUESTED", "Requested"),
        ("ACTIVE", "Active"),
        ("ON_HOLD", "On Hold"),
        ("CANCELLED", "Cancelled"),
        ("COMPLETE", "Complete"),
    ],
    "LOOKUP_FIN_COSTTYPECODE": [("CAPITAL", "Capital"), ("OPERATING", "Operating")],
    "TRANSACTION_CLASS": [
        ("HW", "Hardware"),
        ("SW", "Software"),
        ("LAB", "Labor"),
        ("SVC", "Services"),
    ],
    "BENEFIT_CATEGORY": [("SAVE", "Cost savings"), ("REV", "Revenue")],
    "BOOKING_STATUS": [("S", "Soft"), ("M", "Mixed"), ("H", "Hard")],
}
# attribute -> lookup code, for the `_links` map
LINKS = {
    "status": "INVESTMENT_OBJ_STATUS",
    "progress": "INVESTMENT_OBJ_PROGRESS",
    "financialStatus": "PAC_PROJECT_STATUS",
    "statusIndicator": "INVESTMENT_STATUS_INDICATOR",
    "workStatus": "IDEA_WORK_STATUS",
    "manager": "BROWSE_PROJMGR",
}

WORK_STATE = {  # world state -> (status, progress, isActive, financialStatus)
    "proposed": ("0", "0", True, "O"),
    "approved": ("1", "0", True, "O"),
    "in_progress": ("1", "1", True, "O"),
    "on_hold": ("1", "1", True, "H"),
    "done": ("1", "2", False, "C"),
    "cancelled": ("2", "1", False, "C"),
}
HEALTH = {"green": "10", "amber": "20", "red": "30"}
IDEA_STATE = {  # world demand state -> (status, workStatus)
    "draft": ("0", "REQUESTED"),
    "submitted": ("0", "REQUESTED"),
    "screening": ("0", "ACTIVE"),
    "qualified": ("0", "ACTIVE"),
    "approved": ("1", "ACTIVE"),
    "rejected": ("2", "CANCELLED"),
    "deferred": ("0", "ON_HOLD"),
    "completed": ("1", "COMPLETE"),
}
CATEGORY_CODES = {"Hardware": "HW", "Software": "SW", "Labor": "LAB", "Services": "SVC"}

# Custom attributes this tenant defines: API id -> (resources, label). Only the API-enabled
# ones appear in /describe and may be asked for.
CUSTOM = {
    "c_department": (("projects", "ideas"), "Department"),
    "c_crosswalkRef": (("projects", "ideas"), "Crosswalk reference"),
    "c_businessOwner": (("projects",), "Business owner"),
}

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*'|\"[^\"]*\")|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op>>=|<=|!=|=|>|<)|(?P<word>[A-Za-z_][\w.]*)|(?P<punct>[(),]))"
)


class FilterError(ValueError):
    """A filter the API's parser does not accept."""


def parse_filter(text: str, attributes: set[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for Clarity's filter grammar: ``(attr op value)`` joined by ``and``/``or``
    in parentheses, ``attr in (v1, v2)``; lookups compare by id, money by amount."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"cannot parse the filter at {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    at = 0

    def peek() -> tuple[str, str] | None:
        return tokens[at] if at < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal at
        if at >= len(tokens):
            raise FilterError("the filter ends too early")
        at += 1
        return tokens[at - 1]

    def value() -> Any:
        kind, raw = take()
        if kind == "str":
            return raw[1:-1].replace("''", "'")
        if kind == "num":
            return float(raw) if "." in raw else int(raw)
        if kind == "word" and raw.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[raw.lower()]
        raise FilterError(f"expected a value, found {raw!r}")

    def comparison() -> Callable[[dict[str, Any]], bool]:
        kind, name = take()
        if kind != "word":
            raise FilterError(f"expected an attribute, found {name!r}")
        if name not in attributes:
            raise FilterError(f"Attribute(s) '{name}' are not supported.")
        kind, op = take()
        if kind == "word" and op.lower() == "in":
            if take()[1] != "(":
                raise FilterError("expected ( after in")
            options = [value()]
            while peek() == ("punct", ","):
                take()
                options.append(value())
            if take()[1] != ")":
                raise FilterError("expected ) closing in (...)")
            wanted = {str(o) for o in options}
            return lambda row: (
                _scalar(row.get(name)) is not None and str(_scalar(row.get(name))) in wanted
            )
        if kind != "op":
            raise FilterError(f"expected an operator after {name}, found {op!r}")
        right = value()
        return lambda row: _compare(op, _scalar(row.get(name)), right)

    def term() -> Callable[[dict[str, Any]], bool]:
        if peek() == ("punct", "("):
            take()
            inner = expression()
            if take()[1] != ")":
                raise FilterError("unbalanced parentheses")
            return inner
        return comparison()

    def expression() -> Callable[[dict[str, Any]], bool]:
        left = term()
        while peek() is not None and peek()[0] == "word" and peek()[1].lower() in ("and", "or"):  # type: ignore[index]
            joiner = take()[1].lower()
            right = term()
            if joiner == "and":
                left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
            else:
                left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    predicate = expression()
    if at != len(tokens):
        raise FilterError(f"unexpected {tokens[at][1]!r} in the filter")
    return predicate


def _scalar(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("_type") == "lookup":
            return value.get("id")
        if value.get("_type") == "money":
            return float(value.get("amount") or 0)
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(right, str) and not isinstance(left, bool | None):
        if re.match(r"^\d{4}-\d{2}-\d{2}$", right):
            right += "T00:00:00"  # a date literal is midnight, local time
    return compare(op, left, right)


def _sort_key(value: Any) -> tuple[int, float, str]:
    scalar = _scalar(value)
    if scalar is None:
        return (1, 0.0, "")
    if isinstance(scalar, int | float) and not isinstance(scalar, bool):
        return (0, float(scalar), "")
    return (0, 0.0, str(scalar))


def lookup(code: str, value_id: str | None) -> dict[str, Any] | None:
    if value_id is None:
        return None
    label = dict(LOOKUPS.get(code, [])).get(value_id, value_id)
    return {"displayValue": label, "_type": "lookup", "id": str(value_id)}


def money(amount: float | None, currency: str = "USD") -> dict[str, Any] | None:
    if amount is None:
        return None
    return {"amount": f"{amount:.2f}", "_type": "money", "currency": currency}


class ClarityEmulator(Emulator):
    """A WSGI application answering as a Clarity PPM tenant's public REST API does.

    Args:
        world: the seeded city (its Clarity slice: ``platform == "clarity"`` work, plan lines,
            and the demands it holds as ideas).
        faults: switchable faults.
        users: user name -> password; the same secret is also the user's API key for the
            client ``CROSSWALK``.
        timezone: the server's zone: every datetime is naive local time there.
        broken_next: serve the mangled ``_next`` links of KB 427298.
        expired_sessions: answer requests carrying an ``authToken`` with a 200 HTML login page.
        missing_rights: rights the users lack (``API - Access``, ``Resource - Navigate``).
        key_expires: when the API keys expire (None: they do not during the test).
        api_enabled: the custom attributes with an API id (default: department and the
            crosswalk reference; the business owner is not API-enabled).
        drifting_offsets: pages after the first start one row early, as when rows are
            created or re-sorted during a read: the row at each page's edge is served twice.
    """

    def __init__(
        self,
        world: World,
        faults: Faults | None = None,
        *,
        users: dict[str, str] | None = None,
        timezone: str = "UTC",
        broken_next: bool = False,
        expired_sessions: bool = False,
        missing_rights: Iterable[str] = (),
        key_expires: datetime | None = None,
        api_enabled: Iterable[str] = ("c_department", "c_crosswalkRef"),
        drifting_offsets: bool = False,
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.users = dict(users) if users is not None else {"admin": "admin"}
        self.zone = ZoneInfo(timezone)
        self.broken_next = broken_next
        self.expired_sessions = expired_sessions
        self.missing_rights = set(missing_rights)
        self.key_expires = key_expires
        self.api_enabled = set(api_enabled)
        self.drifting_offsets = drifting_offsets
        self.clients = {CLIENT_ID}
        self.sessions: dict[str, str] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[Any] = []
        self.host = "localhost"
        self.next_id = 5_000_001
        self._index: dict[tuple[str, str], tuple[Any, int, dict[Any, list[dict[str, Any]]]]] = {}
        self.data: dict[str, list[dict[str, Any]]] = {
            "projects": [],
            "tasks": [],
            "teams": [],
            "ideas": [],
            "resources": [],
            "costPlans": [],
            "costplandetails": [],
            "benefitPlans": [],
            "benefitplandetails": [],
        }
        self._render()
        self.add_ideas()

    # -- rendering the world -------------------------------------------------------------------

    def local(self, moment: datetime | None) -> str | None:
        """A moment as Clarity writes it: naive local time of the server, whole seconds."""
        if moment is None:
            return None
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S")

    def now(self) -> str:
        return self.local(datetime.now(UTC)) or ""

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _render(self) -> None:
        w = self.world
        resource_ids: dict[str, int] = {}
        names = {d.id: d.name for d in w.departments}
        for i, person in enumerate(w.people):
            native = 5_100_000 + i
            resource_ids[person.id] = native
            self.data["resources"].append(
                {
                    "_internalId": native,
                    "code": person.upn.split("@")[0],
                    "firstName": person.first_name,
                    "lastName": person.last_name,
                    "fullName": f"{person.last_name}, {person.first_name}",
                    "emailAddress": person.upn,
                    "isActive": person.active,
                    # A financial attribute since 16.1.1: the department lookup.
                    "department": {
                        "displayValue": names.get(person.department, person.department),
                        "_type": "lookup",
                        "id": person.department.upper(),
                    },
                    "location": person.office,
                    "resourceClass": None,
                    "createdDate": self.local(person.created),
                    "lastUpdatedDate": self.local(person.updated),
                }
            )
        people = {p.id: p for p in w.people}
        departments = {d.id: d.name for d in w.departments}

        def manager(person_id: str | None) -> dict[str, Any] | None:
            if person_id is None or person_id not in people:
                return None
            p = people[person_id]
            return {
                "displayValue": f"{p.last_name}, {p.first_name}",
                "_type": "lookup",
                "id": str(resource_ids[person_id]),
            }

        work = [x for x in w.work if x.platform == "clarity"]
        project_ids: dict[str, int] = {}
        for item in (x for x in work if x.kind in ("program", "project")):
            native = self._id()
            project_ids[item.id] = native
            status, progress, active, financial = WORK_STATE[item.state]
            baseline = item.kind == "project" and item.state not in ("proposed",)
            self.data["projects"].append(
                {
                    "_internalId": native,
                    "code": item.number,
                    "name": item.name,
                    "description": f"{item.name} ({departments.get(item.department, item.department)})",
                    "isProgram": item.kind == "program",
                    "isActive": active,
                    "isTemplate": False,
                    "isApproved": status == "1",
                    "manager": manager(item.manager_id),
                    "status": lookup("INVESTMENT_OBJ_STATUS", status),
                    "progress": lookup("INVESTMENT_OBJ_PROGRESS", progress),
                    "financialStatus": lookup("PAC_PROJECT_STATUS", financial),
                    "statusIndicator": lookup("INVESTMENT_STATUS_INDICATOR", HEALTH[item.health]),
                    "scheduleStart": self.local(item.actual_start or item.planned_start),
                    "scheduleFinish": self.local(item.actual_finish or item.planned_finish),
                    "baselineStart": self.local(item.planned_start) if baseline else None,
                    "baselineFinish": self.local(item.planned_finish) if baseline else None,
                    "percentComplete": round(item.percent_complete / 100, 4),
                    "priority": min(36, (item.priority - 1) * 8 + 2),
                    "budgetCostTotal": round(item.budget, 2),
                    "planCostTotal": round(item.forecast_cost, 2),
                    "currencyCode": lookup("LOOKUP_ACTIVE_CURRENCIES", "USD"),
                    "c_department": {
                        "displayValue": departments.get(item.department, item.department),
                        "_type": "lookup",
                        "id": item.department,
                    },
                    "c_crosswalkRef": None,
                    "c_businessOwner": manager(item.sponsor_id),
                    "createdDate": self.local(item.created),
                    "lastUpdatedDate": self.local(item.updated),
                }
            )
        for template in ("Standard IT Project Template", "Capital Project Template"):
            self.data["projects"].append(
                {
                    "_internalId": self._id(),
                    "code": "csk." + template.split()[0].lower(),
                    "name": template,
                    "description": None,
                    "isProgram": False,
                    "isActive": True,
                    "isTemplate": True,
                    "isApproved": False,
                    "manager": None,
                    "status": lookup("INVESTMENT_OBJ_STATUS", "0"),
                    "progress": lookup("INVESTMENT_OBJ_PROGRESS", "0"),
                    "financialStatus": None,
                    "statusIndicator": None,
                    "scheduleStart": None,
                    "scheduleFinish": None,
                    "baselineStart": None,
                    "baselineFinish": None,
                    "percentComplete": 0,
                    "priority": 10,
                    "budgetCostTotal": None,
                    "planCostTotal": None,
                    "currencyCode": lookup("LOOKUP_ACTIVE_CURRENCIES", "USD"),
                    "c_department": None,
                    "c_crosswalkRef": None,
                    "c_businessOwner": None,
                    "createdDate": self.local(w.now - timedelta(days=900)),
                    "lastUpdatedDate": self.local(w.now - timedelta(days=900)),
                }
            )
        children: dict[str, list[Any]] = {}
        for item in work:
            if item.kind in ("task", "milestone") and item.parent_id in project_ids:
                children.setdefault(item.parent_id, []).append(item)
        for parent_id, tasks in children.items():
            project = project_ids[parent_id]
            first: int | None = None
            for sort, item in enumerate(tasks, start=1):
                native = self._id()
                status = {"done": "2", "proposed": "0", "approved": "0"}.get(item.state, "1")
                # Milestones hang under the first work package: parentTask is then an integer.
                parent: Any = first if (item.kind == "milestone" and first) else f"prj_{project}"
                first = first or native
                self.data["tasks"].append(
                    {
                        "_internalId": native,
                        "_projectId": project,
                        "code": item.number,
                        "name": item.name,
                        "parentTask": parent,
                        "isTask": item.kind == "task",
                        "taskOwner": manager(item.manager_id),
                        "isMilestone": item.kind == "milestone",
                        "isKey": item.kind == "milestone",
                        "isSubProject": False,
                        "hasSubtasks": native == first and len(tasks) > 1,
                        "percentComplete": round(item.percent_complete / 100, 4),
                        "baselineStartDate": self.local(item.planned_start),
                        "baselineFinishDate": self.local(item.planned_finish),
                        "hasAssignments": True,
                        "startDate": self.local(item.actual_start or item.planned_start),
                        "finishDate": self.local(item.actual_finish or item.planned_finish),
                        "wbsSort": sort,
                        "status": lookup("PRTASK_STATUS", status),
                        "lastUpdatedDate": self.local(item.updated),
                    }
                )
        for n, project in enumerate(project_ids.values()):
            # Two or three team members per investment, with their allocation in hours.
            for k in range(2 + n % 2):
                person = w.people[(n * 7 + k * 13) % len(w.people)]
                self.data["teams"].append(
                    {
                        "_internalId": self._id(),
                        "_projectId": project,
                        "resource": {
                            "displayValue": f"{person.last_name}, {person.first_name}",
                            "_type": "lookup",
                            "id": str(resource_ids[person.id]),
                        },
                        "requirementName": None,
                        "bookingStatus": lookup("BOOKING_STATUS", "H" if k == 0 else "S"),
                        "allocation": float(160 * (1 + (n + k) % 4)),
                        "hardAllocation": float(160 * (1 + (n + k) % 4)) if k == 0 else 0.0,
                        "lastUpdatedDate": self.local(w.now - timedelta(days=10 + n % 30)),
                    }
                )
        plans: dict[tuple[str, str], dict[str, Any]] = {}
        for line in w.plans:
            if line.work_id not in project_ids:
                continue
            investment = project_ids[line.work_id]
            kind = line.plan.upper()
            key = (line.work_id, kind)
            header = plans.get(key)
            if header is None:
                header = {
                    "_internalId": self._id(),
                    "code": f"{kind[:3]}-{investment}",
                    "name": line.plan_name,
                    "investmentId": investment,
                    "planType": kind if kind != "BENEFIT" else None,
                    "isPlanOfRecord": True,
                    "periodType": lookup("PERIOD_TYPE", "MONTHLY"),
                    "lastUpdatedDate": self.local(line.updated),
                    "_lines": {},
                }
                plans[key] = header
                self.data["benefitPlans" if kind == "BENEFIT" else "costPlans"].append(header)
            group = (line.cost_type, line.category)
            detail = header["_lines"].get(group)
            if detail is None:
                detail = {
                    "_internalId": self._id(),
                    "planId": header["_internalId"],
                    "planCode": header["code"],
                    "planName": header["name"],
                    "investmentId": investment,
                    "isPlanOfRecord": True,
                    "currencyCode": lookup("LOOKUP_ACTIVE_CURRENCIES", "USD"),
                    "lastUpdatedDate": header["lastUpdatedDate"],
                    "_segments": [],
                }
                if kind == "BENEFIT":
                    code = "SAVE" if line.category == "Cost savings" else "REV"
                    detail["category"] = lookup("BENEFIT_CATEGORY", code)
                    self.data["benefitplandetails"].append(detail)
                else:
                    detail["planType"] = kind
                    detail["costType"] = lookup("LOOKUP_FIN_COSTTYPECODE", line.cost_type.upper())
                    detail["transactionClass"] = lookup(
                        "TRANSACTION_CLASS", CATEGORY_CODES.get(line.category, "SVC")
                    )
                    self.data["costplandetails"].append(detail)
                header["_lines"][group] = detail
            detail["_segments"].append((line.period, line.amount))

    def children(
        self, collection: str, key: int, field: str = "_projectId"
    ) -> list[dict[str, Any]]:
        """The rows of ``collection`` whose ``field`` is ``key``, through an index kept per
        collection (a tenant of 200,000 tasks answers per project without a scan)."""
        with self.lock:
            rows = self.data[collection]
            cached = self._index.get((collection, field))
            if cached is None or cached[0] is not rows or cached[1] != len(rows):
                index: dict[Any, list[dict[str, Any]]] = {}
                for row in rows:
                    index.setdefault(row.get(field), []).append(row)
                cached = (rows, len(rows), index)
                self._index[(collection, field)] = cached
            return list(cached[2].get(key, []))

    # -- test hooks ----------------------------------------------------------------------------

    def find(self, collection: str, native_id: int) -> dict[str, Any] | None:
        with self.lock:
            return next((r for r in self.data[collection] if r["_internalId"] == native_id), None)

    def touch(self, collection: str, native_id: int, **changes: Any) -> dict[str, Any]:
        """Edit a record as a user would: its ``lastUpdatedDate`` becomes now (local time)."""
        with self.lock:
            row = self.find(collection, native_id)
            if row is None:
                raise KeyError(native_id)
            row.update(changes)
            row.setdefault("lastUpdatedDate", None)
            if "lastUpdatedDate" not in changes:
                row["lastUpdatedDate"] = self.now()
            return row

    def delete(self, collection: str, native_id: int) -> None:
        """Remove a record (an administrator's purge: REST cannot delete projects)."""
        with self.lock:
            self.data[collection] = [
                r for r in self.data[collection] if r["_internalId"] != native_id
            ]
            if collection == "projects":
                for child in ("tasks", "teams"):
                    self.data[child] = [
                        r for r in self.data[child] if r.get("_projectId") != native_id
                    ]

    def has(self, native_id: str) -> bool:
        with self.lock:
            rows = (r for found in self.data.values() for r in found)
            return any(str(r.get("_internalId")) == native_id for r in rows)

    def forget(self, native_id: str) -> bool:
        with self.lock:
            for collection, rows in self.data.items():
                if any(str(r.get("_internalId")) == native_id for r in rows):
                    self.delete(collection, int(native_id))
                    return True
        return False

    # -- HTTP ----------------------------------------------------------------------------------

    content_type = "application/json"

    def _error(
        self, status: int, message: str, code: str, resource_id: Any = None, extra: Any = None
    ) -> Response:
        payload = {
            "resourceId": resource_id,
            "httpStatus": str(status),
            "errorMessage": message,
            "errorCode": code,
        }
        return self.json(status, payload, extra)

    def throttled(self, wait: int) -> Response:
        return self._error(
            429, "Too many requests.", "api.tooManyRequests", extra=[("Retry-After", str(wait))]
        )

    def unavailable(self) -> Response:
        return self._error(503, "Service unavailable.", "api.serviceUnavailable")

    def _who(self, environ: dict[str, Any], prefix: str) -> tuple[str | None, Response | None]:
        """The authenticated user, or the answer that refuses the request."""
        given = self.credentials(environ)
        token = environ.get("HTTP_AUTHTOKEN")
        with self.lock:
            users = dict(self.users)
            sessions = dict(self.sessions)
        refused = self._error(401, "API-1001 : Invalid user credentials.", "api.invalidCredentials")
        if token:
            if self.expired_sessions:
                return None, ("200 OK", [("Content-Type", "text/html; charset=utf-8")], LOGIN_PAGE)
            user = sessions.get(token)
            return (user, None) if user else (None, refused)
        if given.scheme == "bearer":
            client = environ.get("HTTP_X_API_PPM_CLIENT")
            if client not in self.clients:
                return None, self._error(
                    401, "API-1020 : The client is not valid or is inactive.", "api.invalidClient"
                )
            user = next((u for u, secret in users.items() if secret == given.secret), None)
            if user is None:
                return None, refused
            if self.key_expires is not None and datetime.now(UTC) >= self.key_expires:
                return None, self._error(
                    401, "API-1021 : The API key has expired.", "api.apiKeyExpired"
                )
            return user, None
        if given.scheme == "basic":
            if prefix == TOKENS:  # the SSO path forces token auth
                return None, refused
            ok = given.user and users.get(given.user) == given.secret
            return (given.user, None) if ok else (None, refused)
        return None, refused

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        self.host = environ.get("HTTP_HOST", self.host)
        prefix = TOKENS if path.startswith(TOKENS) else PUBLIC
        if not path.startswith(prefix):
            return self._error(404, f"API-1004 : {path} not found.", "api.invalidResourceId")
        rest = path[len(prefix) :].strip("/")
        parts = rest.split("/") if rest else []
        listing = (
            method == "GET" and len(parts) in (1, 3) and parts[0] not in ("describe", "lookups")
        )
        fault, answer = self.fault(listing=listing)
        if answer:
            return answer
        if parts == ["auth", "login"] and method == "POST" and prefix == PUBLIC:
            user, refusal = self._who(
                {"HTTP_AUTHORIZATION": environ.get("HTTP_AUTHORIZATION", "")}, prefix
            )
            if user is None:
                return refusal or self._error(401, "Invalid", "api.invalidCredentials")
            token = f"{5_096_019}__{secrets.token_hex(16).upper()}"
            with self.lock:
                self.sessions[token] = user
            return self.json(
                "200 OK", {"authToken": token, "_self": f"https://{self.host}{PUBLIC}/auth/login"}
            )
        user, refusal = self._who(environ, prefix)
        if user is None:
            assert refusal is not None
            return refusal
        if parts == ["auth", "logout"] and method == "DELETE":
            with self.lock:
                self.sessions.pop(environ.get("HTTP_AUTHTOKEN", ""), None)
            return self.json("200 OK", {})
        if "API - Access" in self.missing_rights:
            return self._error(
                401, "API-1005 : The user does not have the API - Access right.", "api.noApiAccess"
            )
        if not parts:
            return self._error(404, "API-1004 : Not found.", "api.invalidResourceId")
        params = self.params(query)
        head = parts[0]
        if head not in RIGHTS:
            return self._error(
                404, f"API-1004 : Resource {head} not found.", "api.invalidResourceId"
            )
        right = RIGHTS[head]
        if len(parts) >= 3 and parts[0] == "projects":
            right = RIGHTS.get(parts[2], right)
        if right and right in self.missing_rights:
            return self._error(
                401,
                f"API-1006 : The user does not have the {right} right.",
                "api.accessDenied",
                resource_id=head,
            )
        if head == "describe":
            return self._describe(parts[1] if len(parts) > 1 else None)
        if head == "virtual" and parts[1:] == ["userProfile"]:
            return self.json(
                "200 OK",
                {
                    "_internalId": 1,
                    "firstName": user,
                    "lastName": "",
                    "language": "en",
                    "userName": user,
                    "locale": "en_US",
                    "email": f"{user}@city.example.gov",
                },
            )
        if head == "lookups" and len(parts) == 3 and parts[2] == "lookupValues":
            values = [
                {"_internalId": i, "id": vid, "displayValue": label}
                for i, (vid, label) in enumerate(LOOKUPS.get(parts[1], []), start=1)
            ]
            return self._page(values, params, path, query, cap=PARENT_CAP, fields=None)
        if method == "POST" and len(parts) == 1 and head in ("projects", "ideas"):
            return self._create(environ, head)
        if method != "GET":
            return self._error(
                405, f"API-1007 : {method} is not supported.", "api.methodNotAllowed"
            )
        if head == "projects" and len(parts) == 3 and parts[2] in ("tasks", "teams"):
            try:
                project = int(parts[1])
            except ValueError:
                return self._error(404, "API-1004 : Not found.", "api.invalidResourceId")
            if self.find("projects", project) is None:
                return self._error(
                    404,
                    f"API-1004 : Project {project} not found.",
                    "api.invalidResourceId",
                    project,
                )
            rows = self.children(parts[2], project)
            return self._collection(
                parts[2], rows, params, path, query, cap=CHILD_CAP, corrupt=fault == "malformed"
            )
        if len(parts) == 2:
            try:
                row = self.find(head, int(parts[1]))
            except (ValueError, KeyError):
                row = None
            if row is None:
                return self._error(
                    404,
                    f"API-1004 : {head} {parts[1]} not found.",
                    "api.invalidResourceId",
                    parts[1],
                )
            return self.json("200 OK", self._shape(head, row, None, params))
        if len(parts) == 1 and head in self.data:
            with self.lock:
                rows = list(self.data[head])
            cap = CHILD_CAP if head.endswith("details") else PARENT_CAP
            return self._collection(
                head, rows, params, path, query, cap=cap, corrupt=fault == "malformed"
            )
        return self._error(404, f"API-1004 : {rest} not found.", "api.invalidResourceId")

    # -- reading -------------------------------------------------------------------------------

    def attributes(self, collection: str) -> list[str]:
        """The API ids of a resource's attributes (custom ones only when API-enabled)."""
        with self.lock:
            rows = self.data.get(collection) or []
            stock = sorted({k for r in rows[:50] for k in r if not k.startswith("_")})
        stock = [a for a in stock if a not in CUSTOM]
        if collection in ("tasks", "teams"):
            stock.append("_parent")
        if collection in ("costplandetails", "benefitplandetails"):
            stock += ["cost" if collection == "costplandetails" else "benefit", "planType"]
        if collection == "ideas" and not stock:
            stock = ["code", "name"]
        custom = [
            a for a, (where, _l) in CUSTOM.items() if collection in where and a in self.api_enabled
        ]
        return sorted(set(stock)) + custom + ["_internalId", "lastUpdatedDate"]

    def _describe(self, alias: str | None) -> Response:
        visible = [r for r in self.data if not (RIGHTS.get(r) and RIGHTS[r] in self.missing_rights)]
        if alias is None:
            return self.json(
                "200 OK",
                {
                    "_results": [
                        {"resourceName": r, "_self": f"https://{{host}}{PUBLIC}/describe/{r}"}
                        for r in visible
                    ]
                },
            )
        if alias not in visible:
            return self._error(
                404, f"API-1004 : Resource {alias} not found.", "api.invalidResourceId"
            )
        attributes = [
            {
                "name": name,
                "label": CUSTOM[name][1] if name in CUSTOM else name,
                "dataType": "lookup" if name in LINKS or name == "c_department" else "string",
                "isRequired": name in ("code", "name"),
                "isReadOnly": name in ("_internalId", "lastUpdatedDate", "createdDate"),
                "isExpandable": name == "manager",
                "isCustom": name in CUSTOM,
            }
            for name in self.attributes(alias)
        ]
        methods = ["GET", "POST", "PATCH", "PUT"] if alias in ("projects", "ideas") else ["GET"]
        return self.json(
            "200 OK",
            {
                "resourceName": alias,
                "methods": methods,
                "attributes": attributes,
                "_self": f"https://{{host}}{PUBLIC}/describe/{alias}",
            },
        )

    def _shape(
        self, collection: str, row: dict[str, Any], fields: list[str] | None, params: dict[str, str]
    ) -> dict[str, Any]:
        hidden = {a for a in CUSTOM if a not in self.api_enabled}
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key.startswith("_") and key != "_internalId":
                continue
            if key in hidden or (fields is not None and key not in fields):
                continue
            out[key] = value
        base = f"https://{{host}}{PUBLIC}"
        if collection in ("tasks", "teams"):
            out["_parent"] = f"{base}/projects/{row['_projectId']}"
            out["_self"] = f"{base}/projects/{row['_projectId']}/{collection}/{row['_internalId']}"
        else:
            out["_self"] = f"{base}/{collection}/{row['_internalId']}"
        if collection == "projects" and fields is None:
            out["tasks"] = {"_self": f"{base}/projects/{row['_internalId']}/tasks"}
            out["teams"] = {"_self": f"{base}/projects/{row['_internalId']}/teams"}
        if collection in ("costplandetails", "benefitplandetails"):
            attribute = "cost" if collection == "costplandetails" else "benefit"
            if fields is None or attribute in fields:
                out[attribute] = self._tsv(row["_segments"], params.get("tsvParams"))
        return out

    def _tsv(self, segments: list[tuple[date, float]], tsv_params: str | None) -> dict[str, Any]:
        """A money curve: its total only, unless ``tsvParams`` asks for monthly periods."""
        total = round(sum(amount for _p, amount in segments), 2)
        curve: dict[str, Any] = {
            "isFiscal": False,
            "curveType": "value",
            "total": total,
            "dataType": "money",
            "_type": "tsv",
        }
        match = re.search(
            r"periods=\(\s*\w+\s*,\s*months\s*,\s*(\d+)\s*,\s*(\d{4}-\d{2}-\d{2})T[\d:]+\s*(?:,\s*(\w+))?\)",
            tsv_params or "",
        )
        if not match:
            return curve
        count, start = int(match.group(1)), date.fromisoformat(match.group(2))
        first = date(start.year, start.month, 1)
        months = first.year * 12 + first.month - 1 + count
        last = date(months // 12, months % 12 + 1, 1)
        curve["isFiscal"] = match.group(3) == "fiscal"
        curve["start"] = f"{first.isoformat()}T00:00:00"
        curve["finish"] = f"{last.isoformat()}T00:00:00"
        chosen = []
        for period, amount in sorted(segments):
            if first <= period < last:
                finish = date(period.year + period.month // 12, period.month % 12 + 1, 1)
                chosen.append(
                    {
                        "start": f"{period.isoformat()}T00:00:00",
                        "finish": f"{(finish - timedelta(days=1)).isoformat()}T00:00:00",
                        "value": amount,
                    }
                )
        curve["segmentList"] = {
            "total": round(sum(s["value"] for s in chosen), 2),
            "defaultValue": 0,
            "segments": chosen,
        }
        return curve

    def _collection(
        self,
        collection: str,
        rows: list[dict[str, Any]],
        params: dict[str, str],
        path: str,
        query: str,
        *,
        cap: int,
        corrupt: bool = False,
    ) -> Response:
        attributes = set(self.attributes(collection))
        fields = None
        if params.get("fields"):
            fields = [f.strip() for f in params["fields"].split(",") if f.strip()]
            unknown = [f for f in fields if f not in attributes]
            if unknown:
                return self._error(
                    400,
                    f"Attribute(s) '{', '.join(unknown)}' are not supported.",
                    "api.invalidAttribute",
                )
        text = params.get("filter")
        if collection in ("costPlans", "costplandetails") and not (
            text and "investmentId" in text and "planType" in text
        ):
            return self._error(
                400,
                "API-1010 : Cost plan requests need filter criteria with investmentId and planType.",
                "api.mandatoryFilterMissing",
            )
        if collection in ("benefitPlans", "benefitplandetails") and not (
            text and "investmentId" in text
        ):
            return self._error(
                400,
                "API-1010 : Benefit plan requests need filter criteria with investmentId.",
                "api.mandatoryFilterMissing",
            )
        if text:
            investment = re.match(r"^\(*investmentId = (\d+)\)", text)
            if investment and collection.endswith(("details", "Plans")):
                rows = self.children(collection, int(investment.group(1)), "investmentId")
            if "instSecObjCodes" in text or "::" in text:
                return self._error(400, "API-1008 : Invalid filter.", "api.invalidFilter")
            try:
                predicate = parse_filter(text, attributes)
            except FilterError as exc:
                return self._error(400, f"API-1008 : {exc}", "api.invalidFilter")
            with self.lock:
                rows = [r for r in rows if predicate(r)]
        sort = params.get("sort")
        if sort:
            for term in reversed([t.strip() for t in sort.split(",") if t.strip()]):
                name, _sp, direction = term.partition(" ")
                if name not in attributes:
                    return self._error(
                        400, f"Attribute(s) '{name}' are not supported.", "api.invalidAttribute"
                    )
                rows.sort(
                    key=lambda r, n=name: _sort_key(r.get(n)),
                    reverse=direction.strip().lower() == "desc",
                )
        return self._page(
            rows,
            params,
            path,
            query,
            cap=cap,
            fields=fields,
            collection=collection,
            corrupt=corrupt,
        )

    def _page(
        self,
        rows: list[dict[str, Any]],
        params: dict[str, str],
        path: str,
        query: str,
        *,
        cap: int,
        fields: list[str] | None,
        collection: str = "",
        corrupt: bool = False,
    ) -> Response:
        try:
            offset = max(0, int(params.get("offset") or 0))
            limit = int(params.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            return self._error(400, "API-1009 : Invalid offset or limit.", "api.invalidParameter")
        size = max(1, min(limit, cap))  # the hard limits cannot be increased: the cap is served
        total = len(rows)
        with self.lock:
            start = offset - 1 if (self.drifting_offsets and offset > 0) else offset
            chosen = rows[start : offset + size]
            shaped = [
                self._shape(collection, r, fields, params) if collection else dict(r)
                for r in chosen
            ]
            reached = {r["_internalId"] for r in rows[: offset + size]}
            ahead = (r for r in self.data.get(collection, ()) if r["_internalId"] not in reached)
            self.page_served(ahead, lambda row: row.update(lastUpdatedDate=self.now()))
        base = f"https://{self.host}{path}"
        envelope: dict[str, Any] = {
            "_pageSize": size,
            "_self": f"{base}?{query}" if query else base,
            "_totalCount": total,
        }
        others = {k: v for k, v in params.items() if k not in ("offset",)}
        if offset + size < total:
            if self.broken_next:
                # KB 427298: the generated link carries internal, mangled filter fragments.
                broken = "instSecObjCodes~'~(crossInvAssignees(5000001))::((lastUpdatedDate"
                envelope["_next"] = f"{base}?offset={offset + size}&filter={quote(broken)}"
            else:
                nxt = {**others, "offset": str(offset + size)}
                envelope["_next"] = f"{base}?" + "&".join(
                    f"{k}={quote(v, safe='')}" for k, v in nxt.items()
                )
        if offset > 0:
            prev = {**others, "offset": str(max(0, offset - size))}
            envelope["_previous"] = f"{base}?" + "&".join(
                f"{k}={quote(v, safe='')}" for k, v in prev.items()
            )
        envelope["_results"] = shaped
        envelope["_recordsReturned"] = len(shaped)
        answer = self.json("200 OK", envelope)
        return self.cut(answer) if corrupt else answer

    # -- writing -------------------------------------------------------------------------------

    def _create(self, environ: dict[str, Any], collection: str) -> Response:
        try:
            body = self.json_body(environ)
        except ValueError:
            return self._error(
                400, "API-1002 : The request body cannot be parsed.", "api.parseError"
            )
        with self.lock:
            self.bodies.append(body)
        bulk = isinstance(body, dict) and isinstance(body.get("d"), list)
        items = body["d"] if bulk else [body]
        if not all(isinstance(i, dict) for i in items):
            return self._error(
                400, "API-1002 : The request body cannot be parsed.", "api.parseError"
            )
        allowed = set(self.attributes(collection)) - {"_internalId", "lastUpdatedDate"}
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in items:
            ident = item.get("code") or item.get("name")
            problem = None
            unknown = sorted(k for k in item if k not in allowed and not k.startswith("_"))
            if unknown:
                problem = (
                    f"Attribute(s) '{', '.join(unknown)}' are not supported.",
                    "api.invalidAttribute",
                )
            elif not str(item.get("code") or "").strip():
                problem = (
                    "CMN-0007: Attribute 'code' is required.",
                    "validation.requiredFieldMissing",
                )
            elif not str(item.get("name") or "").strip():
                problem = (
                    "CMN-0007: Attribute 'name' is required.",
                    "validation.requiredFieldMissing",
                )
            else:
                with self.lock:
                    taken = any(r.get("code") == item["code"] for r in self.data[collection])
                if taken:
                    problem = (
                        f"CMN-0009: An investment with the code '{item['code']}' already exists.",
                        "validation.duplicateCode",
                    )
            if problem:
                errors.append(
                    {"resourceId": ident, "errorMessage": problem[0], "errorCode": problem[1]}
                )
                continue
            with self.lock:
                native = self._id()
                now = self.now()
                row: dict[str, Any] = {
                    a: None for a in self.attributes(collection) if not a.startswith("_")
                }
                row.update(
                    {k: v for k, v in item.items() if not k.startswith("_")},
                    _internalId=native,
                    createdDate=now,
                    lastUpdatedDate=now,
                )
                if collection == "projects":
                    row.setdefault("isTemplate", False)
                    row["isTemplate"] = bool(row.get("isTemplate"))
                    row["isActive"] = True if row.get("isActive") is None else row["isActive"]
                    row["isProgram"] = bool(row.get("isProgram"))
                    row["status"] = lookup("INVESTMENT_OBJ_STATUS", "0")
                    row["progress"] = lookup("INVESTMENT_OBJ_PROGRESS", "0")
                else:
                    row["status"] = lookup("INVESTMENT_OBJ_STATUS", "0")
                    row["workStatus"] = lookup("IDEA_WORK_STATUS", "REQUESTED")
                self.data[collection].append(row)
            link = f"https://{self.host}{PUBLIC}/{collection}/{native}"
            if str(environ.get("HTTP_X_API_FULL_RESPONSE", "")).lower() == "true":
                results.append(
                    {
                        **self._shape(collection, row, None, {}),
                        "_internalId": str(native),
                        "_self": link,
                    }
                )
            else:
                results.append({"_internalId": str(native), "_self": link})
        if not bulk:
            if errors:
                return self._error(
                    400, errors[0]["errorMessage"], errors[0]["errorCode"], errors[0]["resourceId"]
                )
            only = results[0]
            return self.json(
                "200 OK", {"_internalId": int(only["_internalId"]), "_self": only["_self"]}
            )
        return self.json(
            "200 OK",
            {
                "_self": f"https://{self.host}{PUBLIC}/{collection}",
                "_results": results,
                "_errors": errors,
            },
        )

    def add_ideas(self) -> None:
        """Serve the world's demands that the tenant holds as ideas."""
        w = self.world
        people = {p.id: i for i, p in enumerate(w.people)}
        wanted = set(w.idea_ids)
        by_work = {p["code"]: p for p in self.data["projects"]}
        clarity_projects = {x.id: x.number for x in w.work if x.platform == "clarity"}
        departments = {d.id: d.name for d in w.departments}
        for n, demand in enumerate(d for d in w.demands if d.id in wanted):
            status, work_status = IDEA_STATE[demand.state]
            converted = None
            if demand.state == "completed":
                # Converted to a project: the tenant's project that has the idea's twin, if any.
                code = clarity_projects.get(demand.project_id or "")
                project = by_work.get(code) if code else None
                if project is None and self.data["projects"]:
                    project = self.data["projects"][n % max(1, len(self.data["projects"]) - 2)]
                if project is not None:
                    converted = {
                        "displayValue": project["name"],
                        "_type": "lookup",
                        "id": str(project["_internalId"]),
                    }
            requester = people.get(demand.requester_id or "")
            person = w.people[requester] if requester is not None else None
            self.data["ideas"].append(
                {
                    "_internalId": 5_200_000 + n,
                    "code": demand.number.replace("DMND", "IDEA"),
                    "name": demand.name,
                    "description": f"{demand.name} for {departments.get(demand.department, demand.department)}",
                    "status": lookup("INVESTMENT_OBJ_STATUS", status),
                    "workStatus": lookup("IDEA_WORK_STATUS", work_status),
                    "isApproved": status == "1",
                    "isActive": demand.state not in ("rejected",),
                    "originatingRequestor": None
                    if person is None
                    else {
                        "displayValue": f"{person.last_name}, {person.first_name}",
                        "_type": "lookup",
                        "id": str(5_100_000 + requester),  # type: ignore[operator]
                    },
                    "priority": min(36, (demand.priority - 1) * 8 + 2),
                    "estimatedCost": money(demand.estimated_cost),
                    "estimatedBenefit": money(round(demand.estimated_cost * 1.4, 2)),
                    "estimatedStartDate": None,
                    "estimatedFinishDate": None,
                    "convertedProject": converted,
                    "conversionDate": self.local(demand.decided) if converted else None,
                    "approvedDate": self.local(demand.decided) if status == "1" else None,
                    "c_department": {
                        "displayValue": departments.get(demand.department, demand.department),
                        "_type": "lookup",
                        "id": demand.department,
                    },
                    "c_crosswalkRef": None,
                    "createdDate": self.local(demand.submitted),
                    "lastUpdatedDate": self.local(demand.updated),
                }
            )


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> ClarityEmulator:
    """The emulator serving ``world`` (see :class:`ClarityEmulator` for the options)."""
    return ClarityEmulator(world, faults, **kwargs)


def sandbox_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.NAME]`` keys pointing itcrosswalk at the emulator: an API key and its client."""
    return {
        "auth": {"type": "bearer", "token": secret_ref},
        "client_id": CLIENT_ID,
        "custom_fields": {"department": "c_department"},
        "full_sweep_every_days": 7,
    }
