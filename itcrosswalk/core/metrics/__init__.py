"""Standard metrics: defined once, computed the same way over every platform's records.

A metric is computed in SQL over the store wherever the arithmetic allows: its records in
scope are sorted by one ``CASE`` into counted and excluded-with-a-reason, and one grouped
query per breakdown dimension sums what the metric needs. Metrics whose arithmetic SQL cannot
carry portably (the SLA clock on a business calendar, version comparison) fetch only numbers
and finish in Python. Every metric can also explain itself record by record, with the same
scope and the same reasons, so a disputed number can be settled.

The standard pack lives in :mod:`.standard`; plugins add theirs through ``register_metrics``.
"""

from __future__ import annotations

import contextvars
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from ..config import Config, MetricsConfig
from ..derive import DERIVED_KEY, PERSON_FIELDS
from ..errors import ConfigError
from ..store import ENTITY_TABLES, Store, threads_apart
from .shared import Row, SharedScans

if TYPE_CHECKING:
    from ..contract import Registry
    from .shared import Census

DIMENSIONS = ("source", "platform", "department", "priority", "assignment_group", "kind", "month")

# dimension -> column, per entity; a dimension an entity lacks is absent here.
_DIMENSION_COLUMNS: dict[str, dict[str, str]] = {
    "ticket": {
        "source": "source",
        "platform": "platform",
        "department": "department",
        "priority": "priority",
        "assignment_group": "assignment_group",
        "kind": "kind",
    },
    "sla_record": {"source": "source", "platform": "platform", "kind": "sla_name"},
    "work_item": {
        "source": "source",
        "platform": "platform",
        "department": "department",
        "priority": "priority",
        "kind": "kind",
    },
    "demand": {
        "source": "source",
        "platform": "platform",
        "department": "department",
        "priority": "priority",
    },
    "device": {
        "source": "source",
        "platform": "platform",
        "department": "department",
        "kind": "os",
    },
}


KIND_STAND_INS: dict[str, dict[str, tuple[str, ...]]] = {"project": {"jira_align": ("epic",)}}
"""Kinds a platform keeps under another name, per kind and platform. Jira Align has no
projects: its epics are the funded, scheduled, budgeted work a PMO tracks as projects (the
level its portfolio room and the status report plan), so a portfolio metric about projects
counts a Jira Align source's epics. A Jira Software epic is a backlog item, not a project."""


def _is_of_kinds(kinds: Sequence[str], kind: Any, platform: Any) -> bool:
    """:func:`kind_condition` for one kind and platform, in Python (for a census's groups)."""
    if kind in kinds:
        return True
    return any(
        platform == name and kind in stand_ins
        for wanted in kinds
        for name, stand_ins in KIND_STAND_INS.get(wanted, {}).items()
    )


def kind_condition(t: sa.Table, kinds: Sequence[str]) -> Any:
    """Records of ``kinds``, or of a platform's stand-in for one (see :data:`KIND_STAND_INS`)."""
    conditions: list[Any] = [t.c.kind.in_(list(kinds))]
    for kind in kinds:
        for platform, stand_ins in KIND_STAND_INS.get(kind, {}).items():
            conditions.append(sa.and_(t.c.platform == platform, t.c.kind.in_(stand_ins)))
    return sa.or_(*conditions)


@dataclass
class MetricContext:
    """What one computation runs against: the store, the policy, the filters, the moment."""

    store: Store
    policy: MetricsConfig
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    shared: SharedScans | None = field(default=None, repr=False, compare=False)
    """What the metrics of one pack share (censuses, one pass per entity); None computes each
    metric alone, with its own queries."""

    @property
    def as_of(self) -> datetime:
        """The moment "open now" and "stale" are judged at: ``until`` if given, else now."""
        return min(self.until, self.now) if self.until else self.now

    @property
    def dialect(self) -> str:
        return self.store.dialect


