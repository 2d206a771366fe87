"""A Project Web App on loopback: ProjectData and ProjectServer as Project Server answers them.

It serves the city's ``project_online`` work (projects, summary tasks, milestones, with leaf tasks,
assignments, baselines, issues and risks around them) and its people as enterprise resources,
following ``shared/platforms/project_online.md``:

- ``/_api/ProjectData/<Set>``: OData v3 with ``$filter`` (eq ne gt ge lt le, and/or/not,
  ``guid'..'``, ``datetime'..'``, strings, numbers, booleans, null), ``$select``, ``$top``,
  ``$skip``, ``/$count``; a 400 for an unknown property or a literal of the wrong type;
  server-driven paging with a different row limit per entity set and ``$skiptoken`` next links;
- the JSON format chosen by the Accept header: verbose (``{"d": {"results", "__next"}}``,
  ``__metadata``, ``/Date(ms)/``) or light (``{"value", "odata.nextLink"}``, ISO dates); decimals
  as strings, integers as numbers; Atom XML when no JSON is asked for;
- ``/_api/contextinfo`` and ``/_api/ProjectServer``: enterprise project types, custom fields,
  ``Projects/Add``, ``checkOut``, ``Draft/SetCustomFieldValue``, ``Draft/Update``,
  ``Draft/Publish(true)``, ``Draft/CheckIn``, queue jobs, ``deleteObject``; POSTs need a valid
  ``X-RequestDigest``; a project checked out by someone else refuses a checkout with
  ``CICOCheckedOutToOtherUser``;
- authentication: NTLM (a real challenge/response, verified with pyspnego's NTLMv2 primitives;
  a ``FedAuth`` cookie then carries the session, as SharePoint's Windows claims do), basic, a
  bearer token (a user's secret, or one issued by the emulated Entra endpoints below), and the
  refusal of app-only tokens; a bad or missing credential answers 401, or, with ``signin_trap``,
  SharePoint's HTML sign-in page (``"200"``) or a redirect to it (``"302"``);
- the Entra ID sign-in (device code, refresh token, client credentials for registered ``apps``)
  from :mod:`itcrosswalk.sandbox.entra`, any tenant name accepted;
- faults from :class:`itcrosswalk.sandbox.faults.Faults` (latency, 429 with ``Retry-After``, 503,
  truncated bodies, rows changing between pages).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from ...sandbox.entra import Entra
from ...sandbox.faults import Faults
from ...sandbox.world import World

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


def demo_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.X]`` keys that point itcrosswalk at this emulator (for ``crosswalk demo``)."""
    return {
        "auth": {"type": "ntlm", "user": f"CITY\\{user}", "password": secret_ref},
        "custom_fields": dict(DEMO_CUSTOM_FIELDS),
    }


