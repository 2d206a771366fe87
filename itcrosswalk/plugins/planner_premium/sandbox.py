"""A local Dataverse Web API (``/api/data/v9.2``) serving the seeded city's Planner premium plans.

Written from ``shared/platforms/planner_premium.md`` and its fixtures, traps included:

- paging only by ``Prefer: odata.maxpagesize`` (≤ 5000, echoed in ``Preference-Applied``) and
  an ``@odata.nextLink`` whose ``$skiptoken`` is a double-encoded XML paging cookie (a client
  that re-encodes it is refused); ``$skip`` is refused; ``$top`` is ignored beside maxpagesize;
- change tracking per table (``Prefer: odata.track-changes`` -> ``@odata.deltaLink``; the link
  returns changed rows and ``$deletedEntity`` tombstones); ``$filter``/``$orderby``/``$expand``/
  ``$top`` with it are refused; tokens expire (``expire_change_tokens``) with the real message;
- metadata: ``EntityDefinitions`` (entity set names, ``ChangeTrackingEnabled``, attributes) and
  option sets through ``.../Attributes/Microsoft.Dynamics.CRM.EnumAttributeMetadata``; the labels
  and the columns differ by org (``org="planner"``, a pure Planner premium org without the
  Project Operations cost and health columns, or ``org="project_operations"``);
- one unknown column in ``$select`` fails the query (``0x80060888``); FormattedValue and lookup
  annotations on request; decimals with 10 fractional digits, UTC ``Z`` second datetimes,
  ``msdyn_plannedwork`` as a JSON string, etags from ``versionnumber``;
- errors as Dataverse writes them: 401 with ``WWW-Authenticate``, 403 ``0x80072560`` for an app
  that is not an application user, 403 ``0x80040220`` for a missing privilege, 404
  ``0x8006088a``, 429 service protection (``0x80072322``) with ``Retry-After``, direct writes to
  scheduling tables ``0x80040265``;
- the Schedule API: ``msdyn_CreateProjectV1``, ``msdyn_CreateOperationSetV1``,
  ``msdyn_PssCreateV1``, ``msdyn_PssDeleteV1``, ``msdyn_ExecuteOperationSetV1``,
  ``msdyn_AbandonOperationSetV1``; at most 200 operations a set and 10 open sets a user;
  application users refused; execution is asynchronous (``apply_delay``) and all or nothing,
  its status in ``msdyn_operationsets`` and a failure's cause in ``msdyn_psserrorlogs``.

Sign-in: the shared Entra ID emulator (:mod:`itcrosswalk.sandbox.entra`) mounted on the same
host: client credentials (secret or certificate) for application users, device code and refresh
tokens for the delegated Schedule API user. ``users`` maps each app's client id to its secret;
those apps are the environment's application users (another app's token is refused with 403
``0x80072560``). A token for another resource (``aud``) is a 401.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from ...sandbox.emulator import Emulator, Response
from ...sandbox.entra import Entra
from ...sandbox.faults import Faults
from ...sandbox.world import World

NS = uuid.UUID("5b0f6f3e-4d4a-4a43-9c34-1d2e3f405161")
API_VERSIONS = ("v9.2", "v9.1")
MAX_PAGE = 5000
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_NAME = "Microsoft.Dynamics.CRM.associatednavigationproperty"
SANDBOX_ORG = "org7a979f91"
SANDBOX_TENANT = "6f1d2c3b-0a4e-4b7d-9c2f-5e8a1b3c4d60"
SANDBOX_PUBLIC_CLIENT = "51f81489-12ee-4a9e-aaae-a2591f45987d"
"""The public client id the sandbox's Schedule API user signs in with (device code)."""
EXPIRED_TOKEN = "Version stamp associated with the client has expired. Please perform a full sync."

# Option sets per org: (table, attribute) -> value -> label. The two dependency link-type ranges
# and the status reasons differ, as they do between real orgs.
_COMMON_OPTIONS: dict[tuple[str, str], dict[int, str]] = {
    ("msdyn_project", "statecode"): {0: "Active", 1: "Inactive"},
    ("msdyn_projecttask", "msdyn_priority"): {1: "Urgent", 3: "Important", 5: "Medium", 9: "Low"},
    ("msdyn_projecttask", "statecode"): {0: "Active", 1: "Inactive"},
    ("bookableresource", "resourcetype"): {
        1: "Generic",
        2: "Contact",
        3: "User",
        4: "Equipment",
        5: "Account",
        6: "Crew",
    },  # fmt: skip
    ("msdyn_operationset", "msdyn_status"): {
        192350000: "Open",
        192350001: "Pending",
        192350002: "Processing",
        192350003: "Completed",
        192350004: "Failed",
        192350005: "Abandoned",
    },  # fmt: skip
}
ORG_OPTIONS: dict[str, dict[tuple[str, str], dict[int, str]]] = {
    "planner": {
        **_COMMON_OPTIONS,
        ("msdyn_project", "statuscode"): {
            1: "Active",
            2: "Inactive",
            192350000: "Completed",
            192350001: "Cancelled",
            192350002: "On hold",
        },  # fmt: skip
        ("msdyn_projecttaskdependency", "msdyn_projecttaskdependencylinktype"): {
            192350000: "Finish-to-Start",
            192350001: "Start-to-Start",
            192350002: "Finish-to-Finish",
            192350003: "Start-to-Finish",
        },  # fmt: skip
    },
    "project_operations": {
        **_COMMON_OPTIONS,
        ("msdyn_project", "statuscode"): {
            1: "Active",
            2: "Inactive",
            192350010: "Closed",
            192350011: "Cancelled",
            192350012: "Put on hold",
        },  # fmt: skip
        ("msdyn_project", "msdyn_overallprojectstatus"): {1: "Green", 2: "Yellow", 3: "Red"},
        ("msdyn_projecttaskdependency", "msdyn_projecttaskdependencylinktype"): {
            1: "Finish-to-Start",
            3: "Start-to-Start",
            0: "Finish-to-Finish",
            2: "Start-to-Finish",
        },  # fmt: skip
    },
}
STATE_STATUS: dict[str, dict[str, tuple[int, str]]] = {
    # world state -> (statecode, statuscode label)
    "planner": {"done": (1, "Completed"), "cancelled": (1, "Cancelled"), "on_hold": (1, "On hold")},
    "project_operations": {
        "done": (1, "Closed"),
        "cancelled": (1, "Cancelled"),
        "on_hold": (1, "Put on hold"),
    },  # fmt: skip
}
HEALTH_VALUE = {"green": 1, "amber": 2, "red": 3}


@dataclass
class Table:
    """One Dataverse table as the emulator holds it."""

    logical: str
    entity_set: str
    pk: str
    columns: dict[str, str]  # logical name -> AttributeType
    lookups: dict[str, str] = field(default_factory=dict)  # _x_value -> target table
    change_tracking: bool = True
    scheduling: bool = False  # written only through the Schedule API
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: list[tuple[int, str]] = field(default_factory=list)  # (version, id)


def _base_columns(pk: str) -> dict[str, str]:
    return {
        pk: "Uniqueidentifier", "createdon": "DateTime", "modifiedon": "DateTime",
        "versionnumber": "BigInt", "statecode": "State", "statuscode": "Status",
    }  # fmt: skip


