"""The seeded city world every emulator serves a slice of.

One deterministic city (departments, people, devices, portfolio work, demands, tickets and
their SLAs, installed apps) from a seed and a size. The world is platform-neutral: each
plugin's ``sandbox.py`` renders its slice in the platform's own API shape. States here use
the common model's normalized vocabulary; emulators translate them to native values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any


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
    compliance: (
        str  # Intune native: compliant, noncompliant, inGracePeriod, unknown, conflict, error
    )
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
    platform: str  # the platform that holds it: servicenow, jira_align, project_online, clarity
    created: datetime
    updated: datetime


@dataclass
class PlanLine:
    """One fiscal month of an investment's financial plan: a budget, forecast or benefit line."""

    id: str
    work_id: str  # the Work it plans (a Clarity project)
    plan: str  # budget, forecast, benefit
    plan_name: str
    period: date  # the fiscal month's first day
    cost_type: str  # capital, operating
    category: str  # Labor, Hardware, Software, Services; Cost savings, Revenue for benefits
    amount: float
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
    platform: str = "servicenow"  # the service desk that holds it: servicenow or jira


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
    plans: list[PlanLine] = field(default_factory=list)
    """Financial plan lines of the investments that carry them (the Clarity tenant's)."""
    idea_ids: list[str] = field(default_factory=list)
    """The demands the Clarity tenant holds as ideas."""
    knowledge: Any = None
    """The knowledge base, root causes and asset lifecycles (:mod:`.knowledge`)."""


# -- the generator ------------------------------------------------------------------------------

DEFAULT_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
"""The moment of the tests' world: fixed, so their numbers are."""


def live_now() -> datetime:
    """The moment of a world people explore (the demo, ``sandbox serve``): now, to the second,
    so the commands they run next judge it at the time it describes."""
    return datetime.now(UTC).replace(microsecond=0)


DEPARTMENTS: list[tuple[str, str, str]] = [
    ("police", "Police", "POL"),
    ("fire", "Fire", "FIR"),
    ("water", "Water", "WTR"),
    ("transportation", "Transportation", "TRN"),
    ("parks", "Parks and Recreation", "PRK"),
    ("itd", "ITD", "ITD"),
    ("finance", "Finance", "FIN"),
    ("planning", "Planning", "PLN"),
    ("library", "Library", "LIB"),
    ("hr", "Human Resources", "HRD"),
]

GROUPS = [
    "Service Desk",
    "Desktop Support",
    "Network Operations",
    "Public Safety Systems",
    "Enterprise Applications",
    "GIS",
    "Database Administration",
    "Security Operations",
]

FIRST_NAMES = [
    "Maria",
    "James",
    "Linda",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "David",
    "Elizabeth",
    "William",
    "Susan",
    "Carlos",
    "Jessica",
    "Daniel",
    "Sarah",
    "Jose",
    "Karen",
    "Thomas",
    "Nancy",
    "Luis",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Kevin",
    "Ashley",
    "Brian",
    "Dorothy",
    "Jorge",
    "Kimberly",
    "Steven",
    "Emily",
    "Andrew",
    "Donna",
    "Paul",
    "Michelle",
    "Joshua",
    "Carol",
    "Ana",
    "Minh",
    "Aisha",
]
LAST_NAMES = [
    "Lopez",
    "Smith",
    "Johnson",
    "Garcia",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Nguyen",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Hill",
    "Flores",
    "Green",
    "Patel",
]
TITLES = [
    "Analyst",
    "Specialist",
    "Technician",
    "Supervisor",
    "Manager",
    "Coordinator",
    "Officer",
    "Engineer",
]
OFFICES = [
    "City Hall",
    "Public Safety Building",
    "Municipal Service Center",
    "Water Plant",
    "Main Library",
    "Transit Center",
    "Parks Annex",
]