@dataclass
class MetricResult:
    """One metric's answer. ``as_json`` gives the documented shape."""

    id: str
    title: str
    unit: str
    value: float | None
    n: int
    breakdown: dict[str, dict[str, float | None]] = field(default_factory=dict)
    unsupported: str | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "value": None if self.value is None else round(self.value, 4),
            "n": self.n,
            "breakdown": {
                dim: {k: None if v is None else round(v, 4) for k, v in keys.items()}
                for dim, keys in self.breakdown.items()
            },
            "unsupported": self.unsupported,
            "excluded": self.excluded,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DepartmentOrigin:
    """A record's department and where it came from, so a department breakdown can be checked.

    ``origin`` is ``platform`` (the platform's own field), how it was derived when the platform
    left it empty (``requester``, ``primary_user``: see :mod:`..derive`), or None when the
    record has no department; ``person`` is the requester or primary user it was derived from,
    as the record names them.
    """

    department: str | None
    origin: str | None
    person: str | None = None

    @classmethod
    def of(cls, department: Any, derived: Any, person: Any) -> DepartmentOrigin:
        if department is None or department == "":
            return cls(None, None)
        if derived is None:
            return cls(str(department), "platform")
        return cls(str(department), str(derived), None if person is None else str(person))

    @property
    def text(self) -> str:
        """One line for a table: ``platform``, ``requester Ana Moore``, or empty."""
        if self.origin is None:
            return ""
        named = self.origin.replace("_", " ")
        return f"{named} {self.person}" if self.person else named


@dataclass
class Explanation:
    """One record's part in a metric: counted (with its value) or excluded (with why)."""

    source: str
    source_id: str
    label: str | None
    counted: bool
    reason: str | None
    value: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    """Every number the verdict rests on (start, end used and why, elapsed, hold, target)."""
    department: DepartmentOrigin | None = None
    """The record's department and its origin; None for an entity without departments."""


# -- dialect helpers --------------------------------------------------------------------------


class in_table_order(sa.sql.expression.FunctionElement[bool]):
    """``WHERE`` conditions of a query that reads most of a table, kept from choosing an index.

    A store is never analyzed, so SQLite's planner takes an equality on an indexed column (a
    ticket's kind) for a selective one, and would read most of a million tickets through the
    index, one table lookup each, instead of in one walk. ``+(...)`` is SQLite's way to say "no
    index for this term"; PostgreSQL has statistics and reads the condition as it is."""

    type = sa.Boolean()
    name = "in_table_order"
    inherit_cache = True


