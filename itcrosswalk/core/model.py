"""The common model: what every platform's records become.

Every record carries its provenance (``source``, ``platform``, ``source_id``, ``url``,
``updated_at``) and keeps the native fields the model does not name in ``extra``. Its key is
``(source, entity, source_id)``. The normalized enumerations are the heart of the crosswalk:
each plugin's ``mapping.py`` maps native values onto them, and an unknown native value becomes
``unknown`` with the native value kept in ``extra``.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from typing import Any, ClassVar, TypeGuard, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticUndefined


class TicketKind(StrEnum):
    INCIDENT = "incident"
    REQUEST = "request"
    PROBLEM = "problem"
    CHANGE = "change"


class TicketState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class WorkItemKind(StrEnum):
    PORTFOLIO = "portfolio"
    THEME = "theme"
    """A strategic theme: a portfolio's investment direction (Jira Align themes)."""
    PROGRAM = "program"
    PROJECT = "project"
    EPIC = "epic"
    CAPABILITY = "capability"
    """A large solution-level feature that groups features (SAFe capabilities)."""
    FEATURE = "feature"
    TASK = "task"
    MILESTONE = "milestone"


class WorkState(StrEnum):
    """Where a piece of portfolio work stands, whatever the platform calls it."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    DONE = "done"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Phase(StrEnum):
    """The project-management phase (PMI-style), distinct from the state."""

    INITIATING = "initiating"
    PLANNING = "planning"
    EXECUTING = "executing"
    MONITORING = "monitoring"
    CLOSING = "closing"
    UNKNOWN = "unknown"


class Health(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    UNKNOWN = "unknown"


class DemandState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    SCREENING = "screening"
    QUALIFIED = "qualified"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    COMPLETED = "completed"
    UNKNOWN = "unknown"


class ComplianceState(StrEnum):
    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    IN_GRACE_PERIOD = "in_grace_period"
    CONFLICT = "conflict"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"


class SlaStage(StrEnum):
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


_SERIAL_JUNK = {
    "",
    "0",
    "default string",
    "to be filled by o.e.m.",
    "system serial number",
    "none",
    "n/a",
    "unknown",
}


_SERIAL_JUNK_FOLDED = frozenset(s.replace(" ", "") for s in _SERIAL_JUNK)


def normalize_serial(serial: str | None) -> str | None:
    """The join key for devices: case- and space-insensitive; placeholders become None."""
    if serial is None:
        return None
    # ``str.split()`` splits on the whitespace ``\s`` matches, for a fraction of its cost.
    folded = "".join(serial.split()).upper()
    if folded.lower() in _SERIAL_JUNK_FOLDED:
        return None
    return folded


def normalize_email(value: str | None) -> str | None:
    """The join key for people: a trimmed, lower-cased UPN or e-mail."""
    if not value or not value.strip():
        return None
    return value.strip().lower()


class Record(BaseModel):
    """Provenance shared by every entity. Key: ``(source, ENTITY, source_id)``."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True, validate_assignment=False)

    ENTITY: ClassVar[str] = ""

    source: str
    platform: str
    source_id: str = Field(min_length=1)
    url: str | None = None
    updated_at: datetime | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value: Any) -> Any:
        # Every timestamp in the store is UTC and aware, whatever the platform sent.
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class WorkItem(Record):
    ENTITY: ClassVar[str] = "work_item"

    kind: WorkItemKind
    number: str | None = None
    name: str
    parent_id: str | None = None
    state: WorkState = WorkState.UNKNOWN
    phase: Phase = Phase.UNKNOWN
    health: Health = Health.UNKNOWN
    sponsor: str | None = None
    manager: str | None = None
    department: str | None = None
    strategic_goals: list[str] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=1, le=5)
    score: float | None = None
    business_case_approved: bool | None = None
    planned_start: datetime | None = None
    """The start on the current schedule (it moves as the plan is updated)."""
    planned_finish: datetime | None = None
    """The finish on the current schedule: the forecast, which on most platforms becomes the
    actual finish once the work is done. Lateness is judged against ``baseline_finish``."""
    baseline_start: datetime | None = None
    """The start the approved plan (the baseline, Project's baseline 0) committed to; None
    where the platform keeps no baseline."""
    baseline_finish: datetime | None = None
    """The finish the approved plan committed to; None where the platform keeps no baseline."""
    actual_start: datetime | None = None
    actual_finish: datetime | None = None
    percent_complete: float | None = None
    budget: float | None = None
    actual_cost: float | None = None
    forecast_cost: float | None = None
    """The cost on the current plan (estimate at completion as the platform keeps it)."""
    baseline_cost: float | None = None
    """The cost the approved plan committed to; None where the platform keeps no baseline."""
    planned_value: float | None = None
    earned_value: float | None = None
    external_ref: str | None = None


