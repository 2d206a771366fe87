"""A ServiceNow instance on loopback: the Table API as the real platform answers it.

It serves the sandbox city through ``/api/now/table`` (v1 and v2) with the platform's real
behaviour, traps included (``shared/platforms/servicenow.md``): every value a string; stored
date-times in UTC and display values in the user's time zone (US/Pacific here, as in the
recorded payloads); reference fields as ``{"link", "value"}``; ``display_value`` false, true
or all; encoded queries with ``^``, ``^OR``, ``^NQ`` and ``ORDERBY``; a condition on a field
the table lacks silently ignored; ``sysparm_limit`` applied before ACLs (a page can come back
short or empty while more rows exist) and ``X-Total-Count`` counting rows before ACLs; v1
answering an empty match with 404; ``Link`` headers; 400 for an invalid table, 403 for an ACL,
401 without valid credentials; OAuth at ``/oauth_token.do``; 429 with ``Retry-After`` and the
rate-limit headers. Faults (latency, throttling, 5xx, malformed bodies, rows changing between
pages) come from :class:`itcrosswalk.sandbox.faults.Faults`.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from ...sandbox.emulator import Emulator, Response
from ...sandbox.faults import Faults
from ...sandbox.world import World

USER_TZ = ZoneInfo("America/Los_Angeles")
FMT = "%Y-%m-%d %H:%M:%S"

# table -> {field: referenced table}
REFERENCES: dict[str, dict[str, str]] = {
    "task": {
        "assignment_group": "sys_user_group",
        "assigned_to": "sys_user",
        "opened_by": "sys_user",
        "caller_id": "sys_user",
        "requested_for": "sys_user",
        "cmdb_ci": "cmdb_ci",
        "company": "core_company",
    },
    "task_sla": {"task": "task", "sla": "contract_sla"},
    "pm_portfolio": {"portfolio_manager": "sys_user"},
    "pm_program": {
        "program_manager": "sys_user",
        "primary_portfolio": "pm_portfolio",
        "department": "cmn_department",
    },
    "pm_project": {
        "project_manager": "sys_user",
        "primary_portfolio": "pm_portfolio",
        "primary_program": "pm_program",
        "department": "cmn_department",
        "demand": "dmn_demand",
    },
    "pm_project_task": {
        "parent": "pm_project",
        "top_task": "pm_project",
        "assigned_to": "sys_user",
    },
    "dmn_demand": {
        "submitter": "sys_user",
        "department": "cmn_department",
        "project": "pm_project",
        "portfolio": "pm_portfolio",
    },
    "cmdb_ci_computer": {
        "manufacturer": "core_company",
        "model_id": "cmdb_model",
        "assigned_to": "sys_user",
        "department": "cmn_department",
        "location": "cmn_location",
        "asset": "alm_hardware",
    },
    "alm_hardware": {"ci": "cmdb_ci", "model": "cmdb_model", "assigned_to": "sys_user"},
    "sys_user": {"department": "cmn_department", "manager": "sys_user", "location": "cmn_location"},
}
for _t in ("incident", "sc_req_item", "problem", "change_request"):
    REFERENCES[_t] = REFERENCES["task"]

# table -> field -> value -> label
CHOICES: dict[str, dict[str, dict[str, str]]] = {
    "incident": {
        "state": {
            "1": "New",
            "2": "In Progress",
            "3": "On Hold",
            "6": "Resolved",
            "7": "Closed",
            "8": "Canceled",
        },
        "hold_reason": {
            "1": "Awaiting Caller",
            "5": "Awaiting Problem",
            "3": "Awaiting Change",
            "4": "Awaiting Vendor",
        },
    },
    "sc_req_item": {
        "state": {
            "-5": "Pending",
            "1": "Open",
            "2": "Work in Progress",
            "3": "Closed Complete",
            "4": "Closed Incomplete",
            "7": "Closed Skipped",
        }
    },
    "problem": {
        "state": {
            "101": "New",
            "102": "Assess",
            "103": "Root Cause Analysis",
            "104": "Fix in Progress",
            "106": "Resolved",
            "107": "Closed",
        }
    },
    "change_request": {
        "state": {
            "-5": "New",
            "-4": "Assess",
            "-3": "Authorize",
            "-2": "Scheduled",
            "-1": "Implement",
            "0": "Review",
            "3": "Closed",
            "4": "Canceled",
        }
    },
    "pm_project": {
        "state": {
            "-5": "Pending",
            "1": "Open",
            "2": "Work in Progress",
            "-3": "On Hold",
            "3": "Closed Complete",
            "4": "Closed Incomplete",
            "7": "Closed Skipped",
        },
        "phase": {
            "initiating": "Initiating",
            "planning": "Planning",
            "executing": "Executing",
            "monitoring": "Monitoring",
            "closing": "Closing",
        },
        "overall_health": {"green": "Green", "yellow": "Yellow", "red": "Red"},
    },
    "dmn_demand": {
        "state": {
            "1": "Draft",
            "2": "Submitted",
            "3": "Screening",
            "4": "Qualified",
            "8": "Approved",
            "9": "Completed",
            "10": "Deferred",
            "7": "Rejected",
        }
    },
    "task_sla": {
        "stage": {
            "in_progress": "In progress",
            "paused": "Paused",
            "completed": "Completed",
            "cancelled": "Cancelled",
        }
    },
    "cmdb_ci_computer": {"install_status": {"1": "Installed", "6": "In Stock", "7": "Retired"}},
    "alm_hardware": {"install_status": {"1": "In use", "6": "In stock", "7": "Retired"}},
}
for _t in ("pm_program", "pm_project_task"):
    CHOICES[_t] = {"state": CHOICES["pm_project"]["state"]}
for _t in ("incident", "sc_req_item", "problem", "change_request"):
    CHOICES[_t].setdefault(
        "priority",
        {
            "1": "1 - Critical",
            "2": "2 - High",
            "3": "3 - Moderate",
            "4": "4 - Low",
            "5": "5 - Planning",
        },
    )
    CHOICES[_t].setdefault("impact", {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"})
    CHOICES[_t].setdefault("urgency", {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"})

CURRENCY = {
    "alm_hardware": {"cost"},
    "pm_project": {"cost", "budget_cost", "work_cost"},
    "dmn_demand": {"financial_estimated_cost"},
}
DATE_ONLY = {"alm_hardware": {"purchase_date", "warranty_expiration"}}

# What a reference displays: the referenced table's display field.
DISPLAY_FIELD = {
    "sys_user": "name",
    "sys_user_group": "name",
    "cmn_department": "name",
    "core_company": "name",
    "cmdb_model": "name",
    "cmn_location": "name",
    "contract_sla": "name",
    "pm_portfolio": "name",
    "cmdb_ci": "name",
    "cmdb_ci_computer": "name",
    "alm_hardware": "display_name",
}

TICKET_TABLE = {
    "incident": "incident",
    "request": "sc_req_item",
    "problem": "problem",
    "change": "change_request",
}
TICKET_STATE = {
    "incident": {
        "new": "1",
        "in_progress": "2",
        "on_hold": "3",
        "resolved": "6",
        "closed": "7",
        "cancelled": "8",
    },
    "sc_req_item": {
        "new": "1",
        "in_progress": "2",
        "on_hold": "2",
        "resolved": "3",
        "closed": "3",
        "cancelled": "7",
    },
    "problem": {
        "new": "101",
        "in_progress": "103",
        "on_hold": "102",
        "resolved": "106",
        "closed": "107",
        "cancelled": "107",
    },
    "change_request": {
        "new": "-5",
        "in_progress": "-1",
        "on_hold": "-2",
        "resolved": "0",
        "closed": "3",
        "cancelled": "4",
    },
}
WORK_STATE = {
    "proposed": "-5",
    "approved": "1",
    "in_progress": "2",
    "on_hold": "-3",
    "done": "3",
    "cancelled": "7",
}
DEMAND_STATE = {
    "draft": "1",
    "submitted": "2",
    "screening": "3",
    "qualified": "4",
    "approved": "8",
    "completed": "9",
    "deferred": "10",
    "rejected": "7",
}
HEALTH = {"green": "green", "amber": "yellow", "red": "red"}

# Tables extending ``task``: they share its columns, the correlation pair among them.
TASK_TABLES = {
    "incident",
    "sc_req_item",
    "problem",
    "change_request",
    "pm_program",
    "pm_project",
    "pm_project_task",
    "dmn_demand",
}
TASK_COLUMNS = ("description", "correlation_id", "correlation_display")

# What a new record's number starts with (the instance's sys_number prefixes).
NUMBER_PREFIX = {
    "incident": "INC",
    "sc_req_item": "RITM",
    "problem": "PRB",
    "change_request": "CHG",
    "pm_program": "PRG",
    "pm_project": "PRJ",
    "pm_project_task": "PRJTASK",
    "dmn_demand": "DMND",
}

# Defaults the dictionary gives a new record.
INSERT_DEFAULTS: dict[str, dict[str, str]] = {
    "incident": {"state": "1", "impact": "3", "urgency": "3", "active": "true"},
    "problem": {"state": "101", "impact": "3", "urgency": "3", "active": "true"},
    "change_request": {"state": "-5", "impact": "3", "urgency": "3", "active": "true"},
    "sc_req_item": {"state": "1", "active": "true"},
    "pm_project": {"state": "-5", "active": "true"},
    "pm_program": {"state": "-5", "active": "true"},
    "pm_project_task": {"state": "-5", "active": "true"},
    "dmn_demand": {"state": "1", "active": "true"},
}

# The default priority lookup: (impact, urgency) -> priority, applied by a business rule.
PRIORITY_MATRIX = {
    ("1", "1"): "1",
    ("1", "2"): "2",
    ("2", "1"): "2",
    ("1", "3"): "3",
    ("2", "2"): "3",
    ("3", "1"): "3",
    ("2", "3"): "4",
    ("3", "2"): "4",
    ("3", "3"): "5",
}

OPERATORS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "NOT IN",
    "NOTIN",
    "NOTLIKE",
    "STARTSWITH",
    "ENDSWITH",
    "LIKE",
    "IN",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_CONDITION = re.compile(
    r"^([A-Za-z0-9_.]+?)(" + "|".join(re.escape(o) for o in OPERATORS) + r")(.*)$", re.S
)
_DATE_GENERATE = re.compile(
    r"javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})','(\d{2}:\d{2}:\d{2})'\)"
)


def _sid(*parts: str) -> str:
    return hashlib.md5("/".join(parts).encode()).hexdigest()  # noqa: S324 - an id, not a secret


def _ts(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime(FMT)


def _duration(seconds: float) -> str:
    return (datetime(1970, 1, 1) + timedelta(seconds=int(seconds))).strftime(FMT)


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _error(message: str, detail: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "detail": detail}, "status": "failure"}
    ).encode()


# -- the encoded query ------------------------------------------------------------------------

Predicate = Callable[[dict[str, str]], bool]


def _value(raw: str) -> str:
    match = _DATE_GENERATE.fullmatch(raw)
    return f"{match.group(1)} {match.group(2)}" if match else raw


def _compare(op: str, left: str, right: str) -> bool:
    a, b = _num(left), _num(right)
    if a is not None and b is not None and op in (">", ">=", "<", "<="):
        lhs: Any = a
        rhs: Any = b
    else:
        lhs, rhs = left, right
    if op == "=":
        return left == right if a is None or b is None else a == b
    if op == "!=":
        return not _compare("=", left, right)
    if op == ">":
        return bool(lhs > rhs)
    if op == ">=":
        return bool(lhs >= rhs)
    if op == "<":
        return bool(lhs < rhs)
    return bool(lhs <= rhs)


def _condition(term: str, fields: set[str]) -> Predicate | None:
    match = _CONDITION.match(term)
    if not match:
        return None
    field, op, raw = match.group(1), match.group(2), _value(match.group(3))
    if field not in fields:
        return None  # the platform silently ignores a condition on a field it does not have
    if op in ("ISEMPTY", "ISNOTEMPTY"):
        empty = op == "ISEMPTY"
        return lambda row: (row.get(field, "") == "") is empty
    if op in ("IN", "NOTIN", "NOT IN"):
        values = set(raw.split(","))
        inside = op == "IN"
        return lambda row: (row.get(field, "") in values) is inside
    if op in ("LIKE", "NOTLIKE"):
        needle = raw.lower()
        like = op == "LIKE"
        return lambda row: (needle in row.get(field, "").lower()) is like
    if op == "STARTSWITH":
        return lambda row: row.get(field, "").lower().startswith(raw.lower())
    if op == "ENDSWITH":
        return lambda row: row.get(field, "").lower().endswith(raw.lower())
    return lambda row: _compare(op, row.get(field, ""), raw)


def parse_query(query: str, fields: set[str]) -> tuple[Predicate, list[tuple[str, bool]]]:
    """An encoded query as a predicate over stored rows, and its ``ORDERBY`` keys."""
    order: list[tuple[str, bool]] = []
    groups: list[list[list[Predicate]]] = []
    for group_text in query.split("^NQ") if query else []:
        clauses: list[list[Predicate]] = []  # AND of ORs
        for term in group_text.split("^"):
            if not term or term == "EQ":
                continue
            if term.startswith("ORDERBYDESC"):
                order.append((term[len("ORDERBYDESC") :], True))
                continue
            if term.startswith("ORDERBY"):
                order.append((term[len("ORDERBY") :], False))
                continue
            is_or = term.startswith("OR") and clauses and _CONDITION.match(term[2:]) is not None
            predicate = _condition(term[2:] if is_or else term, fields)
            if predicate is None:
                continue
            if is_or:
                clauses[-1].append(predicate)
            else:
                clauses.append([predicate])
        groups.append(clauses)
    if not groups:
        return (lambda row: True), order

    def matches(row: dict[str, str]) -> bool:
        return any(all(any(p(row) for p in clause) for clause in group) for group in groups)

    return matches, order


def _range_query(
    query: str, order: list[tuple[str, bool]], fields: set[str]
) -> list[tuple[str, str]] | None:
    """The bounds of a query that only bounds its first ascending ORDERBY field, else None."""
    if not order or order[0][1] or "^NQ" in query:
        return None
    field = order[0][0]
    bounds: list[tuple[str, str]] = []
    for term in query.split("^"):
        if not term or term.startswith("ORDERBY"):
            continue
        match = _CONDITION.match(term)
        if match is None or term.startswith("OR"):
            return None
        name, op, raw = match.group(1), match.group(2), _value(match.group(3))
        if name not in fields:
            continue  # ignored by the platform, as in the scan
        if name != field or op not in (">=", ">", "<=", "<", "="):
            return None
        bounds.append((op, raw))
    return bounds


def _sort_key(field: str) -> Callable[[dict[str, str]], tuple[int, Any]]:
    def key(row: dict[str, str]) -> tuple[int, Any]:
        text = row.get(field, "")
        number = _num(text) if field not in ("sys_id", "number") else None
        return (0, number) if number is not None else (1, text)

    return key


# -- the emulator ------------------------------------------------------------------------------


class ServiceNowEmulator(Emulator):
    """A WSGI application answering as a ServiceNow instance's Table API does."""

    def __init__(
        self,
        world: World,
        faults: Faults | None = None,
        *,
        users: dict[str, str] | None = None,
        page_limit_default: int = 10000,
        acl_hidden: dict[str, set[str]] | None = None,
        forbidden_tables: set[str] | None = None,
        missing_tables: set[str] | None = None,
        oauth_clients: dict[str, str] | None = None,
        token_ttl: float = 1799,
        mandatory: dict[str, list[str]] | None = None,
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.users = users if users is not None else {"admin": "admin"}
        self.page_limit_default = page_limit_default
        self.acl_hidden = {t: set(ids) for t, ids in (acl_hidden or {}).items()}
        self.forbidden = set(forbidden_tables or ())
        self.missing = set(missing_tables or ())
        self.oauth_clients = oauth_clients if oauth_clients is not None else {"crosswalk": "s3cret"}
        self.token_ttl = (
            token_ttl  # how long an access token really lives; expires_in still says 1799
        )
        # table -> columns a data policy makes mandatory on insert (403 "Data Policy Exception")
        self.mandatory = {t: list(cols) for t, cols in (mandatory or {}).items()}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._index: dict[str, dict[str, dict[str, str]]] = {}
        self._sorted: dict[tuple[str, tuple[tuple[str, bool], ...]], list[dict[str, str]]] = {}
        self._fields: dict[str, set[str]] = {}
        self._render()

    # -- rendering the world -------------------------------------------------------------------

    def _add(
        self,
        table: str,
        row: dict[str, Any],
        created: datetime | None = None,
        updated: datetime | None = None,
    ) -> None:
        base = {
            "sys_created_on": _ts(created or self.world.now),
            "sys_created_by": "admin",
            "sys_updated_on": _ts(updated or created or self.world.now),
            "sys_updated_by": "system",
            "sys_mod_count": "0",
            "sys_class_name": table,
            "sys_domain": "global",
        }
        if table in TASK_TABLES:
            base.update(dict.fromkeys(TASK_COLUMNS, ""))
        base.update({k: "" if v is None else str(v) for k, v in row.items()})
        self.tables.setdefault(table, []).append(base)

    def _render(self) -> None:
        w = self.world
        for d in w.departments:
            self._add("cmn_department", {"sys_id": _sid("dept", d.id), "name": d.name, "id": d.id})
        for g in w.groups:
            self._add("sys_user_group", {"sys_id": _sid("group", g), "name": g, "active": "true"})
        offices = sorted({p.office for p in w.people})
        for o in offices:
            self._add("cmn_location", {"sys_id": _sid("loc", o), "name": o})
        dept = {d.id: _sid("dept", d.id) for d in w.departments}
        for p in w.people:
            self._add(
                "sys_user",
                {
                    "sys_id": p.id,
                    "user_name": p.upn.split("@")[0],
                    "email": p.upn,
                    "name": p.name,
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "title": p.title,
                    "department": dept[p.department],
                    "manager": p.manager_id or "",
                    "active": str(p.active).lower(),
                    "location": _sid("loc", p.office),
                },
                p.created,
                p.updated,
            )
        makers = sorted({d.manufacturer for d in w.devices})
        for m in makers:
            self._add(
                "core_company", {"sys_id": _sid("company", m), "name": m, "manufacturer": "true"}
            )
        models = sorted({(d.manufacturer, d.model) for d in w.devices})
        for maker, model in models:
            self._add(
                "cmdb_model", {"sys_id": _sid("model", maker, model), "name": f"{maker} {model}"}
            )
        for i, d in enumerate(w.devices):
            if not d.in_cmdb:
                continue
            serial = d.serial
            if serial and serial not in ("0",) and i % 20 == 7:
                serial = serial.lower()  # real CMDBs hold serials in other cases and spacings
            elif serial and len(serial) > 6 and i % 20 == 13:
                serial = f"{serial[:4]} {serial[4:]}"
            asset_id = _sid("asset", d.id)
            self._add(
                "cmdb_ci_computer",
                {
                    "sys_id": d.id,
                    "name": d.name,
                    "serial_number": serial,
                    "asset_tag": d.asset_tag,
                    "os": {
                        "Windows": "Windows 11 Enterprise",
                        "macOS": "Mac OS X",
                        "iOS": "iOS",
                        "Android": "Android",
                    }[d.os],
                    "os_version": d.os_version,
                    "manufacturer": _sid("company", d.manufacturer),
                    "model_id": _sid("model", d.manufacturer, d.model),
                    "assigned_to": d.owner_id or "",
                    "department": dept[d.department],
                    "install_status": str(d.install_status),
                    "last_discovered": _ts(d.last_seen),
                    "asset": asset_id,
                    "location": "",
                },
                d.created,
                d.updated,
            )
            self._add(
                "alm_hardware",
                {
                    "sys_id": asset_id,
                    "ci": d.id,
                    "serial_number": serial,
                    "asset_tag": d.asset_tag,
                    "display_name": f"{d.asset_tag} - {d.model}",
                    "model": _sid("model", d.manufacturer, d.model),
                    "purchase_date": d.purchase_date.isoformat() if d.purchase_date else "",
                    "warranty_expiration": d.warranty_expiration.isoformat()
                    if d.warranty_expiration
                    else "",
                    "cost": f"{d.cost:.2f}",
                    "install_status": str(d.install_status),
                    "assigned_to": d.owner_id or "",
                },
                d.created,
                d.updated,
            )
        cmdb = {d.id for d in w.devices if d.in_cmdb}
        sla_defs: dict[str, str] = {}
        for t in w.tickets:
            if t.platform != "servicenow":
                continue  # another desk's ticket (the city runs JSM for some departments)
            table = TICKET_TABLE[t.kind]
            row: dict[str, Any] = {
                "sys_id": t.id,
                "number": t.number,
                "short_description": t.title,
                "description": t.title,
                "state": TICKET_STATE[table][t.state],
                "priority": str(t.priority),
                "impact": str(t.impact),
                "urgency": str(t.urgency),
                "opened_at": _ts(t.opened),
                "closed_at": _ts(t.closed),
                "assignment_group": _sid("group", t.assignment_group),
                "assigned_to": t.assignee_id or "",
                "opened_by": t.caller_id or "",
                "category": t.category.lower(),
                "active": str(t.closed is None and t.state not in ("resolved",)).lower(),
                "reassignment_count": str(t.reassignment_count),
                "company": "",
                "location": "",
                "work_notes": "",
                "escalation": "0",
                "upon_reject": "cancel",
                "made_sla": "true",
            }
            if table == "incident":
                row.update(
                    caller_id=t.caller_id or "",
                    resolved_at=_ts(t.resolved),
                    reopen_count=str(t.reopen_count),
                    cmdb_ci=t.device_id if t.device_id in cmdb else "",
                    hold_reason="1" if t.state == "on_hold" else "",
                    subcategory="",
                )
            elif table == "sc_req_item":
                row.update(requested_for=t.caller_id or "", quantity="1")
            elif table == "problem":
                row.update(resolved_at=_ts(t.resolved), known_error="false")
            else:
                row.update(
                    type="normal",
                    risk="3",
                    start_date=_ts(t.opened),
                    end_date=_ts(t.resolved or t.closed),
                )
            self._add(table, row, t.created, t.updated)
        tickets = {t.id: t for t in w.tickets}
        for s in w.slas:
            if tickets[s.ticket_id].platform != "servicenow":
                continue
            if s.name not in sla_defs:
                sla_defs[s.name] = _sid("sla", s.name)
                self._add("contract_sla", {"sys_id": sla_defs[s.name], "name": s.name})
            self._add(
                "task_sla",
                {
                    "sys_id": s.id,
                    "task": s.ticket_id,
                    "sla": sla_defs[s.name],
                    "stage": s.stage,
                    "has_breached": str(s.has_breached).lower(),
                    "start_time": _ts(s.start),
                    "end_time": _ts(s.end),
                    "planned_end_time": _ts(s.planned_end),
                    "duration": _duration(s.elapsed_seconds),
                    "business_duration": _duration(s.business_elapsed_seconds),
                    "percentage": f"{s.percent:.2f}",
                    "business_percentage": f"{s.business_percent:.2f}",
                    "active": str(s.end is None).lower(),
                },
                s.created,
                tickets[s.ticket_id].updated if s.ticket_id in tickets else s.updated,
            )
        for item in w.work:
            if item.platform != "servicenow":
                continue
            common = {
                "sys_id": item.id,
                "number": item.number,
                "short_description": item.name,
                "state": WORK_STATE[item.state],
                "percent_complete": f"{item.percent_complete:.2f}",
                "start_date": _ts(item.planned_start),
                "end_date": _ts(item.planned_finish),
                "work_start": _ts(item.actual_start),
                "work_end": _ts(item.actual_finish),
            }
            if item.kind == "portfolio":
                self._add(
                    "pm_portfolio",
                    {
                        "sys_id": item.id,
                        "name": item.name,
                        "portfolio_manager": item.manager_id,
                        "description": item.name,
                        "active": "true",
                    },
                    item.created,
                    item.updated,
                )
            elif item.kind == "program":
                self._add(
                    "pm_program",
                    {
                        **common,
                        "program_manager": item.manager_id,
                        "primary_portfolio": item.parent_id,
                        "department": dept[item.department],
                    },
                    item.created,
                    item.updated,
                )
            elif item.kind == "project":
                parent_program = item.parent_id or ""
                self._add(
                    "pm_project",
                    {
                        **common,
                        "phase": item.phase,
                        "overall_health": HEALTH[item.health],
                        "project_manager": item.manager_id,
                        "department": dept[item.department],
                        "primary_program": parent_program,
                        "priority": str(item.priority),
                        "cost": f"{item.forecast_cost:.2f}",
                        "budget_cost": f"{item.budget:.2f}",
                        "work_cost": f"{item.actual_cost:.2f}",
                        "u_business_case_approved": str(item.business_case_approved).lower(),
                        "goals": "",
                    },
                    item.created,
                    item.updated,
                )
            else:
                self._add(
                    "pm_project_task",
                    {
                        **common,
                        "parent": item.parent_id,
                        "top_task": item.parent_id,
                        "milestone": str(item.kind == "milestone").lower(),
                    },
                    item.created,
                    item.updated,
                )
        sn_projects = {x.id for x in w.work if x.platform == "servicenow" and x.kind == "project"}
        for d in w.demands:
            self._add(
                "dmn_demand",
                {
                    "sys_id": d.id,
                    "number": d.number,
                    "short_description": d.name,
                    "state": DEMAND_STATE[d.state],
                    "submitter": d.requester_id or "",
                    "department": dept[d.department],
                    "priority": str(d.priority),
                    "score": f"{d.score:.1f}",
                    "submitted_date": _ts(d.submitted),
                    "decision_date": _ts(d.decided),
                    "financial_estimated_cost": f"{d.estimated_cost:.2f}",
                    "project": d.project_id if d.project_id in sn_projects else "",
                    "u_business_case_approved": str(d.business_case_approved).lower(),
                },
                d.created,
                d.updated,
            )
        from .sandbox_knowledge import render as render_knowledge

        render_knowledge(self)  # knowledge base, root causes, asset lifecycle, sys_choice
        for table, rows in self.tables.items():
            self._index[table] = {row["sys_id"]: row for row in rows}
            self._fields[table] = set().union(*(row.keys() for row in rows)) if rows else set()
        self._render_dictionary()

    def _render_dictionary(self) -> None:
        """``sys_db_object`` (tables and what they extend) and ``sys_dictionary`` (one row per
        column, on the table that defines it): a column every task table has is ``task``'s,
        as on the platform, where an extended table's dictionary lists only its own columns."""
        data = [t for t in self.tables if t not in ("sys_db_object", "sys_dictionary")]
        tasks = [t for t in data if t in TASK_TABLES and self._fields.get(t)]
        shared = set.intersection(*(self._fields[t] for t in tasks)) if tasks else set()
        objects: list[dict[str, str]] = []
        columns: list[dict[str, str]] = []
        task_id = _sid("sys_db_object", "task")
        objects.append({"sys_id": task_id, "name": "task", "label": "Task", "super_class": ""})
        for column in sorted(shared):
            columns.append(
                {"sys_id": _sid("dict", "task", column), "name": "task", "element": column}
            )
        for table in data:
            inherits = table in TASK_TABLES
            objects.append(
                {
                    "sys_id": _sid("sys_db_object", table),
                    "name": table,
                    "label": table,
                    "super_class": task_id if inherits else "",
                }
            )
            own = self._fields.get(table, set()) - (shared if inherits else set())
            for column in sorted(own):
                columns.append(
                    {"sys_id": _sid("dict", table, column), "name": table, "element": column}
                )
        for table, rows in (("sys_db_object", objects), ("sys_dictionary", columns)):
            self.tables[table] = rows
            self._index[table] = {row["sys_id"]: row for row in rows}
            self._fields[table] = {"sys_id", "name", "element", "label", "super_class"}

    # -- changes (tests and faults) -------------------------------------------------------------

    def _changed(self, table: str) -> None:
        for key in [k for k in self._sorted if k[0] == table]:
            del self._sorted[key]

    def touch(self, table: str, sys_id: str, **changes: str) -> None:
        """Update a row as a user would: fields set, ``sys_updated_on`` now, ``sys_mod_count`` + 1."""
        with self.lock:
            row = self._index[table][sys_id]
            row.update({k: str(v) for k, v in changes.items()})
            self._fields[table].update(changes)
            if not self.faults.same_second_edits:
                row["sys_updated_on"] = datetime.now(UTC).strftime(FMT)
            row["sys_mod_count"] = str(int(row.get("sys_mod_count") or 0) + 1)
            self._changed(table)

    def _new_row(self, environ: dict[str, Any], table: str, body: dict[str, Any]) -> dict[str, str]:
        """What an insert stores: the columns the table has (the Table API drops the others
        without a word), the dictionary's defaults, a number, and the business rules' values."""
        known = self._fields.get(table) or set()
        values = {
            k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in body.items()
            if not known or k in known
        }
        for system in ("sys_id", "sys_created_on", "sys_updated_on", "sys_mod_count", "number"):
            values.pop(system, None)
        for column, default in INSERT_DEFAULTS.get(table, {}).items():
            if not values.get(column):
                values[column] = default
        if table in TASK_TABLES:
            for column in TASK_COLUMNS:
                values.setdefault(column, "")
        prefix = NUMBER_PREFIX.get(table)
        if prefix:
            with self.lock:
                taken = [
                    int(row["number"][len(prefix) :])
                    for row in self.tables.get(table, [])
                    if row.get("number", "").startswith(prefix)
                    and row["number"][len(prefix) :].isdigit()
                ]
            values["number"] = f"{prefix}{max(taken, default=10000) + 1:07d}"
        if "impact" in values and "urgency" in values:
            values["priority"] = PRIORITY_MATRIX.get((values["impact"], values["urgency"]), "5")
        if table in ("incident", "problem", "change_request", "sc_req_item"):
            values.setdefault("opened_at", datetime.now(UTC).strftime(FMT))
            user = self._user(environ)
            if user and not values.get("opened_by"):
                values["opened_by"] = user
        return values

    def _user(self, environ: dict[str, Any]) -> str:
        """The sys_id of the authenticated user, when a sys_user row has that user name."""
        given = self.credentials(environ)
        name = given.user
        if given.scheme == "bearer":
            with self.lock:
                name = self.tokens.get(given.secret, ("", 0.0))[0]
        for row in self.tables.get("sys_user", []):
            if row.get("user_name") == name:
                return row["sys_id"]
        return ""

    def insert(self, table: str, row: dict[str, str]) -> dict[str, str]:
        with self.lock:
            now = datetime.now(UTC).strftime(FMT)
            record = {
                "sys_id": secrets.token_hex(16),
                "sys_created_on": now,
                "sys_created_by": "crosswalk",
                "sys_updated_on": now,
                "sys_updated_by": "crosswalk",
                "sys_mod_count": "0",
                "sys_class_name": table,
            }
            record.update({k: str(v) for k, v in row.items()})
            self.tables.setdefault(table, []).append(record)
            self._index.setdefault(table, {})[record["sys_id"]] = record
            self._fields.setdefault(table, set()).update(record)
            self._changed(table)
            return record

    def delete(self, table: str, sys_id: str) -> None:
        with self.lock:
            row = self._index[table].pop(sys_id)
            self.tables[table].remove(row)
            self._changed(table)

    def _edited(self, row: dict[str, str]) -> None:
        """A row edited while a read is under way (``faults.mutate_between_pages``)."""
        row["sys_updated_on"] = datetime.now(UTC).strftime(FMT)
        row["sys_mod_count"] = str(int(row.get("sys_mod_count") or 0) + 1)

    def row(self, table: str, sys_id: str) -> dict[str, str] | None:
        """The stored row (as the instance holds it, every field a string)."""
        with self.lock:
            return self._index.get(table, {}).get(sys_id)

    def drop_column(self, table: str, column: str) -> None:
        """The table no longer has ``column`` (an older release, a dictionary change): queries
        naming it are refused and inserts drop it."""
        with self.lock:
            self._fields[table].discard(column)

    def has(self, native_id: str) -> bool:
        with self.lock:
            return any(native_id in rows for rows in self._index.values())

    def forget(self, native_id: str) -> bool:
        with self.lock:
            table = next((t for t, rows in self._index.items() if native_id in rows), None)
        if table is None:
            return False
        self.delete(table, native_id)
        return True

    def expire_tokens(self) -> None:
        """Every issued access token stops working (refresh tokens still do)."""
        with self.lock:
            self.tokens.clear()

    # -- HTTP ---------------------------------------------------------------------------------

    def _fail(
        self,
        status: str,
        message: str,
        detail: str | None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        return (
            status,
            [("Content-Type", self.content_type), *(extra or [])],
            _error(message, detail),
        )

    def throttled(self, wait: int) -> Response:
        reset = int(time.time()) + max(wait, 1)
        return self._fail(
            "429 Too Many Requests",
            "Rate limit exceeded",
            "Rate limit of 1000 requests per hour for Table API exceeded",
            [
                ("Retry-After", str(wait)),
                ("X-RateLimit-Limit", "1000"),
                ("X-RateLimit-Reset", str(reset)),
                ("X-RateLimit-Rule", "crosswalk-sandbox"),
            ],
        )

    def unavailable(self) -> Response:
        page = b"<html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>The instance is temporarily unavailable.</p></body></html>"
        return "503 Service Unavailable", [("Content-Type", "text/html")], page

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        listing = method == "GET" and bool(re.fullmatch(r"/api/now/(v\d/)?table/[^/]+", path))
        fault, answer = self.fault(listing=listing)
        if answer:
            return answer
        if path == "/oauth_token.do" and method == "POST":
            return self._token(environ)
        if not self._authenticated(environ):
            return self._fail(
                "401 Unauthorized",
                "User Not Authenticated",
                "Required to provide Auth information",
                [("WWW-Authenticate", 'Basic realm="Service-now"')],
            )
        match = re.fullmatch(r"/api/now/(?:(v\d)/)?table/([^/]+)(?:/([^/]+))?", path)
        if not match:
            return self._fail(
                "400 Bad Request", "Requested URI does not represent any resource", None
            )
        version, table, sys_id = match.group(1) or "v1", match.group(2), match.group(3)
        if table in self.missing or table not in self.tables:
            if table not in self.missing and table in REFERENCES:
                self.tables[table] = []
                self._index[table] = {}
                self._fields[table] = set()
            else:
                return self._fail("400 Bad Request", f"Invalid table {table}", None)
        if table in self.forbidden:
            return self._fail(
                "403 Forbidden",
                "User Not Authorized",
                "Not authorized to access the requested resource. ACL restricts the record retrieval.",
            )
        params = self.params(query)
        if method == "GET" and sys_id is None:
            return self._list(environ, version, table, params, corrupt=fault == "malformed")
        if method == "GET":
            row = self._index[table].get(sys_id)
            if row is None or sys_id in self.acl_hidden.get(table, set()):
                return self._fail(
                    "404 Not Found",
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            return self.json("200 OK", {"result": self._render_row(environ, table, row, params)})
        return self._write(environ, method, table, sys_id, params=params)

    def _authenticated(self, environ: dict[str, Any]) -> bool:
        given = self.credentials(environ)
        if given.scheme == "basic":
            return self.users.get(given.user) == given.secret
        if given.scheme == "bearer":
            with self.lock:
                entry = self.tokens.get(given.secret)
            return entry is not None and entry[1] > time.time()
        return False

    def _token(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        form = self.form(environ)
        grant = form.get("grant_type")
        client_ok = self.oauth_clients.get(form.get("client_id", "")) == form.get("client_secret")
        user = None
        if (
            client_ok
            and grant == "password"
            and self.users.get(form.get("username", "")) == form.get("password")
        ):
            user = form["username"]
        elif client_ok and grant == "client_credentials":
            user = form["client_id"]
        elif client_ok and grant == "refresh_token":
            with self.lock:
                user = self.refresh_tokens.get(form.get("refresh_token", ""))
        if user is None:
            return self.json(
                "401 Unauthorized", {"error": "access_denied", "error_description": "access_denied"}
            )
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access] = (user, time.time() + self.token_ttl)
            self.refresh_tokens[refresh] = user
        return self.json(
            "200 OK",
            {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": 1799,
            },
        )

    def _ordered(self, table: str, order: list[tuple[str, bool]]) -> list[dict[str, str]]:
        key = (table, tuple(order))
        cached = self._sorted.get(key)
        if cached is None:
            rows = list(self.tables[table])
            for field, desc in reversed(order):
                rows.sort(key=_sort_key(field), reverse=desc)
            self._sorted[key] = cached = rows
        return cached

    def _matching(self, table: str, query: str) -> list[dict[str, str]]:
        """The rows a query matches, in its order.

        A query whose every condition bounds the first (ascending) ORDERBY field is answered by
        bisecting the sorted rows, as an index would; any other query is scanned.
        """
        predicate, order = parse_query(query, self._fields[table])
        rows = self._ordered(table, order)
        bounds = _range_query(query, order, self._fields[table])
        if bounds is None:
            return [row for row in rows if predicate(row)]
        field = order[0][0]
        cache_key = (table, tuple(order), "keys")
        keys = self._sorted.get(cache_key)
        if keys is None:
            sort_key = _sort_key(field)
            keys = self._sorted[cache_key] = [sort_key(row) for row in rows]  # type: ignore[assignment]
        probe = _sort_key(field)
        start, end = 0, len(rows)
        for op, value in bounds:
            at = probe({field: value})
            if op == ">=":
                start = max(start, bisect.bisect_left(keys, at))
            elif op == ">":
                start = max(start, bisect.bisect_right(keys, at))
            elif op == "<=":
                end = min(end, bisect.bisect_right(keys, at))
            elif op == "<":
                end = min(end, bisect.bisect_left(keys, at))
            else:
                start = max(start, bisect.bisect_left(keys, at))
                end = min(end, bisect.bisect_right(keys, at))
        return rows[start:end] if start < end else []

    def _list(
        self,
        environ: dict[str, Any],
        version: str,
        table: str,
        params: dict[str, str],
        *,
        corrupt: bool,
    ) -> Response:
        try:
            limit = int(params.get("sysparm_limit") or self.page_limit_default)
            offset = int(params.get("sysparm_offset") or 0)
        except ValueError:
            return self._fail("400 Bad Request", "Invalid sysparm_limit or sysparm_offset", None)
        with self.lock:
            rows = self._matching(table, params.get("sysparm_query", ""))
            total = len(rows)
            window = rows[offset : offset + limit]
            hidden = self.acl_hidden.get(table, set())
            visible = [row for row in window if row["sys_id"] not in hidden]
            body_rows = [self._render_row(environ, table, row, params) for row in visible]
            if self.page_served(rows[offset + limit :], self._edited):
                self._changed(table)
        headers: list[tuple[str, str]] = []
        if params.get("sysparm_no_count", "false") != "true":
            headers.append(("X-Total-Count", str(self.faults.count(total))))
        if params.get("sysparm_suppress_pagination_header", "false") != "true" and total:
            headers.append(("Link", self._links(environ, table, params, offset, limit, total)))
        if not body_rows and version == "v1" and total == 0:
            return self._fail(
                "404 Not Found",
                "No Record found",
                "Records matching query not found. Check query parameter or offset parameter",
                headers,
            )
        answer = self.json("200 OK", {"result": body_rows}, headers)
        return self.cut(answer) if corrupt else answer

    def _links(
        self,
        environ: dict[str, Any],
        table: str,
        params: dict[str, str],
        offset: int,
        limit: int,
        total: int,
    ) -> str:
        base = f"https://{environ.get('HTTP_HOST', 'localhost')}{environ.get('PATH_INFO', '')}"
        last = max(0, ((total - 1) // limit) * limit)

        def url(at: int) -> str:
            return (
                base
                + "?"
                + urlencode({**params, "sysparm_offset": str(at), "sysparm_limit": str(limit)})
            )

        links = [f'<{url(0)}>;rel="first"']
        if offset > 0:
            links.append(f'<{url(max(0, offset - limit))}>;rel="prev"')
        if offset + limit < total:
            links.append(f'<{url(offset + limit)}>;rel="next"')
        links.append(f'<{url(last)}>;rel="last"')
        return ",".join(links)

    def _display(self, table: str, field: str, value: str) -> str | None:
        choices = getattr(self, "choices", CHOICES)  # the instance's own, where it has them
        if value == "":
            labels = choices.get(table, {}).get(field)
            return None if labels else ""
        ref = REFERENCES.get(table, {}).get(field)
        if ref is not None:
            target = self._lookup(ref, value)
            if target is None:
                return None
            shown = (
                target.get(DISPLAY_FIELD.get(ref, ""), "")
                or target.get("number")
                or target.get("name", "")
            )
            return shown
        labels = choices.get(table, {}).get(field)
        if labels is not None:
            return labels.get(value, value)
        if field in CURRENCY.get(table, set()):
            return f"${float(value):,.2f}"
        if field in DATE_ONLY.get(table, set()):
            return value
        if len(value) == 19 and value[4] == "-" and value[13] == ":":
            try:
                moment = datetime.strptime(value, FMT).replace(tzinfo=UTC)
            except ValueError:
                return value
            if moment.year == 1970:
                return value  # durations are stored as offsets from the epoch
            return moment.astimezone(USER_TZ).strftime(FMT)
        return value

    def _lookup(self, table: str, sys_id: str) -> dict[str, str] | None:
        if table in ("task", "cmdb_ci"):
            for candidate in (
                ("incident", "sc_req_item", "problem", "change_request")
                if table == "task"
                else ("cmdb_ci_computer",)
            ):
                row = self._index.get(candidate, {}).get(sys_id)
                if row is not None:
                    return row
            return None
        return self._index.get(table, {}).get(sys_id)

    def _render_row(
        self, environ: dict[str, Any], table: str, row: dict[str, str], params: dict[str, str]
    ) -> dict[str, Any]:
        mode = params.get("sysparm_display_value", "false").lower()
        exclude = params.get("sysparm_exclude_reference_link", "false").lower() == "true"
        wanted = [f for f in params.get("sysparm_fields", "").split(",") if f]
        fields = [f for f in wanted if f in row] if wanted else list(row)
        host = f"https://{environ.get('HTTP_HOST', 'localhost')}"
        refs = REFERENCES.get(table, {})
        out: dict[str, Any] = {}
        for field in fields:
            value = row[field]
            ref = refs.get(field)
            link = f"{host}/api/now/table/{ref}/{value}" if ref and value else None
            if mode == "all":
                item: dict[str, Any] = {
                    "display_value": self._display(table, field, value),
                    "value": value,
                }
                if field in CURRENCY.get(table, set()) and value:
                    item["currency_display_value"] = f"USD;{float(value):.2f}"
                if link and not exclude:
                    item["link"] = link
                out[field] = item
            elif mode == "true":
                shown = self._display(table, field, value)
                out[field] = (
                    {"display_value": shown, "link": link}
                    if link and not exclude
                    else ("" if shown is None else shown)
                )
            else:
                out[field] = {"link": link, "value": value} if link and not exclude else value
        return out

    def _write(
        self,
        environ: dict[str, Any],
        method: str,
        table: str,
        sys_id: str | None,
        *,
        params: dict[str, str],
    ) -> Response:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = (
                json.loads(environ["wsgi.input"].read(length) or b"{}")
                if method in ("POST", "PUT", "PATCH")
                else {}
            )
        except ValueError:
            return self._fail(
                "400 Bad Request",
                "Exception while reading request",
                "The payload is not valid JSON.",
            )
        if not isinstance(body, dict):
            return self._fail(
                "400 Bad Request",
                "Exception while reading request",
                "The payload is not a JSON object.",
            )
        if method == "POST" and sys_id is None:
            values = self._new_row(environ, table, body)
            missing = [c for c in self.mandatory.get(table, []) if not values.get(c)]
            if missing:
                labels = ", ".join(c.replace("_", " ").capitalize() for c in missing)
                return self._fail(
                    "403 Forbidden",
                    "Operation Failed",
                    f"Data Policy Exception: \n\tThe following fields are mandatory: {labels}\n",
                )
            row = self.insert(table, values)
            return self.json(
                "201 Created",
                {"result": self._render_row(environ, table, row, params)},
                [
                    (
                        "Location",
                        f"https://{environ.get('HTTP_HOST', 'localhost')}/api/now/table/{table}/{row['sys_id']}",
                    )
                ],
            )
        if sys_id is None or sys_id not in self._index.get(table, {}):
            return self._fail(
                "404 Not Found",
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            )
        if method in ("PUT", "PATCH"):
            self.touch(table, sys_id, **{k: str(v) for k, v in body.items()})
            return self.json(
                "200 OK",
                {"result": self._render_row(environ, table, self._index[table][sys_id], params)},
            )
        if method == "DELETE":
            self.delete(table, sys_id)
            return "204 No Content", [], b""
        return self._fail("405 Method Not Allowed", "Method not Supported", None)


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> ServiceNowEmulator:
    """The emulator serving ``world`` (see :class:`ServiceNowEmulator` for the options)."""
    return ServiceNowEmulator(world, faults, **kwargs)