@compiles(in_table_order)
def _in_table_order(element: Any, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


@compiles(in_table_order, "sqlite")
def _in_table_order_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"+({compiler.process(element.clauses, **kw)})"


def whole_table(conditions: Sequence[Any]) -> list[Any]:
    """``conditions`` for a pass that reads most of its table (see :class:`in_table_order`)."""
    return [in_table_order(sa.and_(*conditions))] if conditions else []


def epoch(column: Any, dialect: str) -> Any:
    """Whole seconds since 1970 of a stored UTC timestamp, as an integer, on SQLite and
    PostgreSQL alike.

    Integers, because every comparison with a target must come out the same on both stores:
    SQLite's ``julianday`` arithmetic carries errors near 1.5e-5 s, enough to turn "resolved
    exactly at the target" into a miss. Fractions of a second are dropped on both stores
    (no platform's target is finer than a second).
    """
    if dialect == "sqlite":
        # The whole seconds of the stored text (``YYYY-MM-DD HH:MM:SS[.ffffff]``, UTC):
        # SQLite's date functions round a fraction to the millisecond, so .9995 s and above
        # would become the next second, where PostgreSQL's floor keeps this one.
        whole = sa.func.substr(column, 1, 19)
        if _UNIXEPOCH:
            # The same arithmetic as strftime('%s') in SQLite's source, without making text of
            # it and reading it back: half the cost, over a million tickets.
            return sa.func.unixepoch(whole, type_=sa.BigInteger)
        return sa.cast(sa.func.strftime("%s", whole), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38, 0)
"""Whether the SQLite the store runs on has ``unixepoch()`` (3.38, 2022)."""


def epoch_of(moment: datetime) -> int:
    """The Python twin of :func:`epoch`: whole seconds since 1970 of an aware moment."""
    return int(moment.timestamp() // 1)


def month(column: Any, ctx: MetricContext) -> Any:
    """``YYYY-MM`` of a stored UTC timestamp, in the City's calendar zone
    (``[metrics.calendar] timezone``): an incident opened at 23:30 on 31 March in Phoenix is a
    March incident, though it is April in UTC.

    SQLite knows no time zones, so the month is a ``CASE`` over the UTC instants at which the
    zone's months begin, computed here with the zone database for the span the column holds:
    the same expression, and the same answer, on both stores.
    """
    if ctx.shared is not None:
        return ctx.shared.month(column, lambda: _month(column, ctx))
    return _month(column, ctx)


def _month(column: Any, ctx: MetricContext) -> Any:
    zone = ZoneInfo(ctx.policy.calendar.timezone)
    with ctx.store.engine.connect() as conn:
        low, high = conn.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    if low is None:
        return sa.case((column.is_not(None), sa.literal("(none)")), else_=sa.null())
    first, last = low.astimezone(zone), high.astimezone(zone)
    year, number = first.year, first.month
    branches: list[tuple[Any, Any]] = []
    while (year, number) <= (last.year, last.month):
        year_after, number_after = (year + 1, 1) if number == 12 else (year, number + 1)
        begins_after = datetime(year_after, number_after, 1, tzinfo=zone).astimezone(UTC)
        branches.append((column < begins_after, sa.literal(f"{year:04d}-{number:02d}")))
        year, number = year_after, number_after
    return sa.case((column.is_(None), sa.null()), *branches, else_=sa.null())


def city_moment(value: datetime | None, policy: MetricsConfig) -> datetime | None:
    """A ``--since``/``--until`` moment: one without a zone (``2026-03-01``) is read in the
    City's calendar zone, so a period and its months begin at the same local midnight."""
    if value is None:
        return None
    if value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(policy.calendar.timezone)).astimezone(UTC)


def end_of_local_day(moment: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the calendar day ``moment`` falls on in ``zone``: "no later than
    the end of the planned finish day" means before this."""
    day = moment.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def key_text(value: Any) -> str:
    """A breakdown key: values as text, missing ones as ``(none)``."""
    return "(none)" if value is None or value == "" else str(value)


# -- the metric contract ------------------------------------------------------------------------


class Metric:
    """A metric definition. Subclasses implement ``compute`` and ``explain``.

    Attributes:
        id: dotted id (``itsm.mttr_hours``).
        title: a short name for tables and reports.
        domain: ``service``, ``portfolio`` or ``endpoint``.
        unit: ``count``, ``%``, ``hours``, ``days``, ``ratio``, ``currency``.
        definition: the precise definition in words (``crosswalk metrics show ID``).
        entity: the common-model entity it reads.
        fields: the model fields it needs.
        date_field: the field ``--since``/``--until`` and the ``month`` dimension apply to.
    """

    id: str = ""
    title: str = ""
    domain: str = ""
    unit: str = ""
    definition: str = ""
    entity: str = ""
    fields: tuple[str, ...] = ()
    date_field: str | None = None

    def dimensions(self) -> list[str]:
        known = list(_DIMENSION_COLUMNS.get(self.entity, {}))
        return known + (["month"] if self.date_field else [])

    def compute(self, ctx: MetricContext, by: Sequence[str] = ()) -> MetricResult:
        raise NotImplementedError

    def explain(self, ctx: MetricContext) -> Iterator[Explanation]:
        raise NotImplementedError

    def department_columns(self) -> list[Any]:
        """What ``explain`` reads for :class:`DepartmentOrigin`: the department, how it was
        derived (``extra``), and the person it was derived from; none for an entity without
        departments. The key is read by SQLAlchemy's portable JSON index, so both stores
        answer alike."""
        t = self.table
        if "department" not in t.c:
            return []
        person = PERSON_FIELDS.get(self.entity)
        return [
            t.c.department,
            t.c.extra[DERIVED_KEY].as_string(),
            t.c[person[0]] if person else sa.null(),
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "domain": self.domain,
            "unit": self.unit,
            "entity": self.entity,
            "fields": list(self.fields),
            "dimensions": self.dimensions(),
            "definition": self.definition,
        }

    # shared pieces ---------------------------------------------------------------------------

    @property
    def table(self) -> sa.Table:
        return ENTITY_TABLES[self.entity]

    def base_where(self, ctx: MetricContext) -> list[Any]:
        """Live records of the entity, of the source asked for, within the date window."""
        t = self.table
        where: list[Any] = [t.c.deleted.is_(False)]
        if ctx.source:
            where.append(t.c.source == ctx.source)
        if self.date_field:
            column = t.c[self.date_field]
            if ctx.since:
                where.append(column >= ctx.since)
            if ctx.until:
                where.append(column < ctx.until)
        return where

    def dimension_expr(self, dimension: str, ctx: MetricContext) -> Any:
        if dimension == "month":
            if not self.date_field:
                return None
            return month(self.table.c[self.date_field], ctx)
        column = _DIMENSION_COLUMNS.get(self.entity, {}).get(dimension)
        return None if column is None else self.table.c[column]

    unknown_is_missing: tuple[str, ...] = ()
    """Enumerated fields where ``unknown`` means the platform did not say."""
    empty_reason: str | None = None
    """Why the data cannot support the metric when nothing at all is in scope (no managed
    devices at all means no management platform, not a zero)."""

    def presence(self) -> list[Any]:
        """Per needed field, a SQL sum of the records in scope that carry it."""
        t = self.table
        sums = []
        for name in self.fields:
            column = t.c[name]
            present: Any = column.is_not(None)
            if name in self.unknown_is_missing:
                present = sa.and_(present, column != "unknown")
            sums.append(sa.func.sum(sa.case((present, 1), else_=0)).label(f"has_{name}"))
        return sums

    def judge_support(self, total: int, present: dict[str, int]) -> str | None:
        """Why the data cannot support this metric, from the records in scope and how many of
        them carry each needed field; None when it can."""
        if not total:
            # Nothing in scope is usually an answer (n = 0); for some metrics it means the
            # platform that would hold the records is not synced at all.
            return self.empty_reason
        missing = [name for name in self.fields if not present.get(name)]
        if not missing:
            return None
        return (
            f"none of the {total} {self.entity.replace('_', ' ')} records in scope carries "
            f"{', '.join(missing)}: the platform does not provide it, or the mapping does not read it"
        )

    scope_fields: tuple[str, ...] = ()
    """Fields the scope itself reads (a state): when no record carries them, the records in
    scope cannot be told apart from the rest, and an empty scope is no answer."""
    absent_reason: str | None = None
    """Why nothing can be said when no synced source holds the entity at all (default: says so)."""
    kinds: tuple[str, ...] = ()
    """The kinds of the entity the metric is about (projects among work items, incidents among
    tickets): a source holding the entity but none of these kinds has nothing to judge."""

    def kind_condition(self, t: sa.Table) -> Any:
        """The records of the metric's kinds, a platform's stand-ins included."""
        return kind_condition(t, self.kinds)

    def coverage_reason(self, ctx: MetricContext) -> str | None:
        """Why the metric has nothing to judge before its scope is even drawn: no record of the
        entity at all (a platform without demands has no demand backlog, not a backlog of 0),
        or none that carries what the scope reads. None when it can be computed."""
        census = ctx.shared.census(self) if ctx.shared is not None else None
        if census is not None and type(self).kind_condition is Metric.kind_condition:
            return self._coverage_from(ctx, census)
        t = self.table
        where: list[Any] = [t.c.deleted.is_(False)]
        if ctx.source:
            where.append(t.c.source == ctx.source)
        sums = []
        for name in self.scope_fields:
            present: Any = t.c[name].is_not(None)
            if name in self.unknown_is_missing or name in ("state", "stage"):
                present = sa.and_(present, t.c[name] != "unknown")
            sums.append(sa.func.sum(sa.case((present, 1), else_=0)).label(f"has_{name}"))
        noun = self.entity.replace("_", " ")
        with ctx.store.engine.connect() as conn:
            if self.kinds:
                kinds = conn.execute(
                    sa.select(t.c.kind, sa.func.count()).where(*where).group_by(t.c.kind)
                ).all()
                wanted = self.kind_condition(t)
                if (
                    kinds
                    and not conn.execute(sa.select(sa.func.count()).where(*where, wanted)).scalar()
                ):
                    return self._no_kind_reason(ctx, noun, kinds)
                where.append(wanted)
            row = conn.execute(sa.select(sa.func.count().label("total"), *sums).where(*where)).one()
        if not row.total:
            return self._nothing_reason(ctx, noun)
        missing = [n for n in self.scope_fields if not row._mapping[f"has_{n}"]]
        if missing:
            return (
                f"none of the {row.total} {noun} records carries a known {', '.join(missing)}, "
                f"which this metric's scope is drawn by: the platform does not provide it, or "
                f"the mapping does not read it"
            )
        return None

    def _nothing_reason(self, ctx: MetricContext, noun: str) -> str:
        """Why a metric over no records at all is not a count of 0."""
        if self.absent_reason:
            return self.absent_reason
        held = (
            f"source {ctx.source} holds no {noun} records"
            if ctx.source
            else f"no synced source holds {noun} records"
        )
        return f"{held}: there is nothing to count, which is not a count of 0"

    def _coverage_from(self, ctx: MetricContext, census: Census) -> str | None:
        """:meth:`coverage_reason` read from the entity's census instead of its own queries:
        the same records, the same kinds (stand-ins included), the same fields."""
        noun = self.entity.replace("_", " ")
        groups = census.groups
        if self.kinds:
            kinds: dict[Any, int] = {}
            for kind, _platform, n, *_rest in groups:
                kinds[kind] = kinds.get(kind, 0) + n
            wanted = [g for g in groups if _is_of_kinds(self.kinds, g[0], g[1])]
            if kinds and not sum(g[2] for g in wanted):
                return self._no_kind_reason(ctx, noun, list(kinds.items()))
            groups = wanted
        total = sum(g[2] for g in groups)
        if not total:
            return self._nothing_reason(ctx, noun)
        from .shared import known_only

        missing = [
            name
            for name in self.scope_fields
            if not sum(g[3][(name, known_only(self, name))] for g in groups)
        ]
        if missing:
            return (
                f"none of the {total} {noun} records carries a known {', '.join(missing)}, "
                f"which this metric's scope is drawn by: the platform does not provide it, or "
                f"the mapping does not read it"
            )
        return None

    def _no_kind_reason(self, ctx: MetricContext, noun: str, held: Sequence[Any]) -> str:
        # Epics and programs are not projects: counting them as none (0) or judging nothing
        # (blank) would hide that the source simply keeps no records of the metric's kind.
        wanted = " or ".join(self.kinds)
        found = ", ".join(
            f"{key_text(kind)} {n}" for kind, n in sorted(held, key=lambda r: key_text(r[0]))
        )
        who = f"source {ctx.source} holds no" if ctx.source else "no synced source holds"
        return f"{who} {wanted} {noun}s ({found}): there is nothing to judge, which is not a 0"

    def unsupported_reason(self, ctx: MetricContext, scope: list[Any]) -> str | None:
        """:meth:`judge_support` with its own query (for metrics that do not run one)."""
        with ctx.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(sa.func.count().label("total"), *self.presence()).where(*scope)
            ).one()
        present = {name: int(row._mapping[f"has_{name}"] or 0) for name in self.fields}
        return self.judge_support(int(row.total or 0), present)


@dataclass
class _Sums:
    """The sums of several grouped rows, shaped like one row (``n``, ``a``, ``b``)."""

    n: int
    a: float | None
    b: float | None

    @classmethod
    def of(cls, rows: list[Any]) -> _Sums:
        def total(name: str) -> float | None:
            values = [getattr(r, name, None) for r in rows]
            present = [float(v) for v in values if v is not None]
            return sum(present) if present else None

        return cls(sum(int(r.n or 0) for r in rows), total("a"), total("b"))


@dataclass
class Measure:
    """What a ``SqlMetric`` sums over its counted records.

    ``kind`` is ``count`` (records), ``share`` (records meeting ``condition``, in %), ``mean``
    (of ``expr``), ``sum`` (of ``expr``) or ``ratio`` (sum of ``numerator`` over sum of
    ``denominator``); ``scale`` multiplies the result (3600 to hours, 100 to %). ``row_value``
    is what ``explain`` shows per record.
    """

    kind: str
    condition: Callable[[sa.Table, MetricContext], Any] | None = None
    expr: Callable[[sa.Table, MetricContext], Any] | None = None
    numerator: Callable[[sa.Table, MetricContext], Any] | None = None
    denominator: Callable[[sa.Table, MetricContext], Any] | None = None
    scale: float = 1.0


class SqlMetric(Metric):
    """A metric whose scope, exclusions and arithmetic are SQL expressions.

    ``scope`` narrows the entity's live records to the ones the metric is about; each of
    ``exclusions`` (checked in order) takes records out of the count with its reason.
    """

    measure: Measure = Measure("count")

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return []

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return []

    def _reason(self, ctx: MetricContext) -> Any:
        rules = self.exclusions(self.table, ctx)
        if not rules:
            return sa.null()
        return sa.case(
            *[(condition, sa.literal(reason)) for reason, condition in rules], else_=None
        )

    def _sums(self, ctx: MetricContext) -> list[Any]:
        t, m = self.table, self.measure
        one = sa.literal(1)
        out: list[Any] = [sa.func.count().label("n")]
        if m.kind == "share":
            assert m.condition is not None
            out.append(sa.func.sum(sa.case((m.condition(t, ctx), one), else_=0)).label("a"))
        elif m.kind in ("mean", "sum"):
            assert m.expr is not None
            out.append(sa.func.sum(m.expr(t, ctx)).label("a"))
        elif m.kind == "ratio":
            assert m.numerator is not None and m.denominator is not None
            out.append(sa.func.sum(m.numerator(t, ctx)).label("a"))
            out.append(sa.func.sum(m.denominator(t, ctx)).label("b"))
        return out

    def _value(self, row: Any) -> float | None:
        m = self.measure
        n = row.n or 0
        if m.kind == "count":
            return float(n)
        if not n:
            return None
        if m.kind == "share":
            return 100.0 * float(row.a or 0) / n
        if m.kind == "mean":
            return None if row.a is None else float(row.a) / n * m.scale
        if m.kind == "sum":
            return None if row.a is None else float(row.a) * m.scale
        if m.kind == "ratio":
            return None if not row.b else float(row.a or 0) / float(row.b) * m.scale
        raise ValueError(f"unknown measure kind {m.kind!r}")

    def compute(self, ctx: MetricContext, by: Sequence[str] = ()) -> MetricResult:
        t = self.table
        scope = self.base_where(ctx) + self.scope(t, ctx)
        result = MetricResult(self.id, self.title, self.unit, None, 0)
        shared = ctx.shared
        result.unsupported = (
            shared.coverage(self) if shared is not None else self.coverage_reason(ctx)
        )
        if result.unsupported:
            return result
        scan = shared.scan(self) if shared is not None else None
        reason = self._reason(ctx).label("reason")
        sums = self._sums(ctx)
        if scan is not None:
            dims = scan.dims(self)
            rows, folded = scan.main(self)
            first_in_rows = bool(dims) and dims[0] == folded
        else:
            dims = [d for d in by if self.dimension_expr(d, ctx) is not None]
            rows = self._rows(ctx, scope, reason, sums, dims)
            first_in_rows = bool(dims)
        # The rows hold the counted and excluded records, whether the needed fields are there,
        # and the first breakdown (every sum is additive, so the totals are the groups' sums).
        total = sum(row.n for row in rows)
        present = {name: sum(row.has.get(name, 0) for row in rows) for name in self.fields}
        result.unsupported = self.judge_support(total, present)
        if result.unsupported:
            return result
        by_reason: dict[str | None, list[Any]] = {}
        for row in rows:
            by_reason.setdefault(row.reason, []).append(row)
        for why, group in by_reason.items():
            if why is None:
                result.n = sum(r.n for r in group)
                result.value = self._value(_Sums.of(group))
            else:
                result.excluded[why] = sum(r.n for r in group)
        if result.n == 0 and self.measure.kind == "count":
            result.value = 0.0
        if first_in_rows:
            result.breakdown[dims[0]] = {
                key_text(r.k): self._value(r) for r in by_reason.get(None, [])
            }
        for dimension in dims[1:] if first_in_rows else dims:
            if scan is not None:
                grouped: list[Any] = scan.grouped(self, dimension)
            else:
                key = self.dimension_expr(dimension, ctx).label("k")
                with ctx.store.engine.connect() as conn:
                    grouped = list(
                        conn.execute(
                            sa.select(key, *sums)
                            .where(*scope, reason.element.is_(None))
                            .group_by(key)
                        ).all()
                    )
            result.breakdown[dimension] = {key_text(r.k): self._value(r) for r in grouped}
        self.finish(ctx, result, scope, by)
        return result

    def _rows(
        self, ctx: MetricContext, scope: list[Any], reason: Any, sums: list[Any], dims: list[str]
    ) -> list[Row]:
        """This metric's own grouped query: its records by reason and first breakdown."""
        first = self.dimension_expr(dims[0], ctx).label("k") if dims else None
        keys = [first] if first is not None else []
        query = sa.select(reason, *keys, *sums, *self.presence()).where(*scope)
        groups = ([reason] if self.exclusions(self.table, ctx) else []) + keys
        if groups:
            query = query.group_by(*groups)  # PostgreSQL refuses GROUP BY NULL
        with ctx.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Row(
                row.reason,
                row.k if first is not None else None,
                int(row.n or 0),
                getattr(row, "a", None),
                getattr(row, "b", None),
                {name: int(row._mapping[f"has_{name}"] or 0) for name in self.fields},
            )
            for row in rows
        ]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        """Add details beyond the sums (a median, bands); nothing by default."""

    def tallied(self, t: sa.Table, ctx: MetricContext) -> tuple[Any, int] | None:
        """An integer expression (0 .. n - 1) over the records in scope whose counts the detail
        gives (age bands), and n; None when there is none. A pack's shared pass counts it too."""
        return None

    def tally(self, ctx: MetricContext, scope: list[Any]) -> list[int]:
        """How many records in scope have each value of :meth:`tallied`."""
        tallied = self.tallied(self.table, ctx)
        if tallied is None:
            return []
        scan = ctx.shared.scan(self) if ctx.shared is not None else None
        if scan is not None:
            return scan.tally(self)
        expr, n = tallied
        # One pass counting value by value, not grouped (a sort of every record in scope).
        values = sa.select(expr.label("v")).where(*whole_table(scope)).offset(0).subquery()
        counts = [sa.func.count(sa.case((values.c.v == i, 1), else_=sa.null())) for i in range(n)]
        with ctx.store.engine.connect() as conn:
            row = conn.execute(sa.select(*counts)).one()
        return [int(c or 0) for c in row]

    def collected(self, t: sa.Table, ctx: MetricContext) -> tuple[Any, Any] | None:
        """Two integer expressions (either may be NULL), a key and a value, whose pairs over the
        counted records the detail needs one by one (a median by priority); None when there are
        none. A pack's shared pass gathers them, so the detail reads no table again."""
        return None

    def collect(self, ctx: MetricContext, scope: list[Any]) -> list[tuple[Any, Any]]:
        """The :meth:`collected` pairs of the counted records in scope, in no particular order."""
        collected = self.collected(self.table, ctx)
        if collected is None:
            return []
        scan = ctx.shared.scan(self) if ctx.shared is not None else None
        if scan is not None:
            return scan.collected(self)
        t = self.table
        counted = sa.and_(*[sa.not_(c) for _r, c in self.exclusions(t, ctx)])
        query = sa.select(*collected).where(*whole_table([*scope, counted]))
        with ctx.store.engine.connect() as conn:
            result = conn.execute(query)
            try:
                # Plain integers: the driver's tuples, without a result row each.
                return list(result.cursor.fetchall())
            finally:
                result.close()

    def row_value(self, t: sa.Table, ctx: MetricContext) -> Any:
        m = self.measure
        if m.kind == "share":
            assert m.condition is not None
            return sa.case((m.condition(t, ctx), 100.0), else_=0.0)
        if m.kind in ("mean", "sum"):
            assert m.expr is not None
            return m.expr(t, ctx) * m.scale
        if m.kind == "ratio":
            assert m.numerator is not None
            return m.numerator(t, ctx)
        return sa.literal(1.0)

    def label_column(self) -> Any:
        return record_label(self.table)

    def explain_columns(self, t: sa.Table, ctx: MetricContext) -> dict[str, Any]:
        """What ``--explain`` shows per record beside the verdict: the fields the metric reads
        and the terms of its measure; metrics add the rest (the end time used and why)."""
        columns: dict[str, Any] = {}
        for name in (*self.fields, *((self.date_field,) if self.date_field else ())):
            columns[name] = t.c[name]
        m = self.measure
        if m.kind == "ratio":
            assert m.numerator is not None and m.denominator is not None
            columns["numerator"] = m.numerator(t, ctx)
            columns["denominator"] = m.denominator(t, ctx)
        return columns

    def explain(self, ctx: MetricContext) -> Iterator[Explanation]:
        t = self.table
        scope = self.base_where(ctx) + self.scope(t, ctx)
        reason = self._reason(ctx).label("reason")
        shown = self.explain_columns(t, ctx)
        origin = self.department_columns()
        query = (
            sa.select(
                t.c.source,
                t.c.source_id,
                self.label_column().label("label"),
                reason,
                self.row_value(t, ctx).label("value"),
                *[expr.label(f"x_{i}") for i, expr in enumerate(shown.values())],
                *[expr.label(f"d_{i}") for i, expr in enumerate(origin)],
            )
            .where(*scope)
            .order_by(t.c.source, t.c.source_id)
        )
        with ctx.store.engine.connect() as conn:
            for row in conn.execute(query):
                counted = row.reason is None
                detail = {name: plain(row._mapping[f"x_{i}"]) for i, name in enumerate(shown)}
                department = (
                    DepartmentOrigin.of(*[row._mapping[f"d_{i}"] for i in range(len(origin))])
                    if origin
                    else None
                )
                yield Explanation(
                    row.source,
                    row.source_id,
                    row.label,
                    counted,
                    row.reason,
                    float(row.value) if counted and row.value is not None else None,
                    detail,
                    department,
                )