DEVICE_MODELS: list[tuple[str, str, str, str, str]] = [
    # os, manufacturer, model, name code, serial style
    ("Windows", "Dell Inc.", "Latitude 5440", "LT", "dell"),
    ("Windows", "Dell Inc.", "OptiPlex 7010", "DT", "dell"),
    ("Windows", "HP", "EliteBook 840 G10", "LT", "hp"),
    ("Windows", "LENOVO", "ThinkPad T14 Gen 4", "LT", "lenovo"),
    ("Windows", "Panasonic", "Toughbook 40", "MDT", "panasonic"),
    ("iOS", "Apple", "iPhone 14", "PH", "apple"),
    ("iOS", "Apple", "iPad (10th generation)", "TB", "apple"),
    ("Android", "samsung", "Galaxy XCover6 Pro", "PH", "samsung"),
    ("macOS", "Apple", "MacBook Pro (14-inch, 2023)", "MB", "apple"),
]
OS_VERSIONS = {
    "Windows": ["10.0.19045.5487", "10.0.22631.4890", "10.0.26100.3194"],
    "iOS": ["17.6.1", "18.2", "18.3.1"],
    "Android": ["13", "14"],
    "macOS": ["14.7.2", "15.3"],
}
PLACEHOLDER_SERIALS = ["", "0", "To be filled by O.E.M.", "Default string", "System Serial Number"]

APP_NAMES: list[tuple[str, str]] = [
    ("Microsoft 365 Apps for enterprise", "Microsoft Corporation"),
    ("Google Chrome", "Google LLC"),
    ("Microsoft Edge", "Microsoft Corporation"),
    ("Zoom Workplace", "Zoom Video Communications"),
    ("ArcGIS Pro", "Esri"),
    ("Adobe Acrobat Reader", "Adobe"),
    ("7-Zip", "Igor Pavlov"),
    ("Mark43 RMS Client", "Mark43"),
    ("Hexagon CAD Mobile", "Hexagon"),
    ("Tyler Munis", "Tyler Technologies"),
    ("Cisco Secure Client", "Cisco Systems"),
    ("CrowdStrike Falcon Sensor", "CrowdStrike"),
    ("Microsoft Teams", "Microsoft Corporation"),
    ("Notepad++", "Notepad++ Team"),
    ("Bluebeam Revu", "Bluebeam"),
    ("AutoCAD", "Autodesk"),
    ("Citrix Workspace", "Cloud Software Group"),
    ("VLC media player", "VideoLAN"),
    ("Python 3.12", "Python Software Foundation"),
    ("Microsoft Power BI Desktop", "Microsoft Corporation"),
]

GOALS = [
    "Public Safety",
    "Resilient Infrastructure",
    "Digital Services",
    "Fiscal Sustainability",
    "Equity and Access",
    "Climate Action",
]

PROJECT_TOPICS = [
    "Body-worn camera storage upgrade",
    "CAD system replacement",
    "Water meter AMI rollout",
    "Traffic signal fiber ring",
    "Permitting portal modernization",
    "ERP financials upgrade",
    "Library self-checkout kiosks",
    "Parks reservation system",
    "HR onboarding automation",
    "Fire station alerting",
    "GIS parcel layer rebuild",
    "Network core refresh",
    "Zero-trust VPN",
    "Utility billing migration",
    "311 mobile app",
    "Data center exit",
    "Records management retention",
    "Fleet telematics",
    "Stormwater asset inventory",
    "Cybersecurity awareness program",
]

INCIDENT_TOPICS = [
    ("Cannot log in to workstation", "Access"),
    ("VPN disconnects repeatedly", "Network"),
    ("Printer offline", "Hardware"),
    ("Outlook not syncing", "Software"),
    ("MDT will not boot", "Hardware"),
    ("CAD client freezes", "Software"),
    ("Password reset", "Access"),
    ("Laptop screen cracked", "Hardware"),
    ("Wi-Fi slow at station", "Network"),
    ("ArcGIS license error", "Software"),
    ("Phone not receiving email", "Software"),
    ("Suspicious email reported", "Security"),
    ("Shared drive inaccessible", "Network"),
]
REQUEST_TOPICS = [
    "New laptop for hire",
    "Software install request",
    "Access to shared mailbox",
    "Replacement phone",
    "Monitor request",
    "New user account",
]
PROBLEM_TOPICS = [
    "Recurring VPN drops",
    "CAD client memory leak",
    "Printer driver crashes",
    "Email sync failures",
]
CHANGE_TOPICS = [
    "Patch Tuesday rollout",
    "Firewall rule update",
    "Core switch firmware",
    "CAD server upgrade",
    "Certificate renewal",
    "Database maintenance",
]

# ServiceNow's default priority matrix: (impact, urgency) -> priority
PRIORITY_MATRIX = {
    (1, 1): 1,
    (1, 2): 2,
    (2, 1): 2,
    (1, 3): 3,
    (2, 2): 3,
    (3, 1): 3,
    (2, 3): 4,
    (3, 2): 4,
    (3, 3): 5,
}
RESOLUTION_HOURS = {1: 3.0, 2: 7.0, 3: 40.0, 4: 90.0, 5: 200.0}

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"people": 40, "devices": 60, "tickets": 80, "projects": 4, "demands": 10},
    "small": {"people": 400, "devices": 600, "tickets": 2500, "projects": 18, "demands": 40},
    "medium": {"people": 2000, "devices": 5000, "tickets": 20000, "projects": 60, "demands": 150},
}