PROJECT_COLUMNS = {
    "msdyn_subject": "String", "msdyn_description": "Memo", "msdyn_scheduledstart": "DateTime",
    "msdyn_finish": "DateTime", "msdyn_tzascheduledstart": "DateTime",
    "msdyn_tzafinish": "DateTime", "msdyn_duration": "Decimal", "msdyn_effort": "Decimal",
    "msdyn_effortcompleted": "Decimal", "msdyn_effortremaining": "Decimal",
    "msdyn_progress": "Decimal", "_msdyn_projectmanager_value": "Lookup",
    "_msdyn_program_value": "Lookup", "msdyn_businesscase": "Memo",
    "msdyn_valuestatement": "Memo", "msdyn_calendarid": "String", "msdyn_schedulemode": "Picklist",
}  # fmt: skip
PSA_PROJECT_COLUMNS = {
    "msdyn_totalplannedcost": "Money", "msdyn_totalactualcost": "Money",
    "msdyn_costestimateatcomplete": "Money", "msdyn_overallprojectstatus": "Picklist",
}  # fmt: skip
TASK_COLUMNS = {
    "msdyn_subject": "String", "_msdyn_project_value": "Lookup",
    "_msdyn_parenttask_value": "Lookup", "_msdyn_projectbucket_value": "Lookup",
    "_msdyn_projectsprint_value": "Lookup", "msdyn_outlinelevel": "Integer",
    "msdyn_displaysequence": "Decimal", "msdyn_summary": "Boolean", "msdyn_ismilestone": "Boolean",
    "msdyn_iscritical": "Boolean", "msdyn_ismanual": "Boolean", "msdyn_scheduledstart": "DateTime",
    "msdyn_scheduledend": "DateTime", "msdyn_start": "DateTime", "msdyn_finish": "DateTime",
    "msdyn_tzascheduledstart": "DateTime", "msdyn_tzascheduledend": "DateTime",
    "msdyn_duration": "Decimal", "msdyn_effort": "Decimal", "msdyn_effortcompleted": "Decimal",
    "msdyn_effortremaining": "Decimal", "msdyn_progress": "Decimal", "msdyn_priority": "Picklist",
    "msdyn_descriptionplaintext": "Memo",
}  # fmt: skip


def guid(*parts: str) -> str:
    return str(uuid.uuid5(NS, "|".join(parts)))


def hex_guid(value: str) -> str:
    """A world id (32 hex) as a lower-case GUID string."""
    return str(uuid.UUID(hex=value)) if re.fullmatch(r"[0-9a-f]{32}", value) else guid(value)