class Demand(Record):
    ENTITY: ClassVar[str] = "demand"

    number: str | None = None
    name: str
    state: DemandState = DemandState.UNKNOWN
    requester: str | None = None
    department: str | None = None
    strategic_goals: list[str] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=1, le=5)
    score: float | None = None
    business_case_approved: bool | None = None
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    estimated_cost: float | None = None
    project_id: str | None = None


class Ticket(Record):
    ENTITY: ClassVar[str] = "ticket"

    kind: TicketKind
    number: str | None = None
    title: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    state: TicketState = TicketState.UNKNOWN
    opened_at: datetime | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    assignment_group: str | None = None
    assignee: str | None = None
    requester: str | None = None
    department: str | None = None
    category: str | None = None
    device_serial: str | None = None
    device_name: str | None = None
    reassignment_count: int | None = None
    reopen_count: int | None = None
    # Root cause (problems) and the problem an incident is linked to; None: not recorded.
    problem_state_model: str | None = None
    """``madrid`` (101-107) or ``legacy`` (1-4): the instance's problem states, from its choices."""
    cause_notes: str | None = None
    """The root cause as text (HTML reduced); ``""`` where the field exists but is empty."""
    fix_notes: str | None = None
    workaround: str | None = None
    known_error: bool | None = None
    resolution_code: str | None = None
    duplicate_of: str | None = None
    fix_change: str | None = None
    """The change that fixed the problem (its number, else its id)."""
    related_incidents: int | None = None
    problem_id: str | None = None
    """On an incident: the source id of the problem record it is linked to."""


class SlaRecord(Record):
    ENTITY: ClassVar[str] = "sla_record"

    ticket_id: str | None = None
    sla_name: str | None = None
    stage: SlaStage = SlaStage.UNKNOWN
    has_breached: bool | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    planned_end_at: datetime | None = None
    elapsed_seconds: float | None = None
    business_elapsed_seconds: float | None = None
    elapsed_percent: float | None = None
    business_elapsed_percent: float | None = None


class Device(Record):
    ENTITY: ClassVar[str] = "device"

    name: str | None = None
    serial: str | None = None
    serial_key: str | None = None
    asset_tag: str | None = None
    os: str | None = None
    os_version: str | None = None
    owner: str | None = None
    department: str | None = None
    enrolled_at: datetime | None = None
    last_seen_at: datetime | None = None
    compliance: ComplianceState = ComplianceState.UNKNOWN
    encrypted: bool | None = None
    manufacturer: str | None = None
    model: str | None = None
    management_agent: str | None = None
    ownership: str | None = None
    install_status: str | None = None
    purchase_date: date | None = None
    warranty_expiration: date | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.serial_key is None:
            self.serial_key = normalize_serial(self.serial)


class DeviceCompliance(Record):
    ENTITY: ClassVar[str] = "device_compliance"

    device_id: str
    policy_id: str | None = None
    policy_name: str | None = None
    state: ComplianceState = ComplianceState.UNKNOWN
    last_reported_at: datetime | None = None