def record_label(t: sa.Table) -> Any:
    """The record's number where the platform gives one, else its name (a Project Online
    project has no number), else whatever names it best, else its id."""
    names = [n for n in ("number", "name", "title", "serial", "ticket_id") if n in t.c]
    return sa.func.coalesce(*[t.c[n] for n in names], t.c.source_id)


def plain(value: Any) -> Any:
    """A value as ``--explain`` shows it: times as ISO text, decimals as floats."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


# -- the registry -------------------------------------------------------------------------------


def all_metrics(pm: Registry) -> dict[str, Metric]:
    """Every registered metric by id: the standard pack's, then plugins' (a plugin's may
    replace one)."""
    return {metric.id: metric for metric in pm.metrics()}


def compute_metrics(
    store: Store,
    config: Config,
    ids: Sequence[str] | None = None,
    *,
    domain: str | None = None,
    source: str | None = None,
    by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    pm: Registry,
) -> list[MetricResult]:
    """Compute metrics over the store: all of them, a domain's, or the ``ids`` given."""
    for dimension in by:
        if dimension not in DIMENSIONS:
            raise ConfigError(
                f"unknown dimension {dimension!r}; choose from {', '.join(DIMENSIONS)}"
            )
    registry = all_metrics(pm)
    if ids:
        unknown = [i for i in ids if i not in registry]
        if unknown:
            raise ConfigError(
                f"unknown metric {', '.join(unknown)}; `crosswalk metrics list` shows them all"
            )
        chosen = [registry[i] for i in ids]
    else:
        chosen = [m for m in registry.values() if domain is None or m.domain == domain]
    ctx = MetricContext(
        store=store,
        policy=config.metrics,
        source=source,
        since=since,
        until=until,
        now=now or datetime.now(UTC),
    )
    ctx.shared = SharedScans(ctx, chosen, by)
    threads = pack_threads(store, config.metrics.threads, len(chosen))
    if threads < 2:
        return [metric.compute(ctx, by) for metric in chosen]
    # The pack's two heaviest statements (the tickets' shared pass and the SLA clock) are
    # independent: in threads of their own, each on its own connection, they run side by side
    # in SQLite's C code (which lets go of the interpreter) or in PostgreSQL's backends, while
    # the Python of the others runs meanwhile. What the metrics share is built once
    # (shared.py), so the answers are the ones computed one by one.
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crosswalk-metrics") as pool:
        started = {
            i: pool.submit(contextvars.copy_context().run, chosen[i].compute, ctx, by)
            for i in ctx.shared.start_order()
        }
        try:
            return [started[i].result() for i in range(len(chosen))]
        except BaseException:
            # The first failure in the pack's order, as one by one; nothing more is started.
            for future in started.values():
                future.cancel()
            raise


PACK_THREADS = 4
"""At most this many metrics at once when ``[metrics] threads`` is unset."""


def pack_threads(store: Store, wanted: int | None, metrics: int) -> int:
    """How many threads compute a pack of ``metrics`` metrics: ``[metrics] threads`` or one per
    core (at most :data:`PACK_THREADS`), never more than the store's pool keeps connections
    for (a thread more would wait for one, or open and close one per query); 1 where threads
    cannot have connections of their own (:func:`~..store.threads_apart`)."""
    engine = store.engine
    if not threads_apart(engine):
        return 1
    if wanted is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
        wanted = min(PACK_THREADS, cores)
    kept = getattr(engine.pool, "size", None)
    if callable(kept):
        wanted = min(wanted, max(1, int(kept())))
    return max(1, min(wanted, metrics))