def instant(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def wall(moment: datetime | None, offset_hours: int) -> str | None:
    """A ``msdyn_tza*`` value: the project calendar's wall time, written with a ``Z``."""
    if moment is None:
        return None
    return instant(moment + timedelta(hours=offset_hours))


def dec(value: float | None) -> Decimal | None:
    return (
        None
        if value is None
        else Decimal(str(round(float(value), 10))).quantize(Decimal("0.0000000000"))
    )


_DEC = re.compile(r'"\\u0000D(-?[0-9.]+)"')


def dumps(payload: Any) -> bytes:
    """JSON as Dataverse writes it: decimals with their 10 fractional digits."""

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return "\x00D" + format(value, "f")
        raise TypeError(type(value).__name__)

    return _DEC.sub(r"\1", json.dumps(payload, default=default)).encode()


@dataclass
class Principal:
    """Who a token stands for."""

    name: str
    app_only: bool = True
    application_user: bool = True
    """An app added to the environment as an application user (else 403 0x80072560)."""
    licensed: bool = False
    """Holds a Project (Planner premium) licence: may use the Schedule API."""
    denied: set[str] = field(default_factory=set)
    """Tables (and ``organization``) it lacks the read privilege on."""
    id: str = ""


@dataclass
class OperationSet:
    id: str
    project: str
    description: str
    owner: str
    operations: list[dict[str, Any]] = field(default_factory=list)
    status: int = 192350000
    run_at: float | None = None


class FilterError(ValueError):
    pass


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("null",):
        return None
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if re.fullmatch(
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text
    ):
        return text.lower()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    if text.startswith("guid'"):
        raise FilterError("Unrecognized 'Edm.String' literal 'guid'" + text[5:] + "'")
    raise FilterError(f"Syntax error at position 0 in '{text}'.")


_TOKEN = re.compile(r"\s*(\(|\)|'(?:[^']|'')*'|[^\s()]+)")


def parse_filter(text: str, columns: set[str]) -> Callable[[dict[str, Any]], bool]:
    """``a op v``, ``contains(a,'v')``, ``and``/``or``, parentheses: the subset the adapter
    sends; an unknown column is the platform's ``Could not find a property`` error."""
    functions: dict[str, tuple[str, str, str]] = {}

    def hold(found: re.Match[str]) -> str:
        key = f"__fn{len(functions)}__"
        functions[key] = (found.group(1), found.group(2), found.group(3).replace("''", "'"))
        return key

    text = re.sub(r"(contains|startswith)\((\w+),\s*'((?:[^']|'')*)'\)", hold, text)
    tokens = _TOKEN.findall(text)
    position = 0

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise FilterError("unexpected end of $filter")
        position += 1
        return tokens[position - 1]

    def column(name: str) -> str:
        if name not in columns:
            raise KeyError(name)
        return name

    def atom() -> Callable[[dict[str, Any]], bool]:
        word = take()
        if word == "(":
            inner = expression()
            take()
            return inner
        if word in functions:
            func, name, needle = functions[word]
            attr = column(name)
            if func == "contains":
                return lambda row: needle.lower() in str(row.get(attr) or "").lower()
            return lambda row: str(row.get(attr) or "").lower().startswith(needle.lower())
        attr = column(word)
        op = take()
        value = _literal(take())
        compare = {
            "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "ge": lambda a, b: a >= b,
            "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "lt": lambda a, b: a < b,
        }.get(op)  # fmt: skip
        if compare is None:
            raise FilterError(f"unknown operator {op!r}")

        def test(row: dict[str, Any]) -> bool:
            have = row.get(attr)
            if isinstance(value, datetime):
                have = datetime.fromisoformat(have.replace("Z", "+00:00")) if have else None
            if have is None or value is None:
                return compare(have, value) if op in ("eq", "ne") else False
            if isinstance(have, str) and isinstance(value, str):
                have, other = have.lower(), value.lower()
                return bool(compare(have, other))
            return bool(compare(float(have) if isinstance(value, float) else have, value))

        return test

    def expression() -> Callable[[dict[str, Any]], bool]:
        left = atom()
        while position < len(tokens) and tokens[position] in ("and", "or"):
            joiner = take()
            right = atom()
            a, b = left, right
            left = (
                (lambda r, a=a, b=b: a(r) and b(r))
                if joiner == "and"
                else (lambda r, a=a, b=b: a(r) or b(r))
            )
        return left

    result = expression()
    if position != len(tokens):
        raise FilterError(f"Syntax error in $filter at '{tokens[position]}'")
    return result


class DataverseEmulator(Emulator):
    """One Dataverse environment holding the world's Planner premium plans.

    Args:
        world: the seeded city; its ``planner_premium`` work items become plans and tasks.
        faults: switchable faults.
        users: client id -> secret of the apps added as application users.
        tenant, certificates, cloud: the Entra ID tenant, app certificates (client id -> PEM)
            and national cloud of the sign-in.
        people: user name -> password of those who may approve a device code.
        licensed: user names holding a Project licence (may call the Schedule API).
        org: ``planner`` (pure Planner premium: no cost or health columns) or
            ``project_operations`` (those columns, other option-set labels and values).
        change_tracking: whether the ``msdyn_`` tables and ``bookableresource`` track changes.
        apply_delay: seconds an executed operation set takes to apply.
        tza_offset_hours: the project calendars' offset from UTC (wall times differ by it).
    """

    def __init__(
        self,
        world: World,
        faults: Faults | None = None,
        *,
        users: dict[str, str] | None = None,
        org: str = "planner",
        tenant: str = SANDBOX_TENANT,
        certificates: dict[str, bytes] | None = None,
        cloud: str = "global",
        people: dict[str, str] | None = None,
        licensed: set[str] | None = None,
        change_tracking: bool = True,
        apply_delay: float = 0.3,
        tza_offset_hours: int = -7,
    ) -> None:
        if org not in ORG_OPTIONS:
            raise ValueError(f"org must be one of {', '.join(ORG_OPTIONS)}")
        self.world = world
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.org = org
        self.options = ORG_OPTIONS[org]
        self.apply_delay = apply_delay
        self.offset = tza_offset_hours
        self.host = "127.0.0.1"
        self.version = 8_160_000
        self.entra = Entra(
            tenant=tenant, apps=dict(users or {}), certificates=dict(certificates or {}),
            users=dict(people or {}), cloud=cloud,
        )  # fmt: skip
        """The sign-in: tests drive ``entra.issue_token``, ``approve``, ``expire_tokens``."""
        self.principals: dict[str, Principal] = {}
        for name in list(users or {}) + list(certificates or {}):
            self.principals[name] = Principal(name=name, id=guid("app", name))
        self.licensed = set(licensed or {"pm@city.example.gov"})
        self.operation_sets: dict[str, OperationSet] = {}
        self.error_logs: list[dict[str, Any]] = []
        self.fail_next_execution: str | None = None
        """A ``ScheduleAPI-...`` message the next executed operation set fails with."""
        self.tokens_valid_from = 0
        """Delta tokens below this version have expired."""
        self.expire_days = 30
        self.tables: dict[str, Table] = {}
        self._define(change_tracking)
        self._render()

    # -- the schema ------------------------------------------------------------------------------

    def _define(self, tracked: bool) -> None:
        def table(logical: str, entity_set: str, columns: dict[str, str], **kw: Any) -> None:
            pk = f"{logical}id"
            self.tables[logical] = Table(
                logical, entity_set, pk, {**_base_columns(pk), **columns}, **kw
            )

        project = dict(PROJECT_COLUMNS)
        if self.org == "project_operations":
            project.update(PSA_PROJECT_COLUMNS)
        table(
            "msdyn_project", "msdyn_projects", project, change_tracking=tracked, scheduling=True,
            lookups={"_msdyn_projectmanager_value": "systemuser", "_msdyn_program_value": "msdyn_program"},
        )  # fmt: skip
        table(
            "msdyn_projecttask", "msdyn_projecttasks", TASK_COLUMNS, change_tracking=tracked,
            scheduling=True,
            lookups={
                "_msdyn_project_value": "msdyn_project",
                "_msdyn_parenttask_value": "msdyn_projecttask",
                "_msdyn_projectbucket_value": "msdyn_projectbucket",
                "_msdyn_projectsprint_value": "msdyn_projectsprint",
            },
        )  # fmt: skip
        table(
            "msdyn_projectteam", "msdyn_projectteams",
            {"msdyn_name": "String", "_msdyn_project_value": "Lookup",
             "_msdyn_bookableresourceid_value": "Lookup"},
            change_tracking=tracked, scheduling=True,
            lookups={"_msdyn_project_value": "msdyn_project",
                     "_msdyn_bookableresourceid_value": "bookableresource"},
        )  # fmt: skip
        table(
            "msdyn_resourceassignment", "msdyn_resourceassignments",
            {"msdyn_name": "String", "_msdyn_taskid_value": "Lookup",
             "_msdyn_projectid_value": "Lookup", "_msdyn_projectteamid_value": "Lookup",
             "_msdyn_bookableresourceid_value": "Lookup", "msdyn_plannedwork": "Memo",
             "msdyn_start": "DateTime", "msdyn_finish": "DateTime", "msdyn_effort": "Decimal",
             "msdyn_committype": "Picklist"},
            change_tracking=tracked, scheduling=True,
            lookups={"_msdyn_taskid_value": "msdyn_projecttask",
                     "_msdyn_projectid_value": "msdyn_project",
                     "_msdyn_projectteamid_value": "msdyn_projectteam",
                     "_msdyn_bookableresourceid_value": "bookableresource"},
        )  # fmt: skip
        table(
            "msdyn_projectbucket", "msdyn_projectbuckets",
            {"msdyn_name": "String", "_msdyn_project_value": "Lookup"},
            change_tracking=tracked, scheduling=True,
        )  # fmt: skip
        table(
            "msdyn_projectsprint", "msdyn_projectsprints",
            {"msdyn_name": "String", "_msdyn_project_value": "Lookup", "msdyn_start": "DateTime",
             "msdyn_finish": "DateTime"},
            change_tracking=tracked, scheduling=True,
        )  # fmt: skip
        table(
            "msdyn_projecttaskdependency", "msdyn_projecttaskdependencies",
            {"_msdyn_project_value": "Lookup", "_msdyn_predecessortask_value": "Lookup",
             "_msdyn_successortask_value": "Lookup",
             "msdyn_projecttaskdependencylinktype": "Picklist",
             "msdyn_projecttaskdependencylinklag": "Decimal"},
            change_tracking=tracked, scheduling=True,
        )  # fmt: skip
        table(
            "bookableresource", "bookableresources",
            {"name": "String", "resourcetype": "Picklist", "_userid_value": "Lookup",
             "msdyn_primaryemail": "String", "_calendarid_value": "Lookup", "timezone": "Integer"},
            change_tracking=tracked, lookups={"_userid_value": "systemuser"},
        )  # fmt: skip
        table(
            "systemuser", "systemusers",
            {"fullname": "String", "domainname": "String", "internalemailaddress": "String",
             "isdisabled": "Boolean", "applicationid": "Uniqueidentifier"},
        )  # fmt: skip
        table(
            "organization", "organizations",
            {"name": "String", "expirechangetrackingindays": "Integer"},
            change_tracking=False,
        )  # fmt: skip
        table(
            "msdyn_operationset", "msdyn_operationsets",
            {"msdyn_description": "String", "msdyn_status": "Picklist",
             "_msdyn_project_value": "Lookup", "msdyn_correlationid": "String"},
            change_tracking=False,
        )  # fmt: skip
        table(
            "msdyn_psserrorlog", "msdyn_psserrorlogs",
            {"msdyn_errorcode": "String", "msdyn_log": "Memo", "_msdyn_operationset_value": "Lookup"},
            change_tracking=False,
        )  # fmt: skip

    def option_value(self, table: str, attribute: str, label: str) -> int:
        return next(v for v, lab in self.options[(table, attribute)].items() if lab == label)

    # -- the world as rows -----------------------------------------------------------------------

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def _put(
        self, logical: str, row: dict[str, Any], *, at: datetime | None = None
    ) -> dict[str, Any]:
        table = self.tables[logical]
        moment = at or self.world.now
        row.setdefault("createdon", instant(moment))
        row["modifiedon"] = (
            instant(moment) if at is not None or "modifiedon" not in row else row["modifiedon"]
        )
        row.setdefault("statecode", 0)
        row.setdefault("statuscode", 1)
        row["versionnumber"] = self._next_version()
        for column in table.columns:
            row.setdefault(column, None)
        table.rows[row[table.pk]] = row
        return row

    def _render(self) -> None:
        world = self.world
        people = {p.id: p for p in world.people}
        self._put("organization", {
            "organizationid": guid("org"), "name": SANDBOX_ORG,
            "expirechangetrackingindays": self.expire_days,
        })  # fmt: skip
        for principal in self.principals.values():
            self._put("systemuser", {
                "systemuserid": principal.id, "fullname": f"# {principal.name}",
                "domainname": f"{principal.name}@sandbox.example",
                "applicationid": guid("client", principal.name), "isdisabled": False,
            })  # fmt: skip
        resources: list[str] = []
        for person in world.people[:30]:
            user_id = hex_guid(person.id)
            self._put("systemuser", {
                "systemuserid": user_id, "fullname": person.name, "domainname": person.upn,
                "internalemailaddress": person.upn, "isdisabled": not person.active,
            }, at=person.updated)  # fmt: skip
            rid = guid("resource", person.id)
            resources.append(rid)
            self._put("bookableresource", {
                "bookableresourceid": rid, "name": person.name, "resourcetype": 3,
                "_userid_value": user_id, "msdyn_primaryemail": person.upn,
                "_calendarid_value": guid("calendar", person.id), "timezone": 4,
                "statecode": 0 if person.active else 1, "statuscode": 1 if person.active else 2,
            }, at=person.updated)  # fmt: skip
        for role in ("Business Analyst", "GIS Analyst"):
            self._put("bookableresource", {
                "bookableresourceid": guid("generic", role), "name": role, "resourcetype": 1,
                "_calendarid_value": guid("calendar", role), "timezone": 0,
            }, at=world.now - timedelta(days=400))  # fmt: skip
        work = [w for w in world.work if w.platform == "planner_premium"]
        self._children: dict[str | None, list[Any]] = {}
        for item in work:
            self._children.setdefault(item.parent_id, []).append(item)
        members = {p.id for p in world.people[:30]}
        states = STATE_STATUS[self.org]
        for index, plan in enumerate(w for w in work if w.kind == "project"):
            pid = hex_guid(plan.id)
            manager = people.get(plan.manager_id or "")
            statecode, status = states.get(plan.state, (0, "Active"))
            row: dict[str, Any] = {
                "msdyn_projectid": pid,
                "msdyn_subject": plan.name,
                "msdyn_description": f"{plan.name} ({plan.department})",
                "msdyn_scheduledstart": instant(plan.planned_start),
                "msdyn_finish": instant(plan.planned_finish),
                "msdyn_tzascheduledstart": wall(plan.planned_start, self.offset),
                "msdyn_tzafinish": wall(plan.planned_finish, self.offset),
                "msdyn_progress": dec(plan.percent_complete / 100.0),
                "msdyn_effort": dec(round(plan.budget / 95.0)),
                "msdyn_effortcompleted": dec(
                    round(plan.budget / 95.0 * plan.percent_complete / 100)
                ),
                "msdyn_duration": dec(
                    (plan.planned_finish - plan.planned_start).days
                    if plan.planned_start and plan.planned_finish
                    else None
                ),
                "_msdyn_projectmanager_value": hex_guid(manager.id)
                if manager and manager.id in members
                else None,
                "_msdyn_program_value": None,
                "msdyn_businesscase": "Approved" if plan.business_case_approved else None,
                "msdyn_calendarid": guid("calendar", pid).upper(),
                "msdyn_schedulemode": 192350001,
                "statecode": statecode,
                "statuscode": self.option_value("msdyn_project", "statuscode", status),
                "createdon": instant(plan.created),
            }
            if self.org == "project_operations":
                row.update(
                    msdyn_totalplannedcost=dec(plan.budget), msdyn_totalactualcost=dec(plan.actual_cost),
                    msdyn_costestimateatcomplete=dec(plan.forecast_cost),
                    msdyn_overallprojectstatus=HEALTH_VALUE[plan.health],
                )  # fmt: skip
            self._put("msdyn_project", row, at=plan.updated)
            bucket = guid("bucket", pid)
            self._put("msdyn_projectbucket", {"msdyn_projectbucketid": bucket, "msdyn_name": "Bucket 1",
                                              "_msdyn_project_value": pid}, at=plan.created)  # fmt: skip
            sprint = None
            if plan.number.startswith("PP-"):
                sprint = guid("sprint", pid)
                self._put("msdyn_projectsprint", {
                    "msdyn_projectsprintid": sprint, "msdyn_name": "Sprint 1", "_msdyn_project_value": pid,
                    "msdyn_start": instant(plan.planned_start),
                    "msdyn_finish": instant((plan.planned_start or world.now) + timedelta(days=14)),
                }, at=plan.created)  # fmt: skip
            team: list[str] = []
            for k in range(2):
                rid = resources[(index * 2 + k) % len(resources)] if resources else None
                if rid is None:
                    continue
                member = guid("team", pid, rid)
                team.append(member)
                self._put("msdyn_projectteam", {
                    "msdyn_projectteamid": member, "_msdyn_project_value": pid,
                    "_msdyn_bookableresourceid_value": rid,
                    "msdyn_name": self.tables["bookableresource"].rows[rid]["name"],
                }, at=plan.created)  # fmt: skip
            self._tasks(plan, pid, work, bucket, sprint, team)

    def _tasks(self, plan: Any, pid: str, work: list[Any], bucket: str, sprint: str | None,
               team: list[str]) -> None:  # fmt: skip
        order = 0
        previous: str | None = None

        def add(item: Any, parent: str | None, level: int) -> None:
            nonlocal order, previous
            tid = hex_guid(item.id)
            children = self._children.get(item.id, [])
            milestone = item.kind == "milestone"
            finish = item.planned_start if milestone else item.planned_finish
            order += 1
            hours = 0.0 if milestone or children else round(item.budget / 95.0, 1)
            self._put("msdyn_projecttask", {
                "msdyn_projecttaskid": tid, "msdyn_subject": item.name, "_msdyn_project_value": pid,
                "_msdyn_parenttask_value": parent, "_msdyn_projectbucket_value": bucket,
                "_msdyn_projectsprint_value": sprint if not children else None,
                "msdyn_outlinelevel": level, "msdyn_displaysequence": dec(order),
                "msdyn_summary": bool(children), "msdyn_ismilestone": milestone,
                "msdyn_iscritical": False, "msdyn_ismanual": False,
                "msdyn_scheduledstart": instant(item.planned_start), "msdyn_scheduledend": instant(finish),
                "msdyn_start": instant(item.actual_start), "msdyn_finish": instant(item.actual_finish),
                "msdyn_tzascheduledstart": wall(item.planned_start, self.offset),
                "msdyn_tzascheduledend": wall(finish, self.offset),
                "msdyn_duration": dec((finish - item.planned_start).days if finish and item.planned_start else 0),
                "msdyn_effort": dec(hours), "msdyn_effortcompleted": dec(hours * item.percent_complete / 100),
                "msdyn_effortremaining": dec(hours * (1 - item.percent_complete / 100)),
                "msdyn_progress": dec(item.percent_complete / 100.0),
                "msdyn_priority": (1, 3, 5, 5, 9)[item.priority - 1],
                "msdyn_descriptionplaintext": None,
                "createdon": instant(item.created),
            }, at=item.updated)  # fmt: skip
            if not children and not milestone and team:
                member = team[order % len(team)]
                resource = self.tables["msdyn_projectteam"].rows[member][
                    "_msdyn_bookableresourceid_value"
                ]
                start = item.planned_start
                contour = [
                    {"End": f"/Date({int((start + timedelta(days=d, hours=8)).timestamp() * 1000)})/",
                     "Hours": 8, "Start": f"/Date({int((start + timedelta(days=d)).timestamp() * 1000)})/"}
                    for d in range(3)
                ] if start else []  # fmt: skip
                self._put("msdyn_resourceassignment", {
                    "msdyn_resourceassignmentid": guid("assignment", tid), "msdyn_name": item.name,
                    "_msdyn_taskid_value": tid, "_msdyn_projectid_value": pid,
                    "_msdyn_projectteamid_value": member, "_msdyn_bookableresourceid_value": resource,
                    "msdyn_plannedwork": json.dumps(contour, separators=(",", ":")),
                    "msdyn_start": instant(start), "msdyn_finish": instant(finish),
                    "msdyn_effort": dec(hours), "msdyn_committype": 192350001,
                }, at=item.updated)  # fmt: skip
            if previous is not None and not children:
                link = self.option_value(
                    "msdyn_projecttaskdependency",
                    "msdyn_projecttaskdependencylinktype",
                    "Finish-to-Start",
                )
                self._put("msdyn_projecttaskdependency", {
                    "msdyn_projecttaskdependencyid": guid("dependency", previous, tid),
                    "_msdyn_project_value": pid, "_msdyn_predecessortask_value": previous,
                    "_msdyn_successortask_value": tid, "msdyn_projecttaskdependencylinktype": link,
                    "msdyn_projecttaskdependencylinklag": dec(0),
                }, at=item.updated)  # fmt: skip
            if not children:
                previous = tid
            for child in children:
                add(child, tid, level + 1)

        for item in self._children.get(plan.id, []):
            add(item, None, 1)

    # -- test handles ----------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def table_of(self, name: str) -> Table:
        return self.tables[name]

    def touch(self, logical: str, row_id: str, **changes: Any) -> dict[str, Any]:
        """Edit one row as a user would: new version, ``modifiedon`` now (or, with
        ``same_second_edits``, as it was)."""
        with self.lock:
            row = self.tables[logical].rows[row_id]
            row.update(changes)
            if not self.faults.same_second_edits:
                row["modifiedon"] = instant(self.now())
            row["versionnumber"] = self._next_version()
            return row

    def delete(self, logical: str, row_id: str) -> None:
        """Delete a row (a plan takes its tasks, team, assignments and buckets with it)."""
        with self.lock:
            table = self.tables[logical]
            if table.rows.pop(row_id, None) is None:
                return
            table.deleted.append((self._next_version(), row_id))
            if logical == "msdyn_project":
                for child in self.tables.values():
                    if not child.scheduling:
                        continue  # operation sets and their logs outlive the plan
                    for column in ("_msdyn_project_value", "_msdyn_projectid_value"):
                        if column in child.columns:
                            for cid in [
                                i for i, r in child.rows.items() if r.get(column) == row_id
                            ]:
                                self.delete(child.logical, cid)

    def has(self, native_id: str) -> bool:
        with self.lock:
            return any(native_id in table.rows for table in self.tables.values())

    def forget(self, native_id: str) -> bool:
        with self.lock:
            logical = next((n for n, t in self.tables.items() if native_id in t.rows), None)
        if logical is None:
            return False
        self.delete(logical, native_id)
        return True

    def expire_change_tokens(self) -> None:
        """Every delta token handed out so far has expired (older than the org's retention)."""
        with self.lock:
            self.tokens_valid_from = self._next_version()

    def add_principal(self, principal: Principal) -> Principal:
        """Make ``principal`` known: an app (an application user unless said otherwise, its
        privileges) or a delegated user (its licence); its tokens come from ``entra``."""
        with self.lock:
            principal.id = principal.id or guid("principal", principal.name)
            self.principals[principal.name] = principal
            if principal.licensed:
                self.licensed.add(principal.name)
            if principal.application_user or not principal.app_only:
                self._put("systemuser", {
                    "systemuserid": principal.id, "fullname": principal.name,
                    "domainname": principal.name if "@" in principal.name else None,
                    "internalemailaddress": principal.name if "@" in principal.name else None,
                    "applicationid": guid("client", principal.name) if principal.app_only else None,
                    "isdisabled": False,
                })  # fmt: skip
            return principal

    # -- HTTP ------------------------------------------------------------------------------------

    def _json(
        self, status: str, payload: Any, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        return status, [
            ("Content-Type", "application/json; odata.metadata=minimal"),
            ("OData-Version", "4.0"), *(headers or []),
        ], dumps(payload)  # fmt: skip

    def _error(
        self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                   405: "Method Not Allowed", 412: "Precondition Failed", 429: "Too Many Requests",
                   503: "Service Unavailable"}  # fmt: skip
        return self._json(
            f"{status} {reasons.get(status, 'Error')}",
            {"error": {"code": code, "message": message}},
            headers,
        )

    def _principal(self, environ: dict[str, Any]) -> Principal | None:
        grant = self.entra.bearer(environ)
        if grant is None or grant.expired or grant.audience.rstrip("/") != f"https://{self.host}":
            return None
        if grant.app_only:
            known = self.principals.get(grant.client_id)
            # An app Entra ID signs in but nobody added to this environment.
            return known or Principal(grant.client_id, application_user=False)
        person = self.principals.get(grant.subject)
        if person is None:
            person = self.principals[grant.subject] = Principal(
                grant.subject, app_only=False, id=guid("user", grant.subject)
            )
        person.licensed = person.licensed or grant.subject in self.licensed
        return person

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        self.host = environ.get("HTTP_HOST", self.host)
        if self.entra.handles(path):
            return self.entra.serve(environ, method, path)
        match = re.match(r"^/api/data/(v9\.[12])/(.*)$", path)
        if not match:
            return self._error(
                404, "0x8006088a", f"Resource not found for the segment '{path.strip('/')}'."
            )
        self.api = f"https://{self.host}/api/data/{match.group(1)}"
        rest = unquote(match.group(2))
        principal = self._principal(environ)
        if principal is None:
            return self._error(401, "0x80040220", "Bearer token is missing or invalid.", [(
                "WWW-Authenticate",
                f'Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize, resource_id=https://{self.host}/',
            )])  # fmt: skip
        listing = method == "GET" and "(" not in rest.split("?")[0] and rest not in ("WhoAmI",)
        fault = self.faults.take(listing=listing)
        if fault == "throttle":
            return self._error(
                429, "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                [("Retry-After", str(int(self.faults.retry_after)))],
            )  # fmt: skip
        if fault == "error":
            return self._error(503, "0x80040216", "An unexpected error occurred.")
        if principal.app_only and not principal.application_user:
            return self._error(403, "0x80072560", "The user is not a member of the organization.")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        prefer = environ.get("HTTP_PREFER", "")
        with self.lock:
            self._run_due()
            try:
                if method == "GET":
                    response = self._get(rest, params, prefer, principal, query)
                elif method == "POST" and not rest.startswith(
                    tuple(t.entity_set for t in self.tables.values())
                ):
                    response = self._action(rest, environ, principal)
                elif method in ("POST", "PATCH", "DELETE"):
                    response = self._direct_write(rest, method)
                else:
                    response = self._error(
                        405, "0x80060888", f"The HTTP method '{method}' is not allowed."
                    )
            except KeyError as exc:
                entity = getattr(self, "_current", "")
                response = self._error(
                    400,
                    "0x80060888",
                    f"Could not find a property named '{exc.args[0]}' on type 'Microsoft.Dynamics.CRM.{entity}'.",
                )
            except FilterError as exc:
                response = self._error(400, "0x80060888", str(exc))
        if fault == "malformed" and response[0].startswith("200"):
            status, headers, body = response
            return status, headers, body[: len(body) // 2]
        return response

    # -- reads -----------------------------------------------------------------------------------

    def _denied(self, principal: Principal, table: Table) -> Response | None:
        if table.logical in principal.denied:
            return self._error(403, "0x80040220", (
                f"Principal user (Id={principal.id}, type=8, roleCount=1, privilegeCount=412, "
                f"accessMode=4, MetadataCachePrivilegesCount=0, BusinessUnitId={guid('bu')}), is "
                f"missing prvRead{table.logical} privilege (Id={guid('prv', table.logical)}) on "
                f"OTC=10{len(table.logical)} for entity '{table.logical}'. context.Caller={principal.id}"
            ))  # fmt: skip
        return None

    def _get(
        self, rest: str, params: dict[str, str], prefer: str, principal: Principal, query: str
    ) -> Response:
        if rest == "WhoAmI":
            return self._json("200 OK", {"BusinessUnitId": guid("bu"), "UserId": principal.id,
                                         "OrganizationId": guid("org")})  # fmt: skip
        if rest.startswith("EntityDefinitions"):
            return self._metadata(rest, params)
        name, _, key = rest.partition("(")
        table = next((t for t in self.tables.values() if t.entity_set == name), None)
        if table is None:
            return self._error(404, "0x8006088a", f"Resource not found for the segment '{name}'.")
        self._current = table.logical
        denied = self._denied(principal, table)
        if denied:
            return denied
        if key:
            row = table.rows.get(key.rstrip(")").lower())
            if row is None:
                return self._error(
                    404, "0x80040217", f"{table.logical} With Id = {key.rstrip(')')} Does Not Exist"
                )
            return self._json("200 OK", self._shape(table, row, params.get("$select"), prefer))
        if "$skip" in params:
            return self._error(400, "0x80060888", "The query parameter $skip is not supported.")
        size = MAX_PAGE
        found = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        if found:
            size = max(1, min(int(found.group(1)), MAX_PAGE))
        tracking = "odata.track-changes" in prefer or "$deltatoken" in params
        if tracking and table.change_tracking:
            for option in ("$filter", "$orderby", "$expand", "$top"):
                if option in params:
                    return self._error(
                        400,
                        "0x80060888",
                        f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
                    )
        applied = [f"odata.maxpagesize={size}"] if found else []
        select = params.get("$select")
        if select:
            for column in select.split(","):
                if column.strip() not in table.columns:
                    raise KeyError(column.strip())
        if "$deltatoken" in params and table.change_tracking:
            return self._delta(table, params, size, prefer, applied, query)
        rows = list(table.rows.values())
        if "$filter" in params:
            test = parse_filter(params["$filter"], set(table.columns))
            rows = [r for r in rows if test(r)]
        order = [
            (o.split()[0], o.split()[1:] == ["desc"])
            for o in params.get("$orderby", "").split(",")
            if o.strip()
        ]
        for column, _desc in order:
            if column not in table.columns:
                raise KeyError(column)
        order = [o for o in order if o[0] != table.pk] + [(table.pk, False)]
        for column, descending in reversed(order):
            rows.sort(
                key=lambda r, c=column: (r.get(c) is None, str(r.get(c) or "")), reverse=descending
            )
        if "$top" in params and not found:
            rows = rows[: int(params["$top"])]
        start = 0
        cookie = params.get("$skiptoken")
        if cookie:
            page, last = self._read_cookie(cookie, table)
            if page is None:
                return self._error(
                    400,
                    "0x80040203",
                    "Invalid paging cookie: the $skiptoken was changed. Send @odata.nextLink as received.",
                )
            position = next(
                (i for i, r in enumerate(rows) if self._sort_key(r, order) > last), len(rows)
            )
            start = position
        chunk = rows[start : start + size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.api}/$metadata#{table.entity_set}({select or '*'})",
            "value": [self._shape(table, r, select, prefer) for r in chunk],
        }
        if params.get("$count") == "true":
            body["@odata.count"] = min(self.faults.count(len(rows)), 5000)
            if len(rows) > 5000:
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = True
        if start + size < len(rows):
            page_number = int((self._read_cookie(cookie, table)[0] or 1) if cookie else 1) + 1
            link_params = {k: v for k, v in params.items() if k != "$skiptoken"}
            body["@odata.nextLink"] = self._link(
                table, link_params, self._cookie(page_number, chunk[-1], order)
            )
            if self.faults.mutate_between_pages:
                for row in rows[start + size : start + size + self.faults.mutate_between_pages]:
                    self.touch(table.logical, row[table.pk])
        elif tracking and table.change_tracking:
            body["@odata.deltaLink"] = self._delta_link(table, select)
        headers = (
            [
                (
                    "Preference-Applied",
                    ",".join(
                        applied
                        + (["odata.track-changes"] if tracking and table.change_tracking else [])
                    ),
                )
            ]
            if applied or tracking
            else []
        )
        return self._json("200 OK", body, headers)

    @staticmethod
    def _sort_key(row: dict[str, Any], order: list[tuple[str, bool]]) -> tuple[Any, ...]:
        return tuple((row.get(c) is None, str(row.get(c) or "")) for c, _d in order)

    def _cookie(self, page: int, last: dict[str, Any], order: list[tuple[str, bool]]) -> str:
        inner = (
            f'<cookie page="{page - 1}">'
            + "".join(
                f'<{c} last="{quote(json.dumps(last.get(c), default=str), safe="")}" />'
                for c, _d in order
            )
            + "</cookie>"
        )
        # The cookie inside the token is encoded once more: the %25 of the real skiptoken.
        return f'<cookie pagenumber="{page}" pagingcookie="{quote(inner, safe="")}" istracking="False" />'

    def _read_cookie(self, token: str, table: Table) -> tuple[int | None, tuple[Any, ...]]:
        found = re.fullmatch(
            r'<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="False" />', token
        )
        if not found or "%" not in found.group(2):
            return None, ()
        inner = unquote(found.group(2))
        values = re.findall(r'<(\w+) last="([^"]*)" />', inner)
        if not values:
            return None, ()
        try:
            lasts = [json.loads(unquote(v)) for _c, v in values]
        except ValueError:
            return None, ()
        return int(found.group(1)), tuple((v is None, str(v or "")) for v in lasts)

    def _link(self, table: Table, params: dict[str, str], skiptoken: str | None = None) -> str:
        parts = [f"{k}={quote(v, safe=',()$')}" for k, v in params.items()]
        if skiptoken is not None:
            parts.append("$skiptoken=" + quote(skiptoken, safe=""))
        return f"{self.api}/{table.entity_set}?" + "&".join(parts)

    def _delta_link(self, table: Table, select: str | None) -> str:
        stamp = self.now().strftime("%m/%d/%Y %H:%M:%S")
        token = quote(f"{self.version}!{stamp}", safe="")
        head = f"$select={select}&" if select else ""
        return f"{self.api}/{table.entity_set}?{head}$deltatoken={token}"

    def _delta(self, table: Table, params: dict[str, str], size: int, prefer: str,
               applied: list[str], query: str) -> Response:  # fmt: skip
        found = re.fullmatch(r"(\d+)!.*", params["$deltatoken"])
        if not found:
            return self._error(400, "0x80044352", EXPIRED_TOKEN)
        since = int(found.group(1))
        if since < self.tokens_valid_from:
            return self._error(400, "0x80044352", EXPIRED_TOKEN)
        select = params.get("$select")
        changed = sorted((r for r in table.rows.values() if r["versionnumber"] > since),
                         key=lambda r: r["versionnumber"])  # fmt: skip
        gone = [(v, i) for v, i in table.deleted if v > since]
        offset = (
            int(params.get("$skiptoken", "0") or 0)
            if params.get("$skiptoken", "0").isdigit()
            else 0
        )
        items: list[dict[str, Any]] = [self._shape(table, r, select, prefer) for r in changed]
        items += [{"@odata.context": f"{self.api}/$metadata#{table.entity_set}/$deletedEntity",
                   "id": i, "reason": "deleted"} for _v, i in gone]  # fmt: skip
        chunk = items[offset : offset + size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.api}/$metadata#{table.entity_set}({select or '*'})/$delta",
            "value": chunk,
        }
        if offset + size < len(items):
            link_params = {k: v for k, v in params.items() if k != "$skiptoken"}
            body["@odata.nextLink"] = (
                self._link(table, link_params) + f"&$skiptoken={offset + size}"
            )
        else:
            body["@odata.deltaLink"] = self._delta_link(table, select)
        return self._json(
            "200 OK", body, [("Preference-Applied", ",".join(applied + ["odata.track-changes"]))]
        )

    def _shape(
        self, table: Table, row: dict[str, Any], select: str | None, prefer: str
    ) -> dict[str, Any]:
        columns = [c.strip() for c in select.split(",")] if select else list(table.columns)
        if table.pk not in columns:
            columns.append(table.pk)
        out: dict[str, Any] = {"@odata.etag": f'W/"{row["versionnumber"]}"'}
        annotate = "FormattedValue" in prefer or 'annotations="*"' in prefer
        lookups = "lookuplogicalname" in prefer or 'annotations="*"' in prefer
        for column in columns:
            value = row.get(column)
            out[column] = value
            if value is None:
                continue
            kind = table.columns.get(column)
            if annotate and kind in ("Picklist", "State", "Status"):
                label = self.options.get((table.logical, column), {}).get(int(value))
                if label:
                    out[f"{column}@{FORMATTED}"] = label
            if kind == "Lookup":
                target = table.lookups.get(column)
                if lookups and target:
                    out[f"{column}@{LOOKUP_NAME}"] = target
                    out[f"{column}@{NAV_NAME}"] = column[1:-6]
                if annotate and target in self.tables:
                    other = self.tables[target].rows.get(value, {})
                    name = (
                        other.get("msdyn_subject")
                        or other.get("name")
                        or other.get("fullname")
                        or other.get("msdyn_name")
                    )
                    if name:
                        out[f"{column}@{FORMATTED}"] = name
        return out

    def _metadata(self, rest: str, params: dict[str, str]) -> Response:
        single = re.match(
            r"EntityDefinitions\(LogicalName='(\w+)'\)(/Attributes/Microsoft\.Dynamics\.CRM\.(\w+))?$",
            rest,
        )
        if single:
            table = self.tables.get(single.group(1))
            if table is None:
                return self._error(
                    404, "0x80040217", f"Could not find entity with name '{single.group(1)}'."
                )
            if single.group(2):
                kind = single.group(3)
                wanted = {"EnumAttributeMetadata": ("Picklist", "State", "Status"),
                          "PicklistAttributeMetadata": ("Picklist",), "StatusAttributeMetadata": ("Status",),
                          "StateAttributeMetadata": ("State",)}.get(kind)  # fmt: skip
                if wanted is None:
                    return self._error(
                        404, "0x8006088a", f"Resource not found for the segment '{kind}'."
                    )
                values = []
                for column, attribute_type in table.columns.items():
                    options = self.options.get((table.logical, column))
                    if attribute_type in wanted and options:
                        values.append({
                            "LogicalName": column, "MetadataId": guid("attr", table.logical, column),
                            "OptionSet": {"Options": [
                                {"Value": v, "Label": {"UserLocalizedLabel": {"Label": lab, "LanguageCode": 1033},
                                                        "LocalizedLabels": [{"Label": lab, "LanguageCode": 1033}]}}
                                for v, lab in options.items()
                            ]},
                        })  # fmt: skip
                return self._json(
                    "200 OK",
                    {
                        "@odata.context": f"{self.api}/$metadata#EntityDefinitions('{table.logical}')/Attributes/Microsoft.Dynamics.CRM.{kind}",
                        "value": values,
                    },
                )
            return self._json("200 OK", self._definition(table, expand=True))
        if rest != "EntityDefinitions":
            return self._error(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
        tables = list(self.tables.values())
        if "$filter" in params:
            names = set(re.findall(r"LogicalName eq '(\w+)'", params["$filter"]))
            tables = [t for t in tables if t.logical in names]
        expand = "Attributes" in params.get("$expand", "")
        return self._json("200 OK", {"@odata.context": f"{self.api}/$metadata#EntityDefinitions",
                                     "value": [self._definition(t, expand=expand) for t in tables]})  # fmt: skip

    def _definition(self, table: Table, *, expand: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "LogicalName": table.logical,
            "EntitySetName": table.entity_set,
            "PrimaryIdAttribute": table.pk,
            "ChangeTrackingEnabled": table.change_tracking,
            "MetadataId": guid("entity", table.logical),
        }
        if expand:
            body["Attributes"] = [
                {"LogicalName": c[1:-6] if c.startswith("_") else c, "AttributeType": t,
                 "MetadataId": guid("attr", table.logical, c)}
                for c, t in table.columns.items()
            ]  # fmt: skip
        return body

    # -- writes ----------------------------------------------------------------------------------

    def _direct_write(self, rest: str, method: str) -> Response:
        name = rest.split("(")[0]
        table = next((t for t in self.tables.values() if t.entity_set == name), None)
        if table is None:
            return self._error(404, "0x8006088a", f"Resource not found for the segment '{name}'.")
        operation = {"POST": "Create", "PATCH": "Update", "DELETE": "Delete"}[method]
        if table.scheduling:
            return self._error(
                400,
                "0x80040265",
                f"We’re sorry. You cannot directly do '{operation}' operation to '{table.logical}'. Try editing it through the Resource editing UI via Project.",
            )
        return self._error(403, "0x80040220", f"The sandbox keeps {table.logical} read-only.")

    def _body(self, environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise FilterError("The request body is not valid JSON.") from None
        return body if isinstance(body, dict) else {}

    def _action(self, rest: str, environ: dict[str, Any], principal: Principal) -> Response:
        body = self._body(environ)
        actions = {
            "msdyn_CreateProjectV1": self._create_project, "msdyn_CreateOperationSetV1": self._create_set,
            "msdyn_PssCreateV1": self._pss_create, "msdyn_PssDeleteV1": self._pss_delete,
            "msdyn_ExecuteOperationSetV1": self._execute, "msdyn_AbandonOperationSetV1": self._abandon,
        }  # fmt: skip
        handler = actions.get(rest)
        if handler is None:
            return self._error(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
        if principal.app_only or not principal.licensed:
            who = (
                "an application user" if principal.app_only else "a user without a Project licence"
            )
            return self._error(
                403,
                "0x80040220",
                f"ScheduleAPI-AU-0001: Project Schedule APIs can only be used by users with a Microsoft Project license; the caller is {who}.",
            )
        return handler(body, principal)

    def _create_project(self, body: dict[str, Any], principal: Principal) -> Response:
        entity = body.get("Project") or {}
        if not entity.get("msdyn_subject"):
            return self._error(400, "0x80040203", "ScheduleAPI-AV-0002: msdyn_subject is required.")
        pid = str(entity.get("msdyn_projectid") or uuid.uuid4())
        now = self.now()
        row = {k: v for k, v in entity.items() if k in self.tables["msdyn_project"].columns}
        row.update(msdyn_projectid=pid, msdyn_progress=dec(0), _msdyn_projectmanager_value=principal.id,
                   statuscode=1, statecode=0)  # fmt: skip
        self._put("msdyn_project", row, at=now)
        self._put("msdyn_projectbucket", {"msdyn_projectbucketid": guid("bucket", pid), "msdyn_name": "Bucket 1",
                                          "_msdyn_project_value": pid}, at=now)  # fmt: skip
        return self._json(
            "200 OK",
            {
                "@odata.context": f"{self.api}/$metadata#Microsoft.Dynamics.CRM.msdyn_CreateProjectV1Response",
                "ProjectId": pid,
            },
        )

    def _open_sets(self, owner: str) -> int:
        return sum(
            1 for s in self.operation_sets.values() if s.owner == owner and s.status == 192350000
        )

    def _create_set(self, body: dict[str, Any], principal: Principal) -> Response:
        project = str(body.get("ProjectId") or "")
        if project not in self.tables["msdyn_project"].rows:
            return self._error(
                400, "0x80040203", f"ScheduleAPI-OV-0002: project {project} does not exist."
            )
        if self._open_sets(principal.id) >= 10:
            return self._error(
                400,
                "0x80040203",
                "ScheduleAPI-OV-0004: a user may have at most 10 open operation sets; execute or abandon one.",
            )
        set_id = str(uuid.uuid4())
        self.operation_sets[set_id] = OperationSet(
            set_id, project, str(body.get("Description") or ""), principal.id
        )
        self._put("msdyn_operationset", {"msdyn_operationsetid": set_id, "msdyn_description": body.get("Description"),
                                         "msdyn_status": 192350000, "_msdyn_project_value": project}, at=self.now())  # fmt: skip
        return self._json("200 OK", {"OperationSetId": set_id})

    def _stage(
        self, body: dict[str, Any], principal: Principal, operation: dict[str, Any]
    ) -> Response:
        set_id = str(body.get("OperationSetId") or "")
        opset = self.operation_sets.get(set_id)
        if opset is None or opset.owner != principal.id:
            return self._error(
                400, "0x80040203", f"ScheduleAPI-OV-0003: operation set {set_id} does not exist."
            )
        if opset.status != 192350000:
            return self._error(
                400, "0x80040203", f"ScheduleAPI-OV-0005: operation set {set_id} is not open."
            )
        if len(opset.operations) >= 200:
            return self._error(
                400,
                "0x80040203",
                "ScheduleAPI-OV-0006: an operation set holds at most 200 operations.",
            )
        detail = str(uuid.uuid4())
        opset.operations.append({**operation, "detail": detail})
        response = {"operationSetId": set_id, "operationSetDetailId": detail, "operationType": operation["type"],
                    "recordId": operation["record"], "correlationId": str(uuid.uuid4())}  # fmt: skip
        return self._json("200 OK", {"OperationSetResponse": json.dumps(response)})

    def _pss_create(self, body: dict[str, Any], principal: Principal) -> Response:
        entity = dict(body.get("Entity") or {})
        kind = str(entity.pop("@odata.type", "")).rsplit(".", 1)[-1]
        if kind not in self.tables:
            return self._error(
                400, "0x80040203", f"ScheduleAPI-OV-0001: unknown entity type {kind!r}."
            )
        pk = self.tables[kind].pk
        record = str(entity.get(pk) or uuid.uuid4())
        entity[pk] = record
        return self._stage(
            body, principal, {"type": "Create", "entity": kind, "record": record, "row": entity}
        )

    def _pss_delete(self, body: dict[str, Any], principal: Principal) -> Response:
        kind = str(body.get("EntityLogicalName") or "")
        record = str(body.get("RecordId") or "")
        return self._stage(body, principal, {"type": "Delete", "entity": kind, "record": record})

    def _abandon(self, body: dict[str, Any], principal: Principal) -> Response:
        opset = self.operation_sets.get(str(body.get("OperationSetId") or ""))
        if opset is None:
            return self._error(400, "0x80040203", "ScheduleAPI-OV-0003: no such operation set.")
        opset.status = 192350005
        self.touch("msdyn_operationset", opset.id, msdyn_status=opset.status)
        return self._json(
            "200 OK", {"OperationSetResponse": json.dumps({"operationSetId": opset.id})}
        )

    def _execute(self, body: dict[str, Any], principal: Principal) -> Response:
        opset = self.operation_sets.get(str(body.get("OperationSetId") or ""))
        if opset is None or opset.owner != principal.id:
            return self._error(400, "0x80040203", "ScheduleAPI-OV-0003: no such operation set.")
        if opset.status != 192350000:
            return self._error(
                400, "0x80040203", f"ScheduleAPI-OV-0005: operation set {opset.id} is not open."
            )
        opset.status = 192350001
        opset.run_at = time.monotonic() + self.apply_delay
        self.touch("msdyn_operationset", opset.id, msdyn_status=opset.status)
        return self._json(
            "200 OK",
            {
                "OperationSetResponse": json.dumps(
                    {"operationSetId": opset.id, "operationType": "Execute"}
                )
            },
        )

    def _run_due(self) -> None:
        """Apply the executed operation sets whose time has come: all of a set, or none of it."""
        for opset in self.operation_sets.values():
            if opset.status != 192350001 or opset.run_at is None or time.monotonic() < opset.run_at:
                continue
            error = self.fail_next_execution
            self.fail_next_execution = None
            staged: list[tuple[str, dict[str, Any]]] = []
            deletes: list[tuple[str, str]] = []
            known_tasks = {i for i, r in self.tables["msdyn_projecttask"].rows.items()}
            for op in opset.operations:
                if op["type"] == "Delete":
                    deletes.append((op["entity"], op["record"]))
                    continue
                row = self._bind(op["entity"], dict(op["row"]))
                if op["entity"] == "msdyn_projecttask":
                    if "msdyn_progress" in op["row"]:
                        error = (
                            error
                            or "ScheduleAPI-AV-0001: Input to the column msdyn_progress in the table msdyn_projecttask during create operation is not allowed."
                        )
                    parent = row.get("_msdyn_parenttask_value")
                    if parent and parent not in known_tasks:
                        error = (
                            error
                            or f"ScheduleAPI-AV-0006: Referenced row of msdyn_parenttask with id {parent} does not exist."
                        )
                    known_tasks.add(row["msdyn_projecttaskid"])
                staged.append((op["entity"], row))
            if error:
                opset.status = 192350004
                self._put("msdyn_psserrorlog", {"msdyn_psserrorlogid": str(uuid.uuid4()), "msdyn_errorcode": error.split(":")[0],
                                                "msdyn_log": error, "_msdyn_operationset_value": opset.id}, at=self.now())  # fmt: skip
            else:
                for entity, record in deletes:
                    self.delete(entity, record)
                for entity, row in staged:
                    self._put(entity, row, at=self.now())
                opset.status = 192350003
            self.touch("msdyn_operationset", opset.id, msdyn_status=opset.status)

    def _bind(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key.endswith("@odata.bind"):
                nav = key[: -len("@odata.bind")].lower()
                found = re.match(r"/\w+\(([0-9a-fA-F-]+)\)", str(value))
                if found:
                    out[f"_{nav}_value"] = found.group(1).lower()
            elif key in self.tables[entity].columns:
                out[key] = value
        if entity == "msdyn_projecttask":
            out.setdefault("msdyn_progress", dec(0))
            out.setdefault("msdyn_summary", False)
            out.setdefault("msdyn_ismilestone", False)
            out.setdefault("msdyn_outlinelevel", 2 if out.get("_msdyn_parenttask_value") else 1)
            for column in ("msdyn_scheduledstart", "msdyn_scheduledend"):
                if out.get(column):
                    out[column.replace("msdyn_", "msdyn_tza")] = wall(
                        datetime.fromisoformat(str(out[column]).replace("Z", "+00:00")), self.offset
                    )
            parent = out.get("_msdyn_parenttask_value")
            if parent in self.tables["msdyn_projecttask"].rows:
                self.tables["msdyn_projecttask"].rows[parent]["msdyn_summary"] = True
        return out


SANDBOX_PERSON = "pm@city.example.gov"
"""The sandbox's licensed project manager: signs in on the device-code page with the sandbox
secret, so ``crosswalk planner-premium login`` works against ``crosswalk sandbox serve``."""


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> DataverseEmulator:
    """The emulator serving ``world`` (see :class:`DataverseEmulator` for the options)."""
    users = kwargs.get("users") or {}
    if "people" not in kwargs and users:
        kwargs["people"] = {SANDBOX_PERSON: next(iter(users.values()))}
    return DataverseEmulator(world, faults, **kwargs)


def sandbox_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.NAME]`` keys that point itcrosswalk at the emulator: the sandbox app
    signs in with client credentials at the emulator's own Entra ID."""
    return {
        "tenant_id": SANDBOX_TENANT,
        "auth": {
            "type": "oauth_client_credentials",
            "client_id": user,
            "client_secret": secret_ref,
        },
        # The Schedule API user: `crosswalk planner-premium login SOURCE` once (device code).
        "schedule_user": {"client_id": SANDBOX_PUBLIC_CLIENT},
    }
