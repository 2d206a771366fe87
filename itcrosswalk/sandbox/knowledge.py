"""The city's knowledge base, root-cause records and hardware lifecycle, drawn from its own
random source so the rest of the world stays what it was for a seed.

What it holds, platform-neutral (the ServiceNow emulator renders it): knowledge articles in
versions (a few stale: published past their valid-to date, never reviewed, never used), their
view log, feedback (some flagged and left open) and the incidents they were attached to; the
root cause of each ServiceNow problem (some closed without one) and the incidents linked to
problems; and each CMDB computer's asset lifecycle (model category, substate, planned
retirement, depreciation). The fleet ages: a large purchase in fiscal 2021-22 comes up for
refresh together.

It also holds the traits of the City's instance that tests switch: the problem state model
(``madrid`` or ``legacy``), the asset state codes its ``sys_choice`` uses, whether it keeps the
``kb_use`` view log, and what ``sys_view_count`` counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .world import World

MODEL_CATEGORIES: dict[str, str] = {
    "Latitude 5440": "Laptop",
    "EliteBook 840 G10": "Laptop",
    "ThinkPad T14 Gen 4": "Laptop",
    "MacBook Pro (14-inch, 2023)": "Laptop",
    "OptiPlex 7010": "Desktop",
    "Toughbook 40": "Rugged laptop",
    "iPhone 14": "Phone",
    "Galaxy XCover6 Pro": "Phone",
    "iPad (10th generation)": "Tablet",
}
"""The City's model categories (``cmdb_model_category``) of the world's device models."""

REFRESH_YEARS: dict[str, int] = {
    "Laptop": 4,
    "Rugged laptop": 5,
    "Desktop": 5,
    "Phone": 3,
    "Tablet": 3,
}
"""The refresh age the sandbox city plans by (the demo's config says the same)."""

UNIT_PRICES: dict[str, float] = {
    "Laptop": 1450.0,
    "Rugged laptop": 3900.0,
    "Desktop": 1100.0,
    "Phone": 650.0,
    "Tablet": 520.0,
}
"""The price list the demo's config carries: a replacement's price today, per category."""

ASSET_STATES: dict[str, str] = {
    "In use": "1",
    "On order": "2",
    "In maintenance": "3",
    "In stock": "6",
    "Retired": "7",
    "Missing": "8",
    "In transit": "9",
    "Consumed": "10",
}
"""``alm_asset.install_status`` label -> code, as out-of-box instances number them (the
platform notes tag these [INF]; an instance may number them otherwise)."""

SUBSTATES: dict[str, list[str]] = {
    "In use": ["", "", "", "", "", "", "pending_retirement", "end_of_support"],
    "In stock": ["available", "available", "reserved", "pending_disposal", "defective"],
    "Retired": ["disposed", "sold", "donated"],
    "Missing": ["lost", "stolen"],
}

ARTICLE_TOPICS: list[tuple[str, str]] = [
    ("Reset your network password", "Access"),
    ("Connect to the city VPN from home", "Network"),
    ("Add a network printer", "Hardware"),
    ("Fix Outlook not syncing", "Software"),
    ("MDT does not boot: first steps", "Hardware"),
    ("CAD client freezes on shift change", "Software"),
    ("Report a suspicious email", "Security"),
    ("Map a shared drive", "Network"),
    ("Request a replacement phone", "Hardware"),
    ("ArcGIS license errors", "Software"),
    ("Wi-Fi at fire stations", "Network"),
    ("Set up email on a city phone", "Software"),
    ("Enroll a laptop in Intune", "Hardware"),
    ("Multifactor sign-in problems", "Access"),
]
KNOWLEDGE_BASES = ["IT", "Public Safety IT"]

CAUSES = [
    "Driver version 4.2 leaks handles under load",
    "Certificate on the VPN concentrator expired early",
    "Mail sync token expires after a password change",
    "Firmware bug drops idle sessions",
]
FIXES = [
    "Rolled out driver 4.3 through Intune",
    "Renewed the certificate and added monitoring",
    "Changed token lifetime policy",
    "Applied firmware 12.1 to the core switches",
]
WORKAROUNDS = [
    "Restart the client",
    "Reconnect the VPN",
    "Sign out and in again",
    "Use the web client",
]


@dataclass
class ArticleVersion:
    id: str
    version: str  # "1.0", "2.0"; a draft "0.01"
    state: str  # draft, review, published, pending_retirement, retired, outdated
    latest: bool
    published: date | None
    valid_to: date | None
    created: datetime
    updated: datetime
    view_count: int = 0
    use_count: int = 0
    flagged: bool = False


@dataclass
class Article:
    number: str  # KB0010001, shared by its versions
    title: str
    category: str
    knowledge_base: str
    author_id: str
    owner_group: str
    rating: float | None
    versions: list[ArticleVersion] = field(default_factory=list)

    @property
    def latest(self) -> ArticleVersion:
        return next(v for v in self.versions if v.latest)


@dataclass
class ArticleUse:
    id: str
    version_id: str
    user_id: str
    at: datetime
    viewed: bool
    used: bool
    times_viewed: int


@dataclass
class ArticleFeedback:
    id: str
    version_id: str
    user_id: str
    at: datetime
    rating: int | None
    useful: bool | None
    flagged: bool
    comment: str
    resolved: bool


@dataclass
class ArticleLink:
    id: str
    version_id: str
    ticket_id: str
    at: datetime


@dataclass
class RootCause:
    cause: str  # HTML as the platform keeps it; "" when none was recorded
    fix: str
    workaround: str
    known_error: bool
    resolution_code: str  # fix_applied, risk_accepted, duplicate, canceled; "" while open
    duplicate_of: str | None  # a problem's id
    fix_change: str | None  # a change's id
    incidents: list[str] = field(default_factory=list)
    ci_device: str | None = None
    category: str | None = None


@dataclass
class AssetLife:
    device_id: str
    model_category: str
    state: str  # the label: In use, In stock, Retired, Missing
    substate: str
    planned_retirement: date | None
    retired_on: date | None
    depreciation: str
    salvage_value: float
    depreciated_amount: float
    location: str


@dataclass
class KnowledgeWorld:
    """The knowledge base, root causes and asset lifecycles, and the instance's traits."""

    problem_model: str = "madrid"
    asset_codes: dict[str, str] = field(default_factory=lambda: dict(ASSET_STATES))
    keeps_kb_use: bool = True
    view_age_days: int | None = 30
    """``glide.knowman.view_age.days``: ``sys_view_count`` is a rolling window this long; 0: a
    lifetime count; None: the instance has no such property (Paris onward)."""
    articles: list[Article] = field(default_factory=list)
    uses: list[ArticleUse] = field(default_factory=list)
    feedback: list[ArticleFeedback] = field(default_factory=list)
    links: list[ArticleLink] = field(default_factory=list)
    root_causes: dict[str, RootCause] = field(default_factory=dict)
    incident_problem: dict[str, str] = field(default_factory=dict)
    assets: dict[str, AssetLife] = field(default_factory=dict)


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _at(
    rng: random.Random, now: datetime, days_back: float, after: datetime | None = None
) -> datetime:
    start = after or (now - timedelta(days=days_back))
    span = max(1, int((now - start).total_seconds()))
    return (start + timedelta(seconds=rng.randrange(span))).replace(microsecond=0)


def _fiscal_wave(rng: random.Random) -> date:
    """A day of the City's fiscal 2022 (July 2021 to June 2022): the big laptop buy."""
    return date(2021, 7, 1) + timedelta(days=rng.randrange(365))


def add_knowledge(world: World) -> None:
    """Draw the knowledge base, root causes and asset lifecycles into ``world``."""
    rng = random.Random(f"{world.seed}/knowledge")
    kw = KnowledgeWorld()
    world.knowledge = kw
    _age_fleet(rng, world)
    _assets(rng, world, kw)
    _articles(rng, world, kw)
    _root_causes(rng, world, kw)


def _age_fleet(rng: random.Random, world: World) -> None:
    # Two in five computers the CMDB knows came in the fiscal-2022 buy: they reach their
    # refresh age together. Their warranties ran the same term from the older purchase.
    for device in world.devices:
        if not device.in_cmdb or device.purchase_date is None or rng.random() >= 0.4:
            continue
        term = (
            (device.warranty_expiration.year - device.purchase_date.year)
            if device.warranty_expiration
            else None
        )
        purchase = _fiscal_wave(rng)
        device.purchase_date = purchase
        if term is not None:
            device.warranty_expiration = _add_years(purchase, term)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


_LABELS = {1: "In use", 6: "In stock", 7: "Retired"}


def _assets(rng: random.Random, world: World, kw: KnowledgeWorld) -> None:
    offices = {p.id: p.office for p in world.people}
    today = world.now.date()
    for device in world.devices:
        if not device.in_cmdb:
            continue
        category = MODEL_CATEGORIES.get(device.model, "Laptop")
        state = _LABELS.get(device.install_status, "In use")
        if state == "In use" and rng.random() < 0.01:
            state = "Missing"
        substate = rng.choice(SUBSTATES.get(state, [""]))
        life = REFRESH_YEARS.get(category, 4)
        planned = _add_years(device.purchase_date, life) if device.purchase_date else None
        if planned and rng.random() < 0.1:
            planned = None  # nobody planned this one's retirement
        retired_on = None
        if state == "Retired":
            retired_on = min(today, planned) if planned else today - timedelta(days=30)
        salvage = round(device.cost * 0.1, 2)
        age_years = (today - device.purchase_date).days / 365.25 if device.purchase_date else 0.0
        depreciated = round(min(1.0, age_years / life) * (device.cost - salvage), 2)
        kw.assets[device.id] = AssetLife(
            device_id=device.id,
            model_category=category,
            state=state,
            substate=substate,
            planned_retirement=planned,
            retired_on=retired_on,
            depreciation="Straight Line",
            salvage_value=salvage,
            depreciated_amount=depreciated,
            location=offices.get(device.owner_id or "", "Central Warehouse"),
        )


def _articles(rng: random.Random, world: World, kw: KnowledgeWorld) -> None:
    now = world.now
    today = now.date()
    people = [p for p in world.people if p.active] or world.people
    count = max(8, len(world.people) // 10)
    groups = world.groups or ["Service Desk"]
    for i in range(count):
        title, category = ARTICLE_TOPICS[i % len(ARTICLE_TOPICS)]
        if i >= len(ARTICLE_TOPICS):
            title = f"{title} ({i // len(ARTICLE_TOPICS) + 1})"
        article = Article(
            number=f"KB00{10001 + i}",
            title=title,
            category=category,
            knowledge_base=rng.choice(KNOWLEDGE_BASES),
            author_id=rng.choice(people).id,
            owner_group=rng.choice(groups),
            rating=rng.choice([None, 3.0, 3.5, 4.0, 4.5, 5.0]),
        )
        fate = rng.choices(
            ["published", "draft", "review", "retired", "pending_retirement"],
            weights=[76, 8, 5, 7, 4],
        )[0]
        created = _at(rng, now, 1400, after=now - timedelta(days=1400))
        editions = rng.choices([1, 2, 3], weights=[60, 28, 12])[0]
        moment = created
        for edition in range(1, editions + 1):
            published = (moment + timedelta(days=rng.randrange(1, 10))).date()
            last = edition == editions
            state = fate if last else "outdated"
            if last and fate == "draft":
                published_on = None
                version = f"{edition - 1}.01" if edition > 1 else "0.01"
            else:
                published_on = published
                version = f"{edition}.0"
            stale = rng.random() < 0.3
            valid_to = (
                (published + timedelta(days=rng.randrange(180, 400)))
                if stale
                else date(2100, 1, 1)
                if rng.random() < 0.5
                else today + timedelta(days=rng.randrange(30, 700))
            )
            moment_updated = datetime.combine(published, now.timetz()).replace(tzinfo=now.tzinfo)
            article.versions.append(
                ArticleVersion(
                    id=_hex(rng),
                    version=version,
                    state=state,
                    latest=last,
                    published=published_on,
                    valid_to=valid_to,
                    created=moment,
                    updated=min(now, moment_updated),
                )
            )
            if not last:
                moment = _at(
                    rng,
                    now,
                    0,
                    after=max(moment, min(now - timedelta(days=60), moment + timedelta(days=200))),
                )
        kw.articles.append(article)
    _article_use(rng, world, kw)


def _article_use(rng: random.Random, world: World, kw: KnowledgeWorld) -> None:
    now = world.now
    people = world.people
    for article in kw.articles:
        live = [v for v in article.versions if v.published is not None]
        if not live:
            continue
        quiet = rng.random() < 0.25  # nobody has opened it for months
        for _ in range(rng.randrange(0, 14)):
            version = rng.choice(live)
            floor = max(version.created, now - timedelta(days=400))
            at = _at(rng, now, 0, after=floor)
            if quiet and at > now - timedelta(days=120):
                continue
            kw.uses.append(
                ArticleUse(
                    id=_hex(rng),
                    version_id=version.id,
                    user_id=rng.choice(people).id,
                    at=at,
                    viewed=True,
                    used=False,
                    times_viewed=rng.randrange(1, 4),
                )
            )
        for _ in range(rng.randrange(0, 4)):
            version = rng.choice(live)
            flagged = rng.random() < 0.3
            kw.feedback.append(
                ArticleFeedback(
                    id=_hex(rng),
                    version_id=version.id,
                    user_id=rng.choice(people).id,
                    at=_at(rng, now, 0, after=max(version.created, now - timedelta(days=200))),
                    rating=rng.choice([None, 1, 2, 3, 4, 5]),
                    useful=rng.choice([None, True, False]),
                    flagged=flagged,
                    comment="Steps are out of date" if flagged else "Thanks",
                    resolved=flagged and rng.random() < 0.4,
                )
            )
    published = {a.number: [v for v in a.versions if v.published is not None] for a in kw.articles}
    by_category: dict[str, list[Article]] = {}
    for article in kw.articles:
        if published[article.number]:
            by_category.setdefault(article.category, []).append(article)
    for ticket in world.tickets:
        if ticket.platform != "servicenow" or ticket.kind != "incident":
            continue
        if ticket.state not in ("resolved", "closed") or rng.random() >= 0.35:
            continue
        candidates = by_category.get(ticket.category)
        if not candidates:
            continue
        article = rng.choice(candidates)
        versions = [v for v in published[article.number] if v.created <= (ticket.resolved or now)]
        if not versions:
            continue
        version = versions[-1]
        at = min(now, max(ticket.opened, ticket.resolved or ticket.opened))
        kw.links.append(
            ArticleLink(id=_hex(rng), version_id=version.id, ticket_id=ticket.id, at=at)
        )
        kw.uses.append(
            ArticleUse(
                id=_hex(rng),
                version_id=version.id,
                user_id=ticket.assignee_id or ticket.caller_id or people[0].id,
                at=at,
                viewed=True,
                used=True,
                times_viewed=1,
            )
        )
    _counts(world, kw)


def _counts(world: World, kw: KnowledgeWorld) -> None:
    """The platform's own counters: views and uses carried over to later versions (a view of
    a version counts for every later published one), views over the rolling window or for life."""
    window = world.now - timedelta(days=kw.view_age_days) if kw.view_age_days else None
    version_of = {v.id: (a, v) for a in kw.articles for v in a.versions}
    flagged = {f.version_id for f in kw.feedback if f.flagged and not f.resolved}
    for use in kw.uses:
        article, version = version_of[use.version_id]
        order = article.versions.index(version)
        for later in article.versions[order:]:
            if later.published is None:
                continue
            if use.viewed and (window is None or use.at >= window):
                later.view_count += use.times_viewed
            if use.used:
                later.use_count += 1
    for article in kw.articles:
        article.latest.flagged = any(v.id in flagged for v in article.versions)


def _root_causes(rng: random.Random, world: World, kw: KnowledgeWorld) -> None:
    desk = [t for t in world.tickets if t.platform == "servicenow"]
    problems = [t for t in desk if t.kind == "problem"]
    changes = [t for t in desk if t.kind == "change"]
    incidents = [t for t in desk if t.kind == "incident"]
    for problem in problems:
        done = problem.state in ("resolved", "closed", "cancelled")
        recorded = rng.random() < (0.65 if done else 0.35)
        code = ""
        if problem.state == "cancelled":
            code = "canceled"
        elif done:
            code = rng.choices(["fix_applied", "risk_accepted", "duplicate"], weights=[80, 10, 10])[
                0
            ]
        pick = rng.randrange(len(CAUSES))
        cause = (
            f"<p>{CAUSES[pick]}</p>" if recorded else rng.choice(["", "<p></p>", "<p>&nbsp;</p>"])
        )
        fix = f"<p>{FIXES[pick]}</p>" if recorded and (done or rng.random() < 0.5) else ""
        known = recorded and rng.random() < 0.5
        duplicate_of = None
        if code == "duplicate":
            others = [p for p in problems if p.id != problem.id]
            duplicate_of = rng.choice(others).id if others else None
        fix_change = (
            rng.choice(changes).id
            if code == "fix_applied" and changes and rng.random() < 0.6
            else None
        )
        root = RootCause(
            cause=cause,
            fix=fix,
            workaround=f"<p>{rng.choice(WORKAROUNDS)}</p>" if known or rng.random() < 0.3 else "",
            known_error=known,
            resolution_code=code,
            duplicate_of=duplicate_of,
            fix_change=fix_change,
        )
        linked = rng.sample(incidents, min(len(incidents), rng.randrange(1, 5)))
        for incident in linked:
            if incident.id in kw.incident_problem:
                continue
            kw.incident_problem[incident.id] = problem.id
            root.incidents.append(incident.id)
        if root.incidents:
            first = next(t for t in incidents if t.id == root.incidents[0])
            root.category = first.category
            root.ci_device = first.device_id
        kw.root_causes[problem.id] = root
    # Half of the P1 incidents got a problem record (a major incident should).
    open_problems = [p for p in problems if p.state not in ("resolved", "closed", "cancelled")]
    for incident in incidents:
        if incident.priority != 1 or incident.id in kw.incident_problem or not problems:
            continue
        if rng.random() < 0.5:
            target = rng.choice(open_problems or problems)
            kw.incident_problem[incident.id] = target.id
            kw.root_causes[target.id].incidents.append(incident.id)