class InstalledApp(Record):
    ENTITY: ClassVar[str] = "installed_app"

    name: str
    version: str | None = None
    publisher: str | None = None
    device_count: int | None = None
    device_ids: list[str] = Field(default_factory=list)


class Person(Record):
    ENTITY: ClassVar[str] = "person"

    upn: str | None = None
    email: str | None = None
    name: str | None = None
    department: str | None = None
    office: str | None = None
    manager: str | None = None
    active: bool | None = None


class PlanKind(StrEnum):
    """Which financial plan a line belongs to."""

    BUDGET = "budget"
    FORECAST = "forecast"
    BENEFIT = "benefit"


class CostType(StrEnum):
    CAPITAL = "capital"
    OPERATING = "operating"
    UNKNOWN = "unknown"


class FinancePlanLine(Record):
    """One line of an investment's cost or benefit plan for one fiscal period.

    ``investment_id`` is the source id of the work item (or demand) the plan belongs to; a
    planned amount has ``actual = False``. Lines are kept per period, undiscounted, so NPV,
    payback and budget-versus-forecast are computed from them rather than taken from a
    platform's own rollups.
    """

    ENTITY: ClassVar[str] = "plan_line"

    investment_id: str
    plan: PlanKind
    plan_id: str | None = None
    plan_name: str | None = None
    plan_of_record: bool | None = None
    fiscal_period: str | None = None
    """The period's name as the platform has it (``2026-07``, ``FY27 P01``)."""
    period_start: datetime | None = None
    period_finish: datetime | None = None
    cost_type: CostType = CostType.UNKNOWN
    actual: bool = False
    category: str | None = None
    amount: float
    currency: str | None = None


class TimeGrain(StrEnum):
    """The length of one timephased bucket."""

    DAY = "day"
    WEEK = "week"
    """A week starting on Monday."""
    MONTH = "month"
    """A calendar month starting on its first day."""


class Assignment(Record):
    """One booking of a person (or of a named role nobody fills yet) on a work item.

    Who: ``person_upn`` is the join key (UPN or e-mail, :func:`normalize_email`) that makes one
    person's bookings on several platforms one sum; a platform that names the person only by
    display name leaves it None and sets ``person_name`` (the capacity engine matches that name
    to a Person only when exactly one person carries it). A demand for a role, not a person
    (Project's generic resources, ServiceNow's role-based resource plans, Clarity's
    ``requirementName``), sets ``generic = True`` and ``role``.

    What and when: ``work_item_id`` is the source id of the work item in the same source (a
    task or the project itself), ``project_id`` that of the project it rolls up to; ``start``
    and ``finish`` bound the booking; ``planned_hours`` and ``actual_hours`` are its totals, in
    hours whatever unit the platform keeps (None where the platform keeps no actuals).

    By period: where the platform keeps the booking timephased, the buckets are
    :class:`AssignmentPeriod` rows (one per assignment and period, keyed by ``assignment_id``)
    and ``granularity`` says their grain; None means the platform keeps only the totals, which
    the capacity engine spreads over the working days between ``start`` and ``finish``.
    """

    ENTITY: ClassVar[str] = "assignment"

    work_item_id: str | None = None
    project_id: str | None = None
    work_item_name: str | None = None
    resource_id: str | None = None
    """The platform's own id of the resource (user, enterprise resource, team member)."""
    person_upn: str | None = None
    person_name: str | None = None
    role: str | None = None
    generic: bool = False
    team: str | None = None
    department: str | None = None
    start: datetime | None = None
    finish: datetime | None = None
    planned_hours: float | None = None
    actual_hours: float | None = None
    remaining_hours: float | None = None
    granularity: TimeGrain | None = None
    booking: str | None = None
    """How firm the booking is, as the platform says it (``hard``, ``soft``, ``planned``,
    ``allocated``, ``committed``)."""
    active: bool | None = None
    """False where the platform marks the booking (or the resource on it) inactive."""


