"""The seeded city world every emulator serves a slice of.

One deterministic city (departments, people, devices, portfolio work, demands, tickets and
their SLAs, installed apps) from a seed and a size. The world is platform-neutral: each
plugin's ``sandbox.py`` renders its slice in the platform's own API shape. States here use
the common model's normalized vocabulary; emulators translate them to native values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class Department:
    id: str  # slug: "police"
    name: str  # "Police"


@dataclass
class Person:
    id: str  # 32 lowercase hex chars, stable for a seed
    upn: str  # "maria.lopez@city.example.gov"
    name: str
    first_name: str
    last_name: str
    department: str  # Department.id
    title: str
    manager_id: str | None
    active: bool
    office: str
    created: datetime
    updated: datetime


@dataclass
class Device:
    id: str  # 32 hex
    name: str  # "POL-LT-0042"
    serial: str  # real-looking, or a placeholder ("", "0", "To be filled by O.E.M.") for a few
    os: str  # "Windows", "iOS", "Android", "macOS"
    os_version: str
    manufacturer: str
    model: str
    owner_id: str | None  # Person.id
    department: str
    enrolled: datetime
    last_seen: datetime
    compliance: str  # Intune native: compliant, noncompliant, inGracePeriod, unknown, conflict, error
    encrypted: bool
    in_intune: bool  # managed by Intune
    in_cmdb: bool  # known to the ServiceNow CMDB
    asset_tag: str
    purchase_date: date | None
    warranty_expiration: date | None
    cost: float
    install_status: int  # ServiceNow: 1 installed, 6 in stock, 7 retired
    ownership: str  # "company" or "personal"
    created: datetime
    updated: datetime


@dataclass
class Work:
    """A piece of portfolio work: portfolio, program, project, task or milestone."""

    id: str  # 32 hex
    kind: str  # portfolio, program, project, task, milestone, epic, feature
    number: str  # "PRJ0010001"
    name: str
    parent_id: str | None
    department: str
    state: str  # proposed, approved, in_progress, on_hold, done, cancelled
    phase: str  # initiating, planning, executing, monitoring, closing
    health: str  # green, amber, red
    sponsor_id: str | None
    manager_id: str | None
    goals: list[str]
    priority: int  # 1-5
    business_case_approved: bool
    planned_start: datetime | None
    planned_finish: datetime | None
    actual_start: datetime | None
    actual_finish: datetime | None
    percent_complete: float
    budget: float
    actual_cost: float
    forecast_cost: float
    planned_value: float
    earned_value: float
    platform: str  # the platform that holds it: servicenow, jira_align, project_online
    created: datetime
    updated: datetime


@dataclass
class Demand:
    id: str
    number: str  # "DMND0001001"
    name: str
    department: str
    requester_id: str | None
    state: str  # draft, submitted, screening, qualified, approved, rejected, deferred, completed
    priority: int
    score: float
    goals: list[str]
    business_case_approved: bool
    submitted: datetime
    decided: datetime | None
    estimated_cost: float
    project_id: str | None
    created: datetime
    updated: datetime


@dataclass
class Ticket:
    id: str
    kind: str  # incident, request, problem, change
    number: str  # INC0010001, RITM0010001, PRB0010001, CHG0010001
    title: str
    priority: int  # 1-5
    impact: int  # 1-3
    urgency: int  # 1-3
    state: str  # new, in_progress, on_hold, resolved, closed, cancelled
    opened: datetime
    responded: datetime | None
    resolved: datetime | None
    closed: datetime | None
    assignment_group: str  # group name, e.g. "Service Desk"
    assignee_id: str | None
    caller_id: str | None
    department: str
    category: str
    device_id: str | None
    reassignment_count: int
    reopen_count: int
    created: datetime
    updated: datetime


@dataclass
class Sla:
    id: str
    ticket_id: str
    name: str  # "P1 resolution (4 hours)"
    stage: str  # in_progress, paused, completed, cancelled
    has_breached: bool
    start: datetime
    end: datetime | None
    planned_end: datetime
    elapsed_seconds: float
    business_elapsed_seconds: float
    percent: float
    business_percent: float
    created: datetime
    updated: datetime


@dataclass
class App:
    id: str
    name: str
    version: str
    publisher: str
    device_ids: list[str]


@dataclass
class World:
    """The whole city. Build one with ``generate``."""

    seed: int
    now: datetime
    departments: list[Department] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    work: list[Work] = field(default_factory=list)
    demands: list[Demand] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    slas: list[Sla] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)