class _Gen:
    """One generation: the random source and the counters that make numbers unique."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now

    def hex_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def moment(self, days_back: float, *, after: datetime | None = None) -> datetime:
        """A second-precision time at most ``days_back`` days before now (and after ``after``)."""
        start = after or (self.now - timedelta(days=days_back))
        span = max(1, int((self.now - start).total_seconds()))
        return (start + timedelta(seconds=self.rng.randrange(span))).replace(microsecond=0)

    def serial(self, style: str) -> str:
        rng = self.rng
        alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        if style == "dell":
            return "".join(rng.choice(alnum) for _ in range(7))
        if style == "apple":
            return "C02" + "".join(rng.choice(alnum) for _ in range(9))
        if style == "lenovo":
            return "PF" + "".join(rng.choice(alnum) for _ in range(6))
        if style == "hp":
            return (
                "5CG"
                + "".join(rng.choice("0123456789") for _ in range(3))
                + "".join(rng.choice(alnum) for _ in range(4))
            )
        if style == "samsung":
            return "R58" + "".join(rng.choice(alnum) for _ in range(8))
        return "".join(rng.choice(alnum) for _ in range(10))


def _people(g: _Gen, departments: list[Department], count: int) -> list[Person]:
    people: list[Person] = []
    used: set[str] = set()
    heads: dict[str, str] = {}
    for i in range(count):
        dept = (
            departments[i % len(departments)] if i < len(departments) else g.rng.choice(departments)
        )
        first, last = g.rng.choice(FIRST_NAMES), g.rng.choice(LAST_NAMES)
        base = f"{first}.{last}".lower()
        upn, n = base, 1
        while upn in used:
            n += 1
            upn = f"{base}{n}"
        used.add(upn)
        created = g.moment(2000)
        manager = heads.get(dept.id)
        person = Person(
            id=g.hex_id(),
            upn=f"{upn}@city.example.gov",
            name=f"{first} {last}",
            first_name=first,
            last_name=last,
            department=dept.id,
            title="Director" if manager is None else g.rng.choice(TITLES),
            manager_id=manager,
            active=g.rng.random() > 0.03 or manager is None,
            office=g.rng.choice(OFFICES),
            created=created,
            updated=g.moment(400, after=max(created, g.now - timedelta(days=400))),
        )
        heads.setdefault(dept.id, person.id)
        people.append(person)
    return people


def _devices(
    g: _Gen, people: list[Person], departments: list[Department], count: int
) -> list[Device]:
    prefixes = {d[0]: d[2] for d in DEPARTMENTS}
    devices: list[Device] = []
    numbers: dict[str, int] = {}
    for _ in range(count):
        os_name, maker, model, code, style = g.rng.choice(DEVICE_MODELS)
        owner = g.rng.choice(people) if g.rng.random() < 0.92 else None
        dept = owner.department if owner else g.rng.choice(departments).id
        key = f"{prefixes.get(dept, 'CTY')}-{code}"
        numbers[key] = numbers.get(key, 0) + 1
        serial = g.rng.choice(PLACEHOLDER_SERIALS) if g.rng.random() < 0.03 else g.serial(style)
        roll = g.rng.random()
        in_intune, in_cmdb = (
            (True, True) if roll < 0.80 else (True, False) if roll < 0.90 else (False, True)
        )
        compliance = g.rng.choices(
            ["compliant", "noncompliant", "inGracePeriod", "unknown", "conflict", "error"],
            weights=[84, 8, 3, 3, 1, 1],
        )[0]
        enrolled = g.moment(900)
        stale = g.rng.random() < 0.05
        last_seen = (
            g.moment(200, after=g.now - timedelta(days=200))
            if stale
            else g.moment(20, after=g.now - timedelta(days=20))
        )
        last_seen = max(last_seen, enrolled)
        purchase = (
            (enrolled - timedelta(days=g.rng.randrange(5, 60))).date()
            if g.rng.random() < 0.9
            else None
        )
        warranty = (
            purchase.replace(year=purchase.year + g.rng.choice([3, 4, 5]))
            if purchase and g.rng.random() < 0.85
            else None
        )
        created = enrolled - timedelta(days=g.rng.randrange(0, 10))
        devices.append(
            Device(
                id=g.hex_id(),
                name=f"{key}-{numbers[key]:04d}",
                serial=serial,
                os=os_name,
                os_version=g.rng.choice(OS_VERSIONS[os_name]),
                manufacturer=maker,
                model=model,
                owner_id=owner.id if owner else None,
                department=dept,
                enrolled=enrolled,
                last_seen=last_seen,
                compliance=compliance,
                encrypted=g.rng.random() > 0.06,
                in_intune=in_intune,
                in_cmdb=in_cmdb,
                asset_tag=f"CITY-{g.rng.randrange(100000, 999999)}",
                purchase_date=purchase,
                warranty_expiration=warranty,
                cost=round(g.rng.uniform(350, 3200), 2),
                install_status=g.rng.choices([1, 6, 7], weights=[90, 6, 4])[0],
                ownership="company" if g.rng.random() < 0.93 else "personal",
                created=created,
                updated=max(created, last_seen - timedelta(hours=g.rng.randrange(0, 48))),
            )
        )
    return devices


_WORK_STATE_PHASE = [
    ("proposed", "initiating"),
    ("approved", "planning"),
    ("in_progress", "executing"),
    ("in_progress", "executing"),
    ("in_progress", "monitoring"),
    ("on_hold", "executing"),
    ("done", "closing"),
    ("cancelled", "closing"),
]


def _work_item(
    g: _Gen,
    kind: str,
    number: str,
    name: str,
    parent: Work | None,
    dept: str,
    platform: str,
    people: list[Person],
) -> Work:
    state, phase = g.rng.choice(_WORK_STATE_PHASE)
    planned_start = g.moment(500, after=g.now - timedelta(days=500))
    planned_finish = planned_start + timedelta(days=g.rng.randrange(60, 540))
    started = state in ("in_progress", "on_hold", "done") or (
        state == "cancelled" and g.rng.random() < 0.5
    )
    actual_start = (
        min(planned_start + timedelta(days=g.rng.randrange(-10, 30)), g.now) if started else None
    )
    actual_finish = None
    if state == "done":
        assert actual_start is not None
        actual_finish = min(
            max(planned_finish + timedelta(days=g.rng.randrange(-30, 90)), actual_start), g.now
        )
    percent = {"proposed": 0.0, "approved": 0.0, "done": 100.0}.get(
        state, float(g.rng.randrange(5, 95))
    )
    budget = float(g.rng.randrange(20, 2000) * 1000)
    planned_fraction = min(
        1.0, max(0.0, (g.now - planned_start) / (planned_finish - planned_start))
    )
    planned_value = round(budget * planned_fraction, 2)
    earned_value = round(budget * percent / 100, 2)
    actual_cost = round(earned_value * g.rng.uniform(0.8, 1.35), 2)
    health = g.rng.choices(["green", "amber", "red"], weights=[60, 25, 15])[0]
    created = planned_start - timedelta(days=g.rng.randrange(10, 90))
    return Work(
        id=g.hex_id(),
        kind=kind,
        number=number,
        name=name,
        parent_id=parent.id if parent else None,
        department=dept,
        state=state,
        phase=phase,
        health=health,
        sponsor_id=g.rng.choice(people).id,
        manager_id=g.rng.choice(people).id,
        goals=g.rng.sample(GOALS, g.rng.randrange(1, 3)),
        priority=g.rng.randrange(1, 6),
        business_case_approved=g.rng.random() < 0.85 or state in ("proposed",),
        planned_start=planned_start,
        planned_finish=planned_finish,
        actual_start=actual_start,
        actual_finish=actual_finish,
        percent_complete=percent,
        budget=budget,
        actual_cost=actual_cost,
        forecast_cost=round(max(budget, actual_cost) * g.rng.uniform(0.95, 1.2), 2),
        planned_value=planned_value,
        earned_value=earned_value,
        platform=platform,
        created=created,
        updated=g.moment(120, after=max(created, g.now - timedelta(days=120))),
    )


def _work(
    g: _Gen, people: list[Person], departments: list[Department], projects: int
) -> list[Work]:
    items: list[Work] = []
    counters: dict[str, int] = {}

    def number(prefix: str) -> str:
        counters[prefix] = counters.get(prefix, 10000) + 1
        return f"{prefix}00{counters[prefix]}"

    def dept() -> str:
        return g.rng.choice(departments).id

    per_platform = max(1, projects // 3)
    # ServiceNow SPM: portfolios > programs > projects > tasks and milestones
    portfolios = [
        _work_item(
            g, "portfolio", number("PFL"), f"{name} Portfolio", None, "itd", "servicenow", people
        )
        for name in ("Public Safety Technology", "Enterprise Systems")
    ]
    items += portfolios
    programs = [
        _work_item(
            g,
            "program",
            number("PRG"),
            f"{p.name.split(' Portfolio')[0]} Program {i + 1}",
            p,
            dept(),
            "servicenow",
            people,
        )
        for i, p in enumerate(portfolios)
    ]
    items += programs
    for _ in range(per_platform + projects % 3):
        parent = g.rng.choice(programs)
        project = _work_item(
            g,
            "project",
            number("PRJ"),
            g.rng.choice(PROJECT_TOPICS),
            parent,
            dept(),
            "servicenow",
            people,
        )
        items.append(project)
        for t in range(g.rng.randrange(2, 4)):
            kind = "milestone" if t == 0 else "task"
            items.append(
                _work_item(
                    g,
                    kind,
                    number("PRJTASK"),
                    f"{project.name}: {'Go-live' if kind == 'milestone' else 'Phase ' + str(t)}",
                    project,
                    project.department,
                    "servicenow",
                    people,
                )
            )
    # Jira Align: portfolio > program > epics > features
    agile_portfolio = _work_item(
        g,
        "portfolio",
        number("JAP"),
        "Digital Services Portfolio",
        None,
        "itd",
        "jira_align",
        people,
    )
    agile_program = _work_item(
        g,
        "program",
        number("JAR"),
        "Resident Experience ART",
        agile_portfolio,
        "itd",
        "jira_align",
        people,
    )
    items += [agile_portfolio, agile_program]
    for _ in range(per_platform):
        epic = _work_item(
            g,
            "epic",
            number("EPIC"),
            g.rng.choice(PROJECT_TOPICS),
            agile_program,
            dept(),
            "jira_align",
            people,
        )
        items.append(epic)
        for f in range(g.rng.randrange(2, 4)):
            items.append(
                _work_item(
                    g,
                    "feature",
                    number("FEAT"),
                    f"{epic.name}: feature {f + 1}",
                    epic,
                    epic.department,
                    "jira_align",
                    people,
                )
            )
    # Project Server: projects > tasks, milestones
    for _ in range(per_platform):
        project = _work_item(
            g,
            "project",
            number("MSP"),
            g.rng.choice(PROJECT_TOPICS),
            None,
            dept(),
            "project_online",
            people,
        )
        items.append(project)
        for t in range(g.rng.randrange(2, 4)):
            kind = "milestone" if t == 0 else "task"
            items.append(
                _work_item(
                    g,
                    kind,
                    number("MSPT"),
                    f"{project.name}: {'Cutover' if kind == 'milestone' else 'Work package ' + str(t)}",
                    project,
                    project.department,
                    "project_online",
                    people,
                )
            )
    return items


def _demands(g: _Gen, people: list[Person], work: list[Work], count: int) -> list[Demand]:
    projects = [w for w in work if w.kind == "project"]
    demands: list[Demand] = []
    for i in range(count):
        state = g.rng.choices(
            [
                "draft",
                "submitted",
                "screening",
                "qualified",
                "approved",
                "rejected",
                "deferred",
                "completed",
            ],
            weights=[8, 15, 12, 10, 20, 8, 7, 20],
        )[0]
        submitted = g.moment(600)
        decided = (
            g.moment(200, after=submitted)
            if state in ("approved", "rejected", "deferred", "completed")
            else None
        )
        requester = g.rng.choice(people)
        project = (
            g.rng.choice(projects).id if state in ("approved", "completed") and projects else None
        )
        created = submitted - timedelta(days=g.rng.randrange(0, 20))
        demands.append(
            Demand(
                id=g.hex_id(),
                number=f"DMND00{1001 + i}",
                name=g.rng.choice(PROJECT_TOPICS) + " (demand)",
                department=requester.department,
                requester_id=requester.id,
                state=state,
                priority=g.rng.randrange(1, 6),
                score=round(g.rng.uniform(10, 95), 1),
                goals=g.rng.sample(GOALS, g.rng.randrange(1, 3)),
                business_case_approved=state in ("approved", "completed") or g.rng.random() < 0.2,
                submitted=submitted,
                decided=decided,
                estimated_cost=float(g.rng.randrange(10, 900) * 1000),
                project_id=project,
                created=created,
                updated=max(decided or submitted, created),
            )
        )
    return demands


_TICKET_PREFIX = {"incident": "INC", "request": "RITM", "problem": "PRB", "change": "CHG"}


def _tickets(
    g: _Gen, people: list[Person], devices: list[Device], departments: list[Department], count: int
) -> tuple[list[Ticket], list[Sla]]:
    rng = g.rng
    tickets: list[Ticket] = []
    slas: list[Sla] = []
    counters = dict.fromkeys(_TICKET_PREFIX, 10000)
    cmdb_devices = [d for d in devices if d.in_cmdb] or devices
    # bulk updates: a few instants that many tickets share, to the second
    bulk = [g.moment(300) for _ in range(max(1, count // 400))]
    horizon = 540 * 86400
    for _ in range(count):
        kind = rng.choices(["incident", "request", "problem", "change"], weights=[70, 15, 5, 10])[0]
        counters[kind] += 1
        impact, urgency = (
            rng.choices([1, 2, 3], weights=[8, 35, 57])[0],
            rng.choices([1, 2, 3], weights=[10, 35, 55])[0],
        )
        priority = PRIORITY_MATRIX[(impact, urgency)]
        opened = (g.now - timedelta(seconds=rng.randrange(horizon))).replace(microsecond=0)
        age_hours = (g.now - opened).total_seconds() / 3600
        target = RESOLUTION_HOURS[priority] * rng.lognormvariate(0, 0.8)
        if target < age_hours and rng.random() < 0.97:
            state = rng.choices(["resolved", "closed", "cancelled"], weights=[15, 80, 5])[0]
        else:
            state = (
                rng.choices(["new", "in_progress", "on_hold"], weights=[20, 60, 20])[0]
                if kind == "incident"
                else rng.choice(["new", "in_progress"])
            )
        responded = opened + timedelta(minutes=rng.randrange(2, 240)) if state != "new" else None
        resolved = closed = None
        if state in ("resolved", "closed"):
            resolved = opened + timedelta(hours=target)
            if state == "closed":
                closed = resolved + timedelta(days=3)
        if state == "cancelled":
            closed = opened + timedelta(hours=min(target, age_hours))
        caller = rng.choice(people)
        device = rng.choice(cmdb_devices) if kind == "incident" and rng.random() < 0.6 else None
        last = max(t for t in (opened, responded, resolved, closed) if t is not None)
        updated = min(last.replace(microsecond=0), g.now)
        if rng.random() < 0.05:
            updated = max(rng.choice(bulk), opened)
        title = (
            rng.choice(INCIDENT_TOPICS)[0]
            if kind == "incident"
            else rng.choice(
                {"request": REQUEST_TOPICS, "problem": PROBLEM_TOPICS, "change": CHANGE_TOPICS}[
                    kind
                ]
            )
        )
        category = (
            rng.choice(INCIDENT_TOPICS)[1]
            if kind == "incident"
            else {"request": "Request", "problem": "Software", "change": "Infrastructure"}[kind]
        )
        ticket = Ticket(
            id=g.hex_id(),
            kind=kind,
            number=f"{_TICKET_PREFIX[kind]}00{counters[kind]}",
            title=title,
            priority=priority,
            impact=impact,
            urgency=urgency,
            state=state,
            opened=opened,
            responded=min(responded, g.now) if responded else None,
            resolved=min(resolved, g.now) if resolved else None,
            closed=min(closed, g.now) if closed else None,
            assignment_group=rng.choice(GROUPS),
            assignee_id=rng.choice(people).id if state != "new" else None,
            caller_id=caller.id,
            department=caller.department,
            category=category,
            device_id=device.id if device else None,
            reassignment_count=rng.choices([0, 1, 2, 3], weights=[60, 25, 10, 5])[0],
            reopen_count=rng.choices([0, 1, 2], weights=[90, 8, 2])[0],
            created=opened,
            updated=updated,
        )
        tickets.append(ticket)
        if kind in ("incident", "request"):
            slas.append(_sla(g, ticket))
    return tickets, slas


def _sla(g: _Gen, ticket: Ticket) -> Sla:
    hours = (
        RESOLUTION_HOURS[ticket.priority]
        if ticket.priority <= 2
        else {3: 24.0, 4: 40.0, 5: 80.0}[ticket.priority]
    )
    start = ticket.opened
    planned_end = start + timedelta(hours=hours)
    end = ticket.resolved or (ticket.closed if ticket.state == "cancelled" else None)
    elapsed = ((end or g.now) - start).total_seconds()
    stage = {
        "resolved": "completed",
        "closed": "completed",
        "cancelled": "cancelled",
        "on_hold": "paused",
    }.get(ticket.state, "in_progress")
    percent = round(100 * elapsed / (hours * 3600), 2)
    return Sla(
        id=g.hex_id(),
        ticket_id=ticket.id,
        name=f"P{ticket.priority} resolution ({int(hours)} hours)",
        stage=stage,
        has_breached=(end or g.now) > planned_end,
        start=start,
        end=end,
        planned_end=planned_end,
        elapsed_seconds=elapsed,
        business_elapsed_seconds=round(elapsed * 0.3, 0),
        percent=percent,
        business_percent=round(percent * 0.3, 2),
        created=start,
        updated=ticket.updated,
    )


def _apps(g: _Gen, devices: list[Device]) -> list[App]:
    managed = [d for d in devices if d.in_intune and d.os in ("Windows", "macOS")]
    apps: list[App] = []
    for name, publisher in APP_NAMES:
        for version in g.rng.sample(
            ["1.0", "2.3.1", "24.1", "126.0.6478.127", "5.17.11"], g.rng.randrange(1, 3)
        ):
            share = g.rng.uniform(0.05, 0.9)
            on = [d.id for d in managed if g.rng.random() < share]
            apps.append(
                App(id=g.hex_id(), name=name, version=version, publisher=publisher, device_ids=on)
            )
    return apps


# The departments whose service desk is Jira Service Management; the others use ServiceNow.
JSM_DEPARTMENTS: tuple[str, ...] = ("fire", "water", "parks", "library")

JIRA_INITIATIVES = ["Digital Services Modernization", "Field Operations Mobility"]
JIRA_EPICS = [
    "Online permit payments",
    "Crew scheduling app",
    "Hydrant inspection tracking",
    "Library self-checkout refresh",
    "Park reservations portal",
    "Outage map for residents",
    "Fleet telematics integration",
    "Records retention automation",
]


def _service_desks(tickets: list[Ticket]) -> None:
    """Put the JSM departments' tickets on the Jira Service Management desk."""
    for ticket in tickets:
        if ticket.department in JSM_DEPARTMENTS:
            ticket.platform = "jira"