class AssignmentPeriod(Record):
    """One timephased bucket of an assignment: the hours it plans (and records) in a period.

    ``source_id`` is the assignment's id and the period's start (``<assignment>:<YYYY-MM-DD>``);
    ``period_finish`` is the first day *after* the period, so a day bucket of 1 March runs
    1 March to 2 March and buckets of one series tile without overlap. A day the platform keeps
    no row for is no booking that day (a gap), never an error.
    """

    ENTITY: ClassVar[str] = "assignment_period"

    assignment_id: str
    period_start: date
    period_finish: date
    granularity: TimeGrain
    planned_hours: float | None = None
    actual_hours: float | None = None


class Capacity(Record):
    """A person's (or a role's) available working hours in one period, as a platform keeps them.

    Platforms that keep availability (Project's ``ResourceTimephasedDataSet.Capacity``, a
    ServiceNow resource's aggregate capacity, Clarity's resource availability) give these rows;
    where none does, the capacity engine computes them from the City's working calendar
    (``[metrics.calendar]``) less holidays instead of storing them. ``period_finish`` is the
    first day after the period, as on :class:`AssignmentPeriod`; ``hours`` is 0 on a period
    the person is not available (a holiday, leave), never None.
    """

    ENTITY: ClassVar[str] = "capacity"

    resource_id: str | None = None
    person_upn: str | None = None
    person_name: str | None = None
    role: str | None = None
    team: str | None = None
    period_start: date
    period_finish: date
    granularity: TimeGrain
    hours: float
    calendar: str | None = None
    """The platform calendar the hours come from, where it names one (``Standard``,
    ``Part-time 60%``)."""


class ArticleState(StrEnum):
    """Where a knowledge article version stands in its workflow."""

    DRAFT = "draft"
    REVIEW = "review"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    PENDING_RETIREMENT = "pending_retirement"
    RETIRED = "retired"
    OUTDATED = "outdated"
    UNKNOWN = "unknown"


class KnowledgeArticle(Record):
    """One version of a knowledge article; ``latest`` marks the one the article is judged by.

    Counts carried over between versions (views, uses) are the platform's and are never summed
    across versions. ``view_count_kind`` says what ``view_count`` means on this instance
    (``rolling_30d``, ``lifetime``, or ``unknown``).
    """

    ENTITY: ClassVar[str] = "knowledge_article"

    number: str | None = None
    version: str | None = None
    latest: bool | None = None
    title: str | None = None
    knowledge_base: str | None = None
    category: str | None = None
    state: ArticleState = ArticleState.UNKNOWN
    author: str | None = None
    owner_group: str | None = None
    published_on: date | None = None
    valid_to: date | None = None
    reviewed_on: date | None = None
    """The last review: the latest version's publication (a new version is a review)."""
    active: bool | None = None
    view_count: int | None = None
    view_count_kind: str | None = None
    use_count: int | None = None
    rating: float | None = None
    flagged: bool | None = None


class KnowledgeUse(Record):
    """One row of the platform's view log: an article viewed, or attached to a task."""

    ENTITY: ClassVar[str] = "knowledge_use"

    article_id: str
    user: str | None = None
    viewed: bool | None = None
    used: bool | None = None
    times_viewed: int | None = None


class KnowledgeFeedback(Record):
    """A rating, a helpful vote, a comment or a flag on an article."""

    ENTITY: ClassVar[str] = "knowledge_feedback"

    article_id: str
    user: str | None = None
    rating: int | None = None
    useful: bool | None = None
    flagged: bool | None = None
    comment: str | None = None
    reason: str | None = None
    resolved: bool | None = None


class KnowledgeLink(Record):
    """An article attached to a task (an incident, a problem)."""

    ENTITY: ClassVar[str] = "knowledge_link"

    article_id: str
    task_id: str
    task_number: str | None = None