class ODataError(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


# -- $filter --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<guid>guid'[0-9a-fA-F-]{36}')|(?P<dt>datetime'[^']*')"
    r"|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?[mMdDfFlL]?)"
    r"|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<word>[A-Za-z_][\w]*))",
    re.UNICODE,
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ODataError(400, f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    return out


class FilterParser:
    """OData v3 ``$filter`` over one entity type: comparisons joined by and/or/not."""

    def __init__(self, text: str, schema: dict[str, str], type_name: str, zone: tzinfo) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.schema = schema
        self.type_name = type_name
        self.zone = zone

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        expr = self._or()
        if self.pos != len(self.tokens):
            raise ODataError(
                400, f"Syntax error at position {self.tokens[self.pos][2]} in '{self.text}'."
            )
        return expr

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise ODataError(
                400, f"Expression expected at position {len(self.text)} in '{self.text}'."
            )
        self.pos += 1
        return token

    def _or(self) -> Callable[[dict[str, Any]], bool]:
        left = self._and()
        while (t := self._peek()) and t[0] == "word" and t[1] == "or":
            self.pos += 1
            right = self._and()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def _and(self) -> Callable[[dict[str, Any]], bool]:
        left = self._unary()
        while (t := self._peek()) and t[0] == "word" and t[1] == "and":
            self.pos += 1
            right = self._unary()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def _unary(self) -> Callable[[dict[str, Any]], bool]:
        token = self._peek()
        if token and token[0] == "word" and token[1] == "not":
            self.pos += 1
            inner = self._unary()
            return lambda r: not inner(r)
        if token and token[0] == "lp":
            self.pos += 1
            inner = self._or()
            closing = self._take()
            if closing[0] != "rp":
                raise ODataError(
                    400, f"')' or operator expected at position {closing[2]} in '{self.text}'."
                )
            return inner
        return self._comparison()

    def _comparison(self) -> Callable[[dict[str, Any]], bool]:
        kind, name, at = self._take()
        if kind != "word":
            raise ODataError(400, f"Syntax error at position {at} in '{self.text}'.")
        if name in ("substringof", "startswith", "endswith", "year", "month", "day"):
            raise ODataError(400, f"Unknown function '{name}' at position {at}.")
        if name not in self.schema:
            raise ODataError(
                400,
                f"No property '{name}' exists in type 'ReportingData.{self.type_name}' at position {at}.",
            )
        op_kind, op, op_at = self._take()
        if op_kind != "word" or op not in _OPS:
            raise ODataError(400, f"Syntax error at position {op_at} in '{self.text}'.")
        lit_kind, literal, lit_at = self._take()
        edm = self.schema[name]
        value = self._literal(lit_kind, literal, lit_at, edm, op)

        def compare(row: dict[str, Any]) -> bool:
            actual = row.get(name)
            if edm == T and isinstance(actual, datetime):
                actual = actual.astimezone(self.zone).replace(tzinfo=None, microsecond=0)
            if value is None or actual is None:
                return (
                    (op == "eq") == (value is None and actual is None)
                    if op in ("eq", "ne")
                    else False
                )
            if edm == G:
                actual = str(actual).lower()
            return {
                "eq": actual == value,
                "ne": actual != value,
                "gt": actual > value,
                "ge": actual >= value,
                "lt": actual < value,
                "le": actual <= value,
            }[op]

        return compare

    def _literal(self, kind: str, literal: str, at: int, edm: str, op: str) -> Any:
        if kind == "word" and literal == "null":
            return None
        expected = {G: "guid", T: "dt", S: "str", B: "word"}.get(edm, "num")
        if kind != expected or (edm == B and literal not in ("true", "false")):
            clr = {
                G: "System.Guid",
                T: "System.DateTime",
                S: "System.String",
                B: "System.Boolean",
            }.get(edm, "System.Decimal")
            raise ODataError(
                400,
                f"Operator '{op}' incompatible with operand types 'System.Nullable`1[{clr}]' and "
                f"the literal at position {at}.",
            )
        if kind == "guid":
            return literal[5:-1].lower()
        if kind == "dt":
            try:
                return datetime.fromisoformat(literal[9:-1])
            except ValueError:
                raise ODataError(
                    400, f"Unrecognized 'Edm.DateTime' literal '{literal}' at position {at}."
                ) from None
        if kind == "str":
            return literal[1:-1].replace("''", "'")
        if edm == B:
            return literal == "true"
        return float(literal.rstrip("mMdDfFlL"))


# -- NTLM ------------------------------------------------------------------------------------------


class NtlmAcceptor:
    """The server side of NTLMv2 for the users the emulator knows (pyspnego's primitives)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {name.split("\\")[-1].lower(): secret for name, secret in users.items()}
        self.challenges: dict[str, tuple[bytes, float]] = {}
        self.lock = threading.Lock()

    def challenge(self, token: bytes) -> tuple[str, str]:
        """A type 2 message for a type 1; returns (header value, cookie key of this challenge)."""
        from spnego._ntlm_raw.messages import (
            AvId,
            Challenge,
            FileTime,
            Negotiate,
            NegotiateFlags,
            TargetInfo,
        )

        negotiate = Negotiate.unpack(token)
        flags = (
            negotiate.flags
            | NegotiateFlags.request_target
            | NegotiateFlags.ntlm
            | NegotiateFlags.always_sign
            | NegotiateFlags.target_info
            | NegotiateFlags.target_type_server
        )
        if flags & NegotiateFlags.unicode:
            flags &= ~NegotiateFlags.oem
        server_challenge = os.urandom(8)
        info = TargetInfo()
        info[AvId.nb_computer_name] = "PWA"
        info[AvId.nb_domain_name] = "CITY"
        info[AvId.dns_computer_name] = "pwa.city.example.gov"
        info[AvId.timestamp] = FileTime.now()
        message = Challenge(flags, server_challenge, target_name="CITY", target_info=info)
        key = secrets.token_hex(8)
        with self.lock:
            now = time.monotonic()
            self.challenges = {k: v for k, v in self.challenges.items() if now - v[1] < 120}
            self.challenges[key] = (server_challenge, now)
        return "NTLM " + base64.b64encode(message.pack()).decode(), key

    def authenticate(self, token: bytes, key: str | None) -> str | None:
        """The user a type 3 message proves, or None."""
        from spnego._ntlm_raw.crypto import compute_response_v2, ntowfv1, ntowfv2
        from spnego._ntlm_raw.messages import Authenticate, NTClientChallengeV2

        auth = Authenticate.unpack(token)
        user = (auth.user_name or "").lower()
        password = self.users.get(user)
        response = auth.nt_challenge_response or b""
        if password is None or len(response) <= 24:
            return None  # unknown user, or NTLMv1, which the emulated server refuses
        with self.lock:
            candidates = (
                [self.challenges[key][0]]
                if key in self.challenges
                else [c for c, _t in self.challenges.values()]
            )
        nt_hash = ntowfv2(auth.user_name or "", ntowfv1(password), auth.domain_name)
        client = NTClientChallengeV2.unpack(response[16:])
        for server_challenge in candidates:
            expected, _lm, _key = compute_response_v2(
                nt_hash,
                server_challenge,
                client.challenge_from_client,
                client.time_stamp,
                client.av_pairs,
            )
            if expected == response:
                with self.lock:
                    self.challenges.pop(key or "", None)
                return user
        return None


# -- the emulator ----------------------------------------------------------------------------------


@dataclass
class ServerProject:
    """A project as ProjectServer holds it: published values, a draft, and who has it checked out."""

    id: str
    name: str
    ept_id: str
    description: str = ""
    start: datetime | None = None
    custom: dict[str, str] = field(default_factory=dict)
    draft_custom: dict[str, str] = field(default_factory=dict)
    checked_out_by: str | None = None
    pending: dict[str, str] | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    draft_tasks: list[dict[str, Any]] = field(default_factory=list)
    pending_tasks: list[dict[str, Any]] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class ProjectServerEmulator:
    """The WSGI app. ``sets`` holds the ProjectData rows, typed (datetimes aware, decimals float)."""

    def __init__(
        self,
        world: World,
        faults: Faults,
        *,
        users: dict[str, str],
        page_limits: dict[str, int] | None = None,
        signin_trap: str | None = None,
        missing_sets: Iterable[str] = (),
        zone: str = "UTC",
        token_lifetime: int = 3600,
        ntlm: bool = True,
        hidden_properties: dict[str, set[str]] | None = None,
        link_host: str | None = None,
        apps: dict[str, str] | None = None,
        cloud: str = "global",
    ) -> None:
        self.world = world
        self.faults = faults
        self.users = dict(users)
        self.page_limits = {**PAGE_LIMITS, **(page_limits or {})}
        self.signin_trap = signin_trap
        self.missing_sets = set(missing_sets)
        self.zone = ZoneInfo(zone)
        self.ntlm = NtlmAcceptor(self.users) if ntlm else None
        # An older or trimmed instance lacks some properties (a 400 when a query names them).
        self.schema = {
            name: {
                k: v
                for k, v in props.items()
                if k not in (hidden_properties or {}).get(name, set())
            }
            for name, props in SCHEMA.items()
        }
        # Alternate access mappings: next links naming the server's internal host.
        self.link_host = link_host
        self.lock = threading.RLock()
        self.sets: dict[str, list[dict[str, Any]]] = {name: [] for name in SCHEMA}
        self.custom_ids = {
            name: "Custom_" + guid("cf", name).replace("-", "") for name in CUSTOM_FIELDS
        }
        self.server_projects: dict[str, ServerProject] = {}
        self.digests: dict[str, float] = {}
        self.sessions: dict[str, str] = {}  # FedAuth cookie -> user
        self.entra = Entra(
            users=self.users, apps=apps or {}, token_lifetime=token_lifetime, cloud=cloud
        )
        """The Entra ID sign-in (any tenant name; ``entra.pending()``/``approve()`` play the
        person at the browser, ``entra.token_lifetime`` how long access tokens really live)."""
        self.jobs: dict[str, int] = {}
        self.fail_actions: dict[str, str] = {}
        """Draft action -> the PJClientCallableException it answers with (a test's switch)."""
        self.requests_seen: list[str] = []
        self._build()

    # -- the world as ProjectData rows -----------------------------------------------------------

    def _build(self) -> None:
        people = {p.id: p for p in self.world.people}
        departments = {d.id: d.name for d in self.world.departments}
        work = [w for w in self.world.work if w.platform == "project_online"]
        projects = [w for w in work if w.kind == "project"]
        for index, person in enumerate(self.world.people):
            self.sets["Resources"].append(
                {
                    "ResourceId": hex_guid(person.id),
                    "ResourceName": person.name,
                    # Some resources were created without an e-mail; the claims account still has the UPN.
                    "ResourceEmailAddress": "" if index % 9 == 4 else person.upn,
                    "ResourceNTAccount": f"i:0#.f|membership|{person.upn}",
                    "ResourceDepartments": departments.get(person.department, person.department),
                    "ResourceIsActive": person.active,
                    "ResourceIsGeneric": False,
                    "ResourceType": 2,
                    "ResourceInitials": person.first_name[:1] + person.last_name[:1],
                    "ResourceStandardRate": 55.0 + (index % 7) * 5,
                    "ResourceModifiedDate": person.updated,
                    "ResourceCreatedDate": person.created,
                }
            )
        for role in ("Business Analyst", "GIS Analyst"):
            self.sets["Resources"].append(
                {
                    "ResourceId": guid("generic", role),
                    "ResourceName": role,
                    "ResourceEmailAddress": "",
                    "ResourceNTAccount": None,
                    "ResourceDepartments": "ITD",
                    "ResourceIsActive": True,
                    "ResourceIsGeneric": True,
                    "ResourceType": 2,
                    "ResourceInitials": "",
                    "ResourceStandardRate": 0.0,
                    "ResourceModifiedDate": self.world.now - timedelta(days=400),
                    "ResourceCreatedDate": self.world.now - timedelta(days=900),
                }
            )
        resources = [r for r in self.sets["Resources"] if not r["ResourceIsGeneric"]]
        for project in projects:
            pid = hex_guid(project.id)
            owner = people.get(project.manager_id or "")
            sponsor = people.get(project.sponsor_id or "")
            hours = round(project.budget / 95.0, 1)
            done_fraction = project.percent_complete / 100.0
            row: dict[str, Any] = {
                "ProjectId": pid,
                "ProjectName": project.name,
                "ProjectDescription": "",
                "ProjectStartDate": project.planned_start,
                "ProjectFinishDate": project.planned_finish,
                "ProjectActualStartDate": project.actual_start,
                "ProjectActualFinishDate": project.actual_finish,
                "ProjectPercentCompleted": int(project.percent_complete),
                "ProjectPercentWorkCompleted": int(project.percent_complete),
                "ProjectCost": project.forecast_cost,
                "ProjectActualCost": project.actual_cost,
                "ProjectRemainingCost": round(
                    max(project.forecast_cost - project.actual_cost, 0.0), 2
                ),
                "ProjectBudgetCost": None,  # empty unless budget resources are used
                "ProjectWork": hours,
                "ProjectActualWork": round(hours * done_fraction, 1),
                "ProjectRemainingWork": round(hours * (1 - done_fraction), 1),
                "ProjectBCWS": project.planned_value,
                "ProjectBCWP": project.earned_value,
                "ProjectACWP": project.actual_cost,
                "ProjectOwnerId": hex_guid(owner.id) if owner else None,
                "ProjectOwnerName": owner.name if owner else "",
                "ProjectManagerName": "",
                "ProjectDepartments": departments.get(project.department, project.department),
                "ProjectStatusDate": self.world.now.replace(
                    hour=17, minute=0, second=0, microsecond=0
                ),
                "ProjectModifiedDate": project.updated,
                "ProjectCreatedDate": project.created,
                "ProjectLastPublishedDate": project.updated,
                "ProjectType": 0,
                "EnterpriseProjectTypeId": PROJECT_TYPES["City Standard Project"],
                "EnterpriseProjectTypeName": "City Standard Project",
                "ProjectState": STATE_WORDS[project.state],
                "ProjectPhase": PHASE_WORDS[project.phase],
                "OverallHealth": HEALTH_WORDS[project.health],
                "StrategicGoals": ";".join(project.goals),
                "CityPriority": PRIORITY_WORDS[project.priority],
                "ProjectSponsor": sponsor.name if sponsor else None,
                "ProjectManager": owner.name if owner else None,
                "ProjectNumber": project.number,
                "Annéefiscale": f"FY{(project.planned_start or self.world.now).year + 1}",
                "BusinessCaseApproved": "Yes" if project.business_case_approved else "No",
            }
            self.sets["Projects"].append(row)
            self.server_projects[pid] = ServerProject(
                id=pid,
                name=project.name,
                ept_id=PROJECT_TYPES["City Standard Project"],
                start=project.planned_start,
                custom={
                    self.custom_ids[name]: str(row[prop])
                    for name, prop in CUSTOM_FIELDS.items()
                    if row.get(prop) is not None
                },
            )
            for number, (start, finish, cost, hours_) in enumerate(
                [
                    (project.planned_start, project.planned_finish, project.budget, hours),
                    # a later re-baseline, which the crosswalk must not take for baseline 0
                    (
                        project.planned_start,
                        (project.planned_finish or self.world.now) + timedelta(days=30),
                        project.budget * 1.1,
                        hours * 1.1,
                    ),
                ]
            ):
                self.sets["ProjectBaselines"].append(
                    {
                        "ProjectId": pid,
                        "BaselineNumber": number,
                        "ProjectName": project.name,
                        "ProjectBaselineStartDate": start,
                        "ProjectBaselineFinishDate": finish,
                        "ProjectBaselineCost": round(cost, 2),
                        "ProjectBaselineWork": round(hours_, 1),
                        "ProjectBaselineBudgetCost": None,
                        "ProjectBaselineModifiedDate": project.created,
                    }
                )
            self._tasks(project, pid, work, resources)
            self._logs(project, pid)

    def _task_row(self, pid: str, project_name: str, task_id: str, **values: Any) -> dict[str, Any]:
        row: dict[str, Any] = {name: None for name in SCHEMA["Tasks"]}
        row.update(ProjectId=pid, TaskId=task_id, ProjectName=project_name, TaskIsCritical=False)
        row.update(values)
        return row

    def _tasks(
        self, project: Any, pid: str, work: list[Any], resources: list[dict[str, Any]]
    ) -> None:
        summary_id = guid(pid, "project-summary")
        self.sets["Tasks"].append(
            self._task_row(
                pid,
                project.name,
                summary_id,
                TaskName=project.name,
                TaskOutlineLevel=0,
                TaskOutlineNumber="0",
                TaskWBS="0",
                TaskIndex=0,
                TaskIsSummary=True,
                TaskIsMilestone=False,
                TaskIsProjectSummary=True,
                TaskStartDate=project.planned_start,
                TaskFinishDate=project.planned_finish,
                TaskPercentCompleted=int(project.percent_complete),
                TaskCost=project.forecast_cost,
                TaskModifiedDate=project.updated,
                TaskCreatedDate=project.created,
            )
        )
        children = [w for w in work if w.parent_id == project.id]
        index = 1
        for number, item in enumerate(children, start=1):
            tid = hex_guid(item.id)
            milestone = item.kind == "milestone"
            finish = item.planned_start if milestone else item.planned_finish
            self.sets["Tasks"].append(
                self._task_row(
                    pid,
                    project.name,
                    tid,
                    TaskName=item.name,
                    TaskParentTaskId=summary_id,
                    TaskParentTaskName=project.name,
                    TaskOutlineLevel=1,
                    TaskOutlineNumber=str(number),
                    TaskWBS=str(number),
                    TaskIndex=index,
                    TaskIsSummary=not milestone,
                    TaskIsMilestone=milestone,
                    TaskIsProjectSummary=False,
                    TaskStartDate=item.planned_start,
                    TaskFinishDate=finish,
                    TaskActualStartDate=item.actual_start,
                    TaskActualFinishDate=item.actual_finish,
                    TaskPercentCompleted=int(item.percent_complete),
                    TaskCost=item.forecast_cost if not milestone else 0.0,
                    TaskActualCost=item.actual_cost if not milestone else 0.0,
                    TaskRemainingCost=round(max(item.forecast_cost - item.actual_cost, 0.0), 2)
                    if not milestone
                    else 0.0,
                    TaskWork=round(item.budget / 95.0, 1) if not milestone else 0.0,
                    TaskBCWS=item.planned_value if not milestone else 0.0,
                    TaskBCWP=item.earned_value if not milestone else 0.0,
                    TaskACWP=item.actual_cost if not milestone else 0.0,
                    TaskModifiedDate=item.updated,
                    TaskCreatedDate=item.created,
                )
            )
            self.sets["TaskBaselines"].append(
                {
                    "ProjectId": pid,
                    "TaskId": tid,
                    "BaselineNumber": 0,
                    "TaskName": item.name,
                    "TaskBaselineStartDate": item.planned_start,
                    "TaskBaselineFinishDate": finish,
                    "TaskBaselineCost": 0.0 if milestone else item.budget,
                    "TaskBaselineWork": 0.0 if milestone else round(item.budget / 95.0, 1),
                    "TaskBaselineBudgetCost": None,
                    "TaskBaselineModifiedDate": item.created,
                }
            )
            index += 1
            if milestone:
                continue
            # Leaf tasks carry the assignments; the crosswalk reads only summaries and milestones.
            for leaf in (1, 2):
                leaf_id = guid(tid, f"leaf-{leaf}")
                share = item.forecast_cost / 2
                self.sets["Tasks"].append(
                    self._task_row(
                        pid,
                        project.name,
                        leaf_id,
                        TaskName=f"{item.name}: step {leaf}",
                        TaskParentTaskId=tid,
                        TaskParentTaskName=item.name,
                        TaskOutlineLevel=2,
                        TaskOutlineNumber=f"{number}.{leaf}",
                        TaskWBS=f"{number}.{leaf}",
                        TaskIndex=index,
                        TaskIsSummary=False,
                        TaskIsMilestone=False,
                        TaskIsProjectSummary=False,
                        TaskStartDate=item.planned_start,
                        TaskFinishDate=item.planned_finish,
                        TaskPercentCompleted=int(item.percent_complete),
                        TaskCost=round(share, 2),
                        TaskWork=round(share / 95.0, 1),
                        TaskModifiedDate=item.updated,
                        TaskCreatedDate=item.created,
                    )
                )
                index += 1
                resource = resources[int(leaf_id[:8], 16) % len(resources)]
                self.sets["Assignments"].append(
                    {
                        "ProjectId": pid,
                        "AssignmentId": guid(leaf_id, "assignment"),
                        "TaskId": leaf_id,
                        "ResourceId": resource["ResourceId"],
                        "ResourceName": resource["ResourceName"],
                        "TaskName": f"{item.name}: step {leaf}",
                        "AssignmentWork": round(share / 95.0, 1),
                        "AssignmentCost": round(share, 2),
                        "AssignmentActualCost": round(share * item.percent_complete / 100, 2),
                        "AssignmentStartDate": item.planned_start,
                        "AssignmentFinishDate": item.planned_finish,
                        "AssignmentModifiedDate": item.updated,
                    }
                )

    def _logs(self, project: Any, pid: str) -> None:
        seed = int(pid[:8], 16)
        for n in range(seed % 4):
            self.sets["Issues"].append(
                {
                    "ProjectId": pid,
                    "IssueId": guid(pid, f"issue-{n}"),
                    "ProjectName": project.name,
                    "Title": f"Issue {n + 1} on {project.name}",
                    "Status": "(1) Active" if n % 2 == 0 else "(3) Closed",
                    "Priority": "(2) Medium",
                    "Category": "(1) Category1",
                    "DueDate": project.planned_finish,
                    "ModifiedDate": project.updated,
                }
            )
        for n in range(seed % 3 + 1):
            probability, impact = 0.2 + 0.2 * n, float(3 + n)
            self.sets["Risks"].append(
                {
                    "ProjectId": pid,
                    "RiskId": guid(pid, f"risk-{n}"),
                    "ProjectName": project.name,
                    "Title": f"Risk {n + 1} on {project.name}",
                    "Status": "(1) Active" if n != 1 else "(2) Postponed",
                    "Probability": probability,
                    "Impact": impact,
                    "Exposure": round(probability * impact, 2),
                    "Cost": 10000.0 * (n + 1),
                    "DueDate": project.planned_finish,
                    "ModifiedDate": project.updated,
                }
            )

    # -- helpers for tests ---------------------------------------------------------------------------

    def project_row(self, name: str) -> dict[str, Any]:
        return next(r for r in self.sets["Projects"] if r["ProjectName"] == name)

    def check_out_as(self, project_id: str, user: str) -> None:
        """Someone else (``CITY\\jsmith``) opens the project in Project Professional."""
        with self.lock:
            self.server_projects[project_id].checked_out_by = user

    def touch(self, set_name: str, row: dict[str, Any], **values: Any) -> None:
        """Change a row as a publish would: new values and a new modified date."""
        with self.lock:
            row.update(values)
            if set_name in MODIFIED:
                row[MODIFIED[set_name]] = datetime.now(UTC).replace(microsecond=0)

    def delete_project(self, project_id: str) -> None:
        with self.lock:
            self.server_projects.pop(project_id, None)
            for name in SCHEMA:
                self.sets[name] = [r for r in self.sets[name] if r.get("ProjectId") != project_id]

    # -- rendering ---------------------------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def _value(self, edm: str, value: Any, verbose: bool) -> Any:
        if value is None:
            return None
        if edm == D:
            return f"{float(value):.6f}"
        if edm == T:
            local = self._local(value) if isinstance(value, datetime) else value
            if verbose:
                ms = int((local - datetime(1970, 1, 1)).total_seconds() * 1000)
                return f"/Date({ms})/"
            return local.replace(microsecond=0).isoformat()
        if edm == N:
            return int(value)
        return value

    def _render(
        self,
        set_name: str,
        row: dict[str, Any],
        select: list[str] | None,
        verbose: bool,
        base: str,
        explicit: bool = False,
    ) -> dict[str, Any]:
        schema = SCHEMA[set_name]
        names = select or [*schema, *(CUSTOM_FIELDS.values() if set_name == "Projects" else ())]
        out: dict[str, Any] = {}
        if verbose:
            keys = ",".join(
                f"{k}=guid'{row[k]}'" if schema[k] == G else f"{k}={row[k]}" for k in KEYS[set_name]
            )
            keys = keys.split("=", 1)[1] if len(KEYS[set_name]) == 1 else keys
            uri = f"{base}/_api/ProjectData/{set_name}({keys})"
            out["__metadata"] = {"id": uri, "uri": uri, "type": f"ReportingData.{TYPES[set_name]}"}
        for name in names:
            out[name] = self._value(schema.get(name, S), row.get(name), verbose)
        if verbose and not explicit:
            # Verbose rows carry their navigation properties as deferred links.
            for nav in NAVIGATION.get(set_name, ()):
                out[nav] = {"__deferred": {"uri": f"{out['__metadata']['uri']}/{nav}"}}
        return out

    # -- WSGI --------------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            status, headers, body = self.handle(environ)
        except ODataError as exc:
            status, headers, body = self._error(exc, self._verbose(environ))
        return self.faults.respond(environ["REQUEST_METHOD"], status, headers, body, start_response)

    @staticmethod
    def _verbose(environ: dict[str, Any]) -> bool:
        return "odata=verbose" in environ.get("HTTP_ACCEPT", "")

    def _error(self, exc: ODataError, verbose: bool) -> tuple[str, list[tuple[str, str]], bytes]:
        message = {"lang": "en-US", "value": exc.message}
        body = (
            {"error": {"code": exc.code, "message": message}}
            if verbose
            else {"odata.error": {"code": exc.code, "message": message}}
        )
        reason = {
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            500: "Internal Server Error",
        }
        return (
            f"{exc.status} {reason.get(exc.status, 'Error')}",
            [
                (
                    "Content-Type",
                    "application/json;odata=verbose;charset=utf-8"
                    if verbose
                    else "application/json;odata=minimalmetadata;charset=utf-8",
                )
            ],
            json.dumps(body).encode(),
        )

    def handle(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.requests_seen.append(f"{method} {path}")
        base = f"https://{environ.get('HTTP_HOST', '127.0.0.1')}"
        if self.entra.handles(path):
            return self.entra.serve(environ, method, path)
        if "/_api/" not in path:
            return (
                "404 Not Found",
                [("Content-Type", "text/html")],
                b"<html><title>404 NOT FOUND</title></html>",
            )
        prefix, _, rest = path.partition("/_api/")
        base += prefix
        fault = self.faults.take(listing=rest.startswith("ProjectData/"))
        if fault == "throttle":
            return (
                "429 Too Many Requests",
                [
                    ("Content-Type", "application/json;odata=verbose;charset=utf-8"),
                    ("Retry-After", str(int(self.faults.retry_after))),
                ],
                json.dumps(
                    {
                        "error": {
                            "code": "-2147024860, Microsoft.SharePoint.SPQueryThrottledException",
                            "message": {
                                "lang": "en-US",
                                "value": "The request has been throttled. Try again later.",
                            },
                        }
                    }
                ).encode(),
            )
        if fault == "error":
            return (
                "503 Service Unavailable",
                [("Content-Type", "text/html")],
                b"<html><head><title>Service Unavailable</title></head><body><h2>HTTP Error 503. The service is unavailable.</h2></body></html>",
            )
        user, extra_headers, refusal = self._authenticate(environ, base)
        if refusal is not None:
            return refusal
        assert user is not None
        if rest == "contextinfo" and method == "POST":
            status, headers, body = self._contextinfo(environ, base)
        elif rest.startswith("ProjectData"):
            if method != "GET":
                raise ODataError(405, "The ProjectData service is read-only.")
            status, headers, body = self._feed(
                environ, rest[len("ProjectData") :], query, base, fault
            )
        elif rest.startswith("ProjectServer/"):
            status, headers, body = self._server(
                environ, rest[len("ProjectServer/") :], method, query, user
            )
        else:
            raise ODataError(404, f"Resource not found for the segment '{rest.split('/')[0]}'.")
        return status, headers + extra_headers, body

    # -- auth --------------------------------------------------------------------------------------

    def _authenticate(
        self, environ: dict[str, Any], base: str
    ) -> tuple[str | None, list[tuple[str, str]], tuple[str, list[tuple[str, str]], bytes] | None]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        cookies = dict(
            part.strip().split("=", 1)
            for part in environ.get("HTTP_COOKIE", "").split(";")
            if "=" in part
        )
        with self.lock:
            session_user = self.sessions.get(cookies.get("FedAuth", ""))
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(credential).decode().partition(":")
            except ValueError:
                user, password = "", ""
            short = user.split("\\")[-1].lower()
            if {k.split("\\")[-1].lower(): v for k, v in self.users.items()}.get(
                short
            ) == password and password:
                return short, [], None
        elif scheme == "bearer":
            issued = self.entra.grant(credential)
            if issued is not None:
                if issued.app_only:
                    return (
                        None,
                        [],
                        (
                            "401 Unauthorized",
                            [
                                ("Content-Type", "application/json"),
                                (
                                    "x-ms-diagnostics",
                                    '3000003;reason="Unsupported app only token.";category="invalid_client"',
                                ),
                                (
                                    "WWW-Authenticate",
                                    'Bearer realm="city", client_id="00000003-0000-0ff1-ce00-000000000000"',
                                ),
                            ],
                            json.dumps(
                                {"error_description": "Unsupported app only token."}
                            ).encode(),
                        ),
                    )
                if not issued.expired:
                    return issued.subject, [], None
                return (
                    None,
                    [],
                    (
                        "401 Unauthorized",
                        [
                            ("Content-Type", "application/json"),
                            (
                                "x-ms-diagnostics",
                                '3000006;reason="Token contains invalid signature; expired.";category="invalid_client"',
                            ),
                            ("WWW-Authenticate", 'Bearer realm="city"'),
                        ],
                        json.dumps(
                            {"error_description": "Invalid JWT token. The token is expired."}
                        ).encode(),
                    ),
                )
            for name, secret in self.users.items():
                if credential and credential == secret:
                    return name.split("\\")[-1].lower(), [], None
        elif scheme in ("ntlm", "negotiate") and self.ntlm is not None:
            try:
                token = base64.b64decode(credential)
            except ValueError:
                token = b""
            if token[8:12] == b"\x01\x00\x00\x00":
                challenge, key = self.ntlm.challenge(token)
                return (
                    None,
                    [],
                    (
                        "401 Unauthorized",
                        [
                            ("WWW-Authenticate", challenge),
                            ("Set-Cookie", f"NtlmChallenge={key}; path=/; secure; HttpOnly"),
                            ("Content-Type", "text/plain"),
                        ],
                        b"401 UNAUTHORIZED",
                    ),
                )
            if token[8:12] == b"\x03\x00\x00\x00":
                proven = self.ntlm.authenticate(token, cookies.get("NtlmChallenge"))
                if proven is not None:
                    session = secrets.token_urlsafe(24)
                    with self.lock:
                        self.sessions[session] = proven
                    return (
                        proven,
                        [("Set-Cookie", f"FedAuth={session}; path=/; secure; HttpOnly")],
                        None,
                    )
        elif session_user is not None:
            return session_user, [], None
        if self.signin_trap == "302":
            location = (
                f"{base}/_layouts/15/Authenticate.aspx?Source={quote(environ.get('PATH_INFO', ''))}"
            )
            return (
                None,
                [],
                (
                    "302 Found",
                    [("Location", location), ("Content-Type", "text/html; charset=utf-8")],
                    b'<html><head><title>Object moved</title></head><body><h2>Object moved to <a href="/_layouts/15/Authenticate.aspx">here</a>.</h2></body></html>',
                ),
            )
        if self.signin_trap == "200":
            return (
                None,
                [],
                (
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8")],
                    b"<!DOCTYPE html><html><head><title>Sign In</title></head><body><form method='post' action='/_forms/default.aspx'><input name='ctl00$PlaceHolderMain$signInControl$UserName'/></form></body></html>",
                ),
            )
        headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="city"')]
        if self.ntlm is not None:
            headers += [("WWW-Authenticate", "NTLM"), ("WWW-Authenticate", "Negotiate")]
        return None, [], ("401 Unauthorized", headers, b"401 UNAUTHORIZED")

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        return environ["wsgi.input"].read(length) if length > 0 else b""

    # -- ProjectData -------------------------------------------------------------------------------

    def _feed(
        self,
        environ: dict[str, Any],
        rest: str,
        query: dict[str, list[str]],
        base: str,
        fault: str | None,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        parts = [p for p in rest.split("/") if p]
        if not parts:
            listing = {"d": {"EntitySets": sorted(s for s in SCHEMA if s not in self.missing_sets)}}
            return (
                "200 OK",
                [("Content-Type", "application/json;odata=verbose;charset=utf-8")],
                json.dumps(listing).encode(),
            )
        set_name = parts[0]
        if set_name == "$metadata":
            return "200 OK", [("Content-Type", "application/xml;charset=utf-8")], self._metadata()
        if set_name not in SCHEMA or set_name in self.missing_sets:
            raise ODataError(404, f"Resource not found for the segment '{set_name}'.")
        schema = dict(self.schema[set_name])
        if set_name == "Projects":
            schema.update({prop: S for prop in CUSTOM_FIELDS.values()})
        with self.lock:
            rows = sorted(
                self.sets[set_name], key=lambda r: tuple(str(r[k]) for k in KEYS[set_name])
            )
        if "$filter" in query:
            predicate = FilterParser(
                query["$filter"][0], schema, TYPES[set_name], self.zone
            ).parse()
            rows = [r for r in rows if predicate(r)]
        if len(parts) > 1 and parts[1] == "$count":
            return "200 OK", [("Content-Type", "text/plain;charset=utf-8")], str(len(rows)).encode()
        select = None
        if "$select" in query and query["$select"][0] not in ("", "*"):
            select = [s.strip() for s in query["$select"][0].split(",") if s.strip()]
            for name in select:
                if name not in schema:
                    raise ODataError(
                        400,
                        f"Could not find a property named '{name}' on type 'ReportingData.{TYPES[set_name]}'.",
                    )
        skip = int(query.get("$skip", ["0"])[0] or 0)
        top = int(query["$top"][0]) if "$top" in query else None
        token = query.get("$skiptoken", [None])[0]
        if token:
            after = tuple(re.findall(r"guid'([0-9a-fA-F-]{36})'|(-?\d+)", token))
            marker = tuple(g or n for g, n in after)
            rows = [r for r in rows if tuple(str(r[k]) for k in KEYS[set_name]) > marker]
        rows = rows[skip:]
        remaining = top if top is not None else None
        if token and "$toptotal" in query:
            remaining = int(query["$toptotal"][0])
        limit = self.page_limits[set_name]
        page = rows[: min(limit, remaining) if remaining is not None else limit]
        more = len(rows) > len(page) and (remaining is None or remaining > len(page))
        link = None
        if more:
            last = page[-1]
            skiptoken = ",".join(
                f"guid'{last[k]}'" if schema[k] == G else str(last[k]) for k in KEYS[set_name]
            )
            params = {
                k: v[0]
                for k, v in query.items()
                if k not in ("$skiptoken", "$skip", "$top", "$toptotal")
            }
            if remaining is not None:
                params["$toptotal"] = str(remaining - len(page))
            params["$skiptoken"] = skiptoken
            encoded = urlencode(params, quote_via=quote, safe="$',")
            link_base = (
                urlsplit(base)._replace(scheme="http", netloc=self.link_host).geturl()
                if self.link_host
                else base
            )
            link = f"{link_base}/_api/ProjectData/{set_name}?{encoded}"
        if MODIFIED.get(set_name) and self.faults.mutate_between_pages and page:
            with self.lock:
                later = rows[len(page) : len(page) + self.faults.mutate_between_pages]
                for row in later:
                    row[MODIFIED[set_name]] = datetime.now(UTC).replace(microsecond=0)
        if "json" not in accept:
            xml = f'<?xml version="1.0" encoding="utf-8"?><feed xml:base="{base}/_api/ProjectData/" xmlns="http://www.w3.org/2005/Atom"><title type="text">{set_name}</title></feed>'
            return (
                "200 OK",
                [("Content-Type", "application/atom+xml;type=feed;charset=utf-8")],
                xml.encode(),
            )
        verbose = "odata=verbose" in accept
        rendered = [
            self._render(set_name, r, select or list(schema), verbose, base, select is not None)
            for r in page
        ]
        if verbose:
            payload: dict[str, Any] = {"d": {"results": rendered}}
            if link:
                payload["d"]["__next"] = link
            content_type = "application/json;odata=verbose;charset=utf-8"
        else:
            payload = {}
            if "nometadata" not in accept:
                payload["odata.metadata"] = f"{base}/_api/ProjectData/$metadata#{set_name}"
            payload["value"] = rendered
            if link:
                payload["odata.nextLink"] = link
            content_type = (
                "application/json;odata="
                + ("nometadata" if "nometadata" in accept else "minimalmetadata")
                + ";streaming=true;charset=utf-8"
            )
        body = json.dumps(payload, ensure_ascii=False).encode()
        if fault == "malformed":
            body = body[: len(body) // 2]
        return "200 OK", [("Content-Type", content_type)], body

    def _metadata(self) -> bytes:
        """The CSDL of the served sets: where a client reads which properties exist."""
        types = []
        for name, props in self.schema.items():
            if name in self.missing_sets:
                continue
            if name == "Projects":
                props = {**props, **{p: S for p in CUSTOM_FIELDS.values()}}
            keys = "".join(f'<PropertyRef Name="{k}"/>' for k in KEYS[name])
            fields = "".join(
                f'<Property Name="{p}" Type="Edm.{t}" Nullable="{str(p not in KEYS[name]).lower()}"/>'
                for p, t in props.items()
            )
            types.append(f'<EntityType Name="{TYPES[name]}"><Key>{keys}</Key>{fields}</EntityType>')
        sets = "".join(
            f'<EntitySet Name="{n}" EntityType="ReportingData.{TYPES[n]}"/>'
            for n in self.schema
            if n not in self.missing_sets
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="1.0" '
            'xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"><edmx:DataServices '
            'm:DataServiceVersion="3.0" xmlns:m="http://schemas.microsoft.com/ado/2007/08/'
            'dataservices/metadata"><Schema Namespace="ReportingData" '
            'xmlns="http://schemas.microsoft.com/ado/2009/11/edm">'
            + "".join(types)
            + f'<EntityContainer Name="ReportingData" m:IsDefaultEntityContainer="true">{sets}'
            "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
        ).encode()

    # -- ProjectServer -----------------------------------------------------------------------------

    def _contextinfo(
        self, environ: dict[str, Any], base: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        stamp = datetime.now(UTC).strftime("%d %b %Y %H:%M:%S -0000")
        digest = f"0x{secrets.token_hex(64).upper()},{stamp}"
        with self.lock:
            self.digests[digest] = time.time() + 1800
        info = {
            "FormDigestTimeoutSeconds": 1800,
            "FormDigestValue": digest,
            "LibraryVersion": "16.0.17928.20000",
            "SiteFullUrl": base,
            "SupportedSchemaVersions": ["14.0.0.0", "15.0.0.0"],
            "WebFullUrl": base,
        }
        if self._verbose(environ):
            info = {"__metadata": {"type": "SP.ContextWebInformation"}, **info}
            return (
                "200 OK",
                [("Content-Type", "application/json;odata=verbose;charset=utf-8")],
                json.dumps({"d": {"GetContextWebInformation": info}}).encode(),
            )
        return (
            "200 OK",
            [("Content-Type", "application/json;odata=nometadata;charset=utf-8")],
            json.dumps(info).encode(),
        )

    def _ok(
        self, environ: dict[str, Any], value: Any, type_name: str | None = None
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if self._verbose(environ):
            if isinstance(value, list):
                body: Any = {
                    "d": {
                        "results": [
                            {"__metadata": {"type": type_name}, **v} if type_name else v
                            for v in value
                        ]
                    }
                }
            else:
                body = {"d": {"__metadata": {"type": type_name}, **value} if type_name else value}
            return (
                "200 OK",
                [("Content-Type", "application/json;odata=verbose;charset=utf-8")],
                json.dumps(body, ensure_ascii=False).encode(),
            )
        body = {"value": value} if isinstance(value, list) else value
        return (
            "200 OK",
            [("Content-Type", "application/json;odata=nometadata;charset=utf-8")],
            json.dumps(body, ensure_ascii=False).encode(),
        )

    def _published(
        self, project: ServerProject, select: list[str] | None, custom: bool
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "Id": project.id,
            "Name": project.name,
            "Description": project.description,
            "IsCheckedOut": project.checked_out_by is not None,
            "CheckOutDescription": "",
            "StartDate": project.start.strftime("%Y-%m-%dT%H:%M:%S") if project.start else None,
            "CreatedDate": project.created.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if custom:
            row.update(project.custom)
        if select:
            unknown = [s for s in select if s not in row and not s.startswith("Custom_")]
            if unknown:
                raise ODataError(
                    400,
                    f"The property '{unknown[0]}' does not exist on type 'PS.PublishedProject'.",
                )
            row = {k: row.get(k) for k in select}
        return row

    def _server(
        self,
        environ: dict[str, Any],
        rest: str,
        method: str,
        query: dict[str, list[str]],
        user: str,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        select = [s.strip() for s in query.get("$select", [""])[0].split(",") if s.strip()] or None
        if method == "POST":
            digest = environ.get("HTTP_X_REQUESTDIGEST", "")
            with self.lock:
                valid = self.digests.get(digest, 0) > time.time()
            if not valid:
                raise ODataError(
                    403,
                    "The security validation for this page is invalid and might be corrupted. Please use your web browser's Back button to try your operation again.",
                    "-2130575251, Microsoft.SharePoint.SPException",
                )
        if rest == "EnterpriseProjectTypes" and method == "GET":
            types = [
                {"Id": i, "Name": n, "Description": "", "IsDefault": n == "Enterprise Project"}
                for n, i in PROJECT_TYPES.items()
            ]
            return self._ok(environ, types, "PS.EnterpriseProjectType")
        if rest == "CustomFields" and method == "GET":
            fields = [
                {
                    "Id": guid("cf", n),
                    "Name": n,
                    "InternalName": self.custom_ids[n],
                    "FieldType": 21,
                    "IsRequired": False,
                }
                for n in CUSTOM_FIELDS
            ]
            return self._ok(environ, fields, "PS.CustomField")
        if rest == "Projects" and method == "GET":
            with self.lock:
                projects = list(self.server_projects.values())
            if "$filter" in query:
                schema = {"Id": G, "Name": S, "IsCheckedOut": B}
                predicate = FilterParser(
                    query["$filter"][0], schema, "PublishedProject", self.zone
                ).parse()
                projects = [
                    p
                    for p in projects
                    if predicate(
                        {"Id": p.id, "Name": p.name, "IsCheckedOut": p.checked_out_by is not None}
                    )
                ]
            return self._ok(
                environ,
                [self._published(p, select, False) for p in projects],
                "PS.PublishedProject",
            )
        if rest == "Projects/Add" and method == "POST":
            return self._add(environ)
        match = re.fullmatch(r"Projects\('([0-9a-fA-F-]{36})'\)(?:/(.*))?", rest)
        if not match:
            raise ODataError(404, f"Cannot find resource for the request {rest}.")
        project_id, action = match.group(1).lower(), match.group(2) or ""
        with self.lock:
            project = self.server_projects.get(project_id)
            if project is None:
                raise ODataError(
                    404,
                    f"PJClientCallableException: ProjectNotFound\r\nProjectNotFound\r\nprojUid = {project_id}",
                    "20005, Microsoft.ProjectServer.PJClientCallableException",
                )
            return self._project_action(environ, project, action, method, select, user)

    def _pj_error(self, name: str, detail: str, code: int) -> ODataError:
        return ODataError(
            500,
            f"PJClientCallableException: {name}\r\n{name}\r\n{detail}",
            f"{code}, Microsoft.ProjectServer.PJClientCallableException",
        )

    def _add(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            payload = json.loads(self._body(environ) or b"{}")
            info = payload["parameters"]
            name = str(info["Name"]).strip()
        except (ValueError, KeyError, TypeError):
            raise ODataError(
                400,
                "The parameter parameters does not exist in method Add.",
                "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
            ) from None
        with self.lock:
            if any(p.name.casefold() == name.casefold() for p in self.server_projects.values()):
                raise self._pj_error("ProjectNameAlreadyExists", f"name = {name}", 1001)
            ept = str(
                info.get("EnterpriseProjectTypeId") or PROJECT_TYPES["Enterprise Project"]
            ).lower()
            if ept not in PROJECT_TYPES.values():
                raise self._pj_error("EnterpriseProjectTypeInvalid", f"eptUid = {ept}", 11701)
            project_id = str(info.get("Id") or uuid.uuid4()).lower()
            start = (
                datetime.fromisoformat(str(info["Start"]).replace("Z", "+00:00"))
                if info.get("Start")
                else datetime.now(UTC)
            )
            project = ServerProject(
                id=project_id,
                name=name,
                ept_id=ept,
                description=str(info.get("Description") or ""),
                start=start,
            )
            self.server_projects[project_id] = project
            self._publish_row(project)
            return self._ok(environ, self._published(project, None, False), "PS.PublishedProject")

    def _publish_row(self, project: ServerProject) -> None:
        """What the reporting database shows after a publish."""
        now = datetime.now(UTC).replace(microsecond=0)
        ept_name = next(n for n, i in PROJECT_TYPES.items() if i == project.ept_id)
        row = next((r for r in self.sets["Projects"] if r["ProjectId"] == project.id), None)
        if row is None:
            fresh: dict[str, Any] = {name: None for name in SCHEMA["Projects"]}
            row = fresh
            row.update(
                ProjectId=project.id,
                ProjectCreatedDate=project.created,
                ProjectPercentCompleted=0,
                ProjectPercentWorkCompleted=0,
                ProjectCost=0.0,
                ProjectActualCost=0.0,
                ProjectRemainingCost=0.0,
                ProjectWork=0.0,
                ProjectActualWork=0.0,
                ProjectRemainingWork=0.0,
                ProjectBCWS=0.0,
                ProjectBCWP=0.0,
                ProjectACWP=0.0,
                ProjectOwnerName="",
                ProjectManagerName="",
                ProjectType=0,
                ProjectStartDate=project.start,
                ProjectFinishDate=project.start,
            )
            self.sets["Projects"].append(row)
        row.update(
            ProjectName=project.name,
            ProjectDescription=project.description,
            EnterpriseProjectTypeId=project.ept_id,
            EnterpriseProjectTypeName=ept_name,
            ProjectModifiedDate=now,
            ProjectLastPublishedDate=now,
        )
        for task in project.tasks:
            if any(t["TaskId"] == task["id"] for t in self.sets["Tasks"]):
                continue
            self.sets["Tasks"].append(
                self._task_row(
                    project.id,
                    project.name,
                    task["id"],
                    TaskName=task["name"],
                    TaskParentTaskId=guid(project.id, "project-summary"),
                    TaskOutlineLevel=1,
                    TaskWBS=str(len(project.tasks)),
                    TaskIsSummary=False,
                    TaskIsMilestone=task["milestone"],
                    TaskIsProjectSummary=False,
                    TaskStartDate=task["start"],
                    TaskFinishDate=task["start"],
                    TaskPercentCompleted=0,
                    TaskCost=0.0,
                    TaskModifiedDate=now,
                    TaskCreatedDate=now,
                )
            )
        if project.tasks:
            row["ProjectFinishDate"] = max(t["start"] for t in project.tasks)
        by_internal = {self.custom_ids[n]: prop for n, prop in CUSTOM_FIELDS.items()}
        for internal, value in project.custom.items():
            row[by_internal[internal]] = value

    def _job(self) -> dict[str, Any]:
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = JOB_SUCCESS
        return {"Id": job_id, "JobState": JOB_SUCCESS}

    def _project_action(
        self,
        environ: dict[str, Any],
        project: ServerProject,
        action: str,
        method: str,
        select: list[str] | None,
        user: str,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if method == "GET":
            if action == "":
                return self._ok(
                    environ, self._published(project, select, False), "PS.PublishedProject"
                )
            if action == "IncludeCustomFields":
                return self._ok(
                    environ, self._published(project, select, True), "PS.PublishedProject"
                )
            job = re.fullmatch(r"QueueJobs\('([0-9a-fA-F-]{36})'\)", action)
            if job and job.group(1) in self.jobs:
                return self._ok(
                    environ,
                    {"Id": job.group(1), "JobState": self.jobs[job.group(1)]},
                    "PS.QueueJob",
                )
            raise ODataError(404, f"Cannot find resource for the request {action}.")
        holder = project.checked_out_by
        if action == "checkOut":
            if holder is not None and holder != user:
                raise self._pj_error(
                    "CICOCheckedOutToOtherUser", f"The project is checked out to {holder}.", 10101
                )
            project.checked_out_by = user
            project.draft_custom = dict(project.custom)
            project.draft_tasks = []
            return self._ok(environ, {"Id": project.id, "Name": project.name}, "PS.DraftProject")
        if action == "deleteObject":
            if holder is not None and holder != user:
                raise self._pj_error(
                    "CICOCheckedOutToOtherUser", f"The project is checked out to {holder}.", 10101
                )
            self.delete_project(project.id)
            return self._ok(environ, self._job(), "PS.QueueJob")
        if not action.startswith("Draft/"):
            raise ODataError(404, f"Cannot find resource for the request {action}.")
        if holder != user:
            if holder is None:
                raise self._pj_error("CICONotCheckedOut", "The project is not checked out.", 10105)
            raise self._pj_error(
                "CICOCheckedOutToOtherUser", f"The project is checked out to {holder}.", 10101
            )
        verb = action[len("Draft/") :]
        if verb in self.fail_actions:
            raise self._pj_error(self.fail_actions[verb], f"project = {project.name}", 11000)
        if verb == "SetCustomFieldValue":
            try:
                payload = json.loads(self._body(environ) or b"{}")
                field_name, value = str(payload["FieldName"]), payload["Value"]
            except (ValueError, KeyError, TypeError):
                raise ODataError(
                    400,
                    "The parameter FieldName does not exist in method SetCustomFieldValue.",
                    "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                ) from None
            if field_name not in self.custom_ids.values():
                raise self._pj_error("CustomFieldInvalidUID", f"fieldName = {field_name}", 11501)
            project.draft_custom[field_name] = str(value)
            return "204 No Content", [], b""
        if verb == "Tasks/Add":
            try:
                info = json.loads(self._body(environ) or b"{}")["parameters"]
                name = str(info["Name"])
                start = datetime.fromisoformat(str(info["Start"]).replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                raise ODataError(
                    400,
                    "The parameter parameters does not exist in method Add.",
                    "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                ) from None
            milestone = str(info.get("Duration", "1d")).strip().lower() in ("0d", "0", "0h")
            project.draft_tasks.append(
                {
                    "id": str(info.get("Id") or uuid.uuid4()).lower(),
                    "name": name,
                    "start": start,
                    "milestone": milestone,
                }
            )
            return self._ok(
                environ, {"Id": project.draft_tasks[-1]["id"], "Name": name}, "PS.DraftTask"
            )
        if verb == "Update":
            project.pending = dict(project.draft_custom)
            project.pending_tasks = list(project.draft_tasks)
            return self._ok(environ, self._job(), "PS.QueueJob")
        publish = re.fullmatch(r"Publish\((true|false)\)", verb)
        if publish:
            if project.pending is not None:
                project.custom = dict(project.pending)
                project.pending = None
            if project.pending_tasks:
                project.tasks += project.pending_tasks
                project.pending_tasks = []
            self._publish_row(project)
            if publish.group(1) == "true":
                project.checked_out_by = None
            return self._ok(environ, self._job(), "PS.QueueJob")
        checkin = re.fullmatch(r"CheckIn\((true|false)\)", verb)
        if checkin:
            project.checked_out_by = None
            project.draft_custom = {}
            project.draft_tasks = []
            return self._ok(environ, self._job(), "PS.QueueJob")
        raise ODataError(404, f"Cannot find resource for the request {action}.")


def create_app(
    world: World, faults: Faults, *, users: dict[str, str], **options: Any
) -> ProjectServerEmulator:
    """The emulator for ``world`` (its ``project_online`` work and its people)."""
    return ProjectServerEmulator(world, faults, users=users, **options)