def _jira_work(g: _Gen, people: list[Person], projects: int) -> list[Work]:
    """Jira Software's epics (and the initiatives above some of them) for the JSM departments."""
    items: list[Work] = []
    counter = 0

    def number() -> str:
        nonlocal counter
        counter += 1
        return f"JSW-{counter}"

    initiatives = [
        _work_item(g, "program", number(), name, None, "itd", "jira", people)
        for name in JIRA_INITIATIVES[: max(1, projects // 9)]
    ]
    items += initiatives
    for name in JIRA_EPICS[: max(3, min(len(JIRA_EPICS), projects // 2))]:
        parent = g.rng.choice(initiatives) if g.rng.random() < 0.7 else None
        dept = g.rng.choice(JSM_DEPARTMENTS)
        items.append(_work_item(g, "epic", number(), name, parent, dept, "jira", people))
    return items


def generate(
    seed: int = 7,
    size: str = "small",
    *,
    tickets: int | None = None,
    devices: int | None = None,
    now: datetime | None = None,
) -> World:
    """The city for ``seed`` and ``size`` (tiny, small, medium); counts may be overridden."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    counts = dict(SIZES[size])
    if tickets is not None:
        counts["tickets"] = tickets
    if devices is not None:
        counts["devices"] = devices
    g = _Gen(seed, now or DEFAULT_NOW)
    departments = [Department(id=d, name=name) for d, name, _code in DEPARTMENTS]
    people = _people(g, departments, counts["people"])
    device_list = _devices(g, people, departments, counts["devices"])
    work = _work(g, people, departments, counts["projects"])
    demand_list = _demands(g, people, work, counts["demands"])
    ticket_list, slas = _tickets(g, people, device_list, departments, counts["tickets"])
    app_list = _apps(g, device_list)
    # Drawn last, so the rest of the city stays what it was for a seed.
    _service_desks(ticket_list)
    work += _jira_work(g, people, counts["projects"])
    world = World(
        seed=seed,
        now=g.now,
        departments=departments,
        groups=list(GROUPS),
        people=people,
        devices=device_list,
        work=work,
        demands=demand_list,
        tickets=ticket_list,
        slas=slas,
        apps=app_list,
    )
    add_clarity(world, projects=max(2, counts["projects"] // 3))
    from .knowledge import add_knowledge  # its own random source: the rest stays as it was

    add_knowledge(world)
    return world


# -- the Clarity PPM tenant ---------------------------------------------------------------------

_PLAN_CATEGORIES = {"capital": ["Hardware", "Software"], "operating": ["Labor", "Services"]}


def add_clarity(world: World, *, projects: int, tasks_per_project: int | None = None) -> None:
    """Give ``world`` a Clarity PPM tenant (replacing any it had): a program, ``projects``
    projects with tasks, milestones and monthly budget, forecast and benefit plans, and half
    the demands as ideas.

    The City piloted Clarity on part of its real portfolio, so about half the projects mirror
    one another platform holds (same name, department, dates and money); the rest are its own.
    A random source of its own keeps every other platform's slice as it was for the seed.
    """
    world.work = [w for w in world.work if w.platform != "clarity"]
    world.plans = []
    g = _Gen(world.seed * 1009 + 17, world.now)
    people = world.people
    departments = [d.id for d in world.departments]
    others = [w for w in world.work if w.kind == "project" and w.platform != "clarity"]
    program = _work_item(
        g, "program", "PRG-CL-1", "Capital Improvement Program", None, "itd", "clarity", people
    )
    items: list[Work] = [program]
    for i in range(projects):
        code = f"PR{1001 + i}"
        if i % 2 == 0 and i // 2 < len(others):
            twin = others[i // 2]
            project = _work_item(
                g, "project", code, twin.name, program, twin.department, "clarity", people
            )
            for name in (
                "state", "phase", "health", "manager_id", "sponsor_id", "goals", "priority",
                "planned_start", "planned_finish", "actual_start", "actual_finish",
                "percent_complete", "budget", "actual_cost", "forecast_cost",
                "planned_value", "earned_value",
            ):  # fmt: skip
                setattr(project, name, getattr(twin, name))
        else:
            topic = g.rng.choice(PROJECT_TOPICS)
            project = _work_item(
                g, "project", code, topic, program, g.rng.choice(departments), "clarity", people
            )
        items.append(project)
        count = tasks_per_project if tasks_per_project is not None else g.rng.randrange(2, 5)
        for t in range(count):
            kind = "milestone" if t == count - 1 and count > 1 else "task"
            task = _work_item(
                g,
                kind,
                f"{code}-T{t + 1:03d}",
                f"{project.name}: {'Go-live' if kind == 'milestone' else 'Work package ' + str(t + 1)}",
                project,
                project.department,
                "clarity",
                people,
            )
            items.append(task)
        world.plans += _plans(g, project)
    world.work += items
    world.idea_ids = [d.id for i, d in enumerate(world.demands) if i % 2 == 0]


def _plans(g: _Gen, project: Work) -> list[PlanLine]:
    """Monthly budget, forecast and benefit lines over the project's planned schedule."""
    start = project.planned_start or g.now
    finish = project.planned_finish or start
    months: list[date] = []
    month = date(start.year, start.month, 1)
    while month <= finish.date() and len(months) < 24:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    months = months or [date(start.year, start.month, 1)]
    lines: list[PlanLine] = []
    capital_share = g.rng.choice([0.0, 0.4, 0.6])
    totals = {"budget": project.budget, "forecast": project.forecast_cost}
    for plan, total in totals.items():
        for cost_type, share in (("capital", capital_share), ("operating", 1 - capital_share)):
            if share == 0:
                continue
            category = g.rng.choice(_PLAN_CATEGORIES[cost_type])
            each = round(total * share / len(months), 2)
            for period in months:
                lines.append(
                    PlanLine(
                        id=g.hex_id(), work_id=project.id, plan=plan,
                        plan_name=f"{project.number} {plan.capitalize()}", period=period,
                        cost_type=cost_type, category=category, amount=each,
                        updated=project.updated,
                    )
                )  # fmt: skip
    yearly = round(project.budget * g.rng.uniform(0.15, 0.45), 2)
    benefit_start = date(finish.year + 1, 1, 1)
    for year in range(3):
        lines.append(
            PlanLine(
                id=g.hex_id(), work_id=project.id, plan="benefit",
                plan_name=f"{project.number} Benefits",
                period=date(benefit_start.year + year, 1, 1), cost_type="operating",
                category="Cost savings", amount=yearly, updated=project.updated,
            )
        )  # fmt: skip
    return lines