class Choice(Record):
    """One value of a platform's choice list (ServiceNow ``sys_choice``)."""

    ENTITY: ClassVar[str] = "choice"

    table_name: str
    element: str
    value: str
    label: str | None = None
    sequence: int | None = None
    inactive: bool | None = None
    dependent_value: str | None = None


class AssetState(StrEnum):
    """A hardware asset's lifecycle state."""

    ON_ORDER = "on_order"
    IN_STOCK = "in_stock"
    IN_TRANSIT = "in_transit"
    IN_USE = "in_use"
    IN_MAINTENANCE = "in_maintenance"
    RETIRED = "retired"
    MISSING = "missing"
    CONSUMED = "consumed"
    UNKNOWN = "unknown"


class Asset(Record):
    """A hardware asset: its lifecycle, money and who holds it. ``ci_id`` is the CMDB computer
    it is; Intune's device joins on ``serial_key``."""

    ENTITY: ClassVar[str] = "asset"

    asset_tag: str | None = None
    name: str | None = None
    serial: str | None = None
    serial_key: str | None = None
    model: str | None = None
    model_category: str | None = None
    state: AssetState = AssetState.UNKNOWN
    substate: str | None = None
    state_code: str | None = None
    purchase_date: date | None = None
    warranty_expiration: date | None = None
    planned_retirement: date | None = None
    retired_on: date | None = None
    cost: float | None = None
    currency: str | None = None
    depreciation: str | None = None
    salvage_value: float | None = None
    depreciated_amount: float | None = None
    residual_value: float | None = None
    assigned_to: str | None = None
    department: str | None = None
    location: str | None = None
    ci_id: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.serial_key is None:
            self.serial_key = normalize_serial(self.serial)


ENTITIES: dict[str, type[Record]] = {
    cls.ENTITY: cls
    for cls in (
        WorkItem,
        Demand,
        Ticket,
        SlaRecord,
        Device,
        DeviceCompliance,
        InstalledApp,
        Person,
        FinancePlanLine,
        Assignment,
        AssignmentPeriod,
        Capacity,
        KnowledgeArticle,
        KnowledgeUse,
        KnowledgeFeedback,
        KnowledgeLink,
        Choice,
        Asset,
    )
}

# The names ``crosswalk export`` takes, mapped to entity ids.
EXPORT_NAMES: dict[str, str] = {
    "tickets": "ticket",
    "sla-records": "sla_record",
    "work-items": "work_item",
    "demands": "demand",
    "devices": "device",
    "device-compliance": "device_compliance",
    "apps": "installed_app",
    "people": "person",
    "plan-lines": "plan_line",
    "assignments": "assignment",
    "assignment-periods": "assignment_period",
    "capacity": "capacity",
    "articles": "knowledge_article",
    "article-uses": "knowledge_use",
    "article-feedback": "knowledge_feedback",
    "article-links": "knowledge_link",
    "choices": "choice",
    "assets": "asset",
}


def parse_priority(value: Any) -> int | None:
    """A priority 1–5 from a native value such as ``"3"`` or ``"3 - Moderate"``; else None."""
    if value is None:
        return None
    match = re.match(r"\s*(\d+)", str(value))
    if not match:
        return None
    number = int(match.group(1))
    return number if 1 <= number <= 5 else None


R = TypeVar("R", bound=Record)

_IMMUTABLE = (type(None), str, int, float, bool, bytes, tuple, frozenset, Enum, date)


def built(model: type[R], /, **values: Any) -> R:
    """A ``model`` of ``values`` made without validating them: for a mapping whose every value
    is already what validation would make of it (each of its field's type, an enumeration's
    value as plain text, a datetime aware), where validation would cost as much as the rest of
    the mapping.

    It is made as ``model_construct`` makes it, without its per-field work: the fields not
    given take their defaults (a factory's made anew), ``model_post_init`` runs (a device's
    serial key), and a value is never checked, so a mapping that uses it must raise on any
    value it cannot vouch for (a bad date, a number out of range), which quarantines the
    record; :func:`unlike_validated` is the proof its tests hold the result to. A field unknown
    or a required one missing is a TypeError.
    """
    plan = _PLANS.get(model)
    if plan is None:
        plan = _PLANS[model] = _plan(model)
    defaults, factories, needed, post_init = plan
    if not (needed <= values.keys() <= defaults.keys()):
        raise TypeError(
            f"{model.__name__}: fields {sorted(values.keys() - defaults.keys())} unknown, "
            f"{sorted(needed - values.keys())} missing"
        )
    state = defaults.copy()  # the model's order, which updating a key keeps
    state.update(values)
    for name, factory in factories.items():
        if name not in values:
            state[name] = factory()
    record = _new(model)
    _set(record, "__dict__", state)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    if post_init:
        record.model_post_init(None)
    return record


def _plan(
    model: type[Record],
) -> tuple[dict[str, Any], dict[str, Callable[[], Any]], frozenset[str], bool]:
    """What :func:`built` needs of a model, worked out once: each field's default (in the
    model's order), the factories of those made anew, the required fields, whether it has a
    ``model_post_init``."""
    if model.__private_attributes__ or model.model_config.get("extra") != "forbid":
        raise TypeError(f"{model.__name__}: built() makes models without private or extra fields")
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    needed = set()
    for name, info in model.model_fields.items():
        defaults[name] = info.default
        if info.default_factory is not None:
            factories[name] = info.default_factory  # type: ignore[assignment]
        elif info.default is PydanticUndefined:
            needed.add(name)
        elif not isinstance(info.default, _IMMUTABLE):
            # Validation hands each model a copy of a mutable default; so does this.
            factories[name] = functools.partial(copy.deepcopy, info.default)
    post_init = model.__pydantic_post_init__ is not None
    return defaults, factories, frozenset(needed), post_init


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, a decoded JSON object (a dict) answered by its type
    first: the ABC's check costs ten times as much, on every field of every record."""
    return type(value) is dict or isinstance(value, Mapping)


def as_text(value: Any) -> str | None:
    """A text field's value for :func:`built`: text or None as it came; anything else (a
    number, an object, which validation would refuse) raises ValueError, quarantining the
    record."""
    if value is None or type(value) is str:
        return value
    raise ValueError(f"not text: {value!r}")


_PLANS: dict[type, tuple[dict[str, Any], dict[str, Callable[[], Any]], frozenset[str], bool]] = {}
_new = object.__new__
_set = object.__setattr__


def unlike_validated(record: Record) -> list[str]:
    """How ``record`` differs from the model validation makes of its fields: ``[]`` for one
    :func:`built` made as validation would have. Each field must be equal and of the same type
    (an enumeration's value plain text, as ``use_enum_values`` keeps it; a datetime aware); a
    value validation refuses is named with its error. For tests: it validates the record."""
    model = type(record)
    given = {name: record.__dict__[name] for name in record.model_fields_set}
    try:
        validated = model.model_validate(given)
    except ValidationError as exc:
        return [f"{model.__name__}: {exc}"]
    out = []
    if list(record.__dict__) != list(validated.__dict__):
        out.append(f"{model.__name__}: fields {list(record.__dict__)}, validated {list(validated.__dict__)}")  # fmt: skip
    for name, value in validated.__dict__.items():
        mine: Any = record.__dict__.get(name)
        if type(mine) is not type(value) or mine != value:
            out.append(f"{model.__name__}.{name}: {mine!r}, validated {value!r}")
        elif isinstance(value, datetime) and mine.utcoffset() != value.utcoffset():
            out.append(f"{model.__name__}.{name}: {mine!r}, validated {value!r}")
    if record.model_fields_set != validated.model_fields_set:
        out.append(f"{model.__name__}: fields set {sorted(record.model_fields_set)}, validated {sorted(validated.model_fields_set)}")  # fmt: skip
    return out
