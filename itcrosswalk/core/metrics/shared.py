"""Shared scans: the metrics of one pack that read the same entity read it together.

Computed one by one, every metric walks its entity's table at least twice (what the store holds,
then its own sums), and at a million tickets those walks are the whole cost of the pack.
``compute_metrics`` gives its context one :class:`SharedScans` instead: one census per entity
(its live records by kind and platform, and how many carry each field a scope reads) answers
every metric's coverage question, and one pass per entity and breakdown dimension sums every
:class:`~.SqlMetric` of that entity at once. Each metric still decides everything from the rows
its own queries would have returned (the same scope, reasons and sums, per group), so its answer
is the one it gives computed alone: tests/core/test_metrics_shared.py holds the two to one answer.

The metrics of a pack may be computed in several threads at once (see ``compute_metrics``): what
they share is built once whoever asks first, the others waiting for it (:class:`_Once`), and an
entity's pass is run under its own lock.

The pass reads the table once in a subquery that sorts every record, for every metric, into an
integer code (out of scope, counted, or excluded by its n-th rule), and sums over those codes; the
subquery is kept apart (``OFFSET 0``) so neither store re-evaluates a metric's rules per sum.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import iterate

from ..store import without_jit

if TYPE_CHECKING:
    from . import Metric, MetricContext, SqlMetric


def whole_table(conditions: Sequence[Any]) -> list[Any]:
    """The package's :func:`~.whole_table` (imported when called: the package imports this)."""
    from . import whole_table as unindexed

    return unindexed(conditions)


@dataclass
class Census:
    """An entity's live records (of the source asked for) by kind, platform and source, with how
    many of them carry each field: ``present[(name, known)]``, ``known`` meaning not ``unknown``."""

    groups: list[tuple[Any, Any, int, dict[tuple[str, bool], int], Any]]
    """(kind, platform, records, carried per field, source)."""
    fields: frozenset[tuple[str, bool]]

    def only(self, column: str) -> tuple[bool, Any]:
        """Whether every record holds one value of ``kind``, ``platform`` or ``source``, and it."""
        position = {"kind": 0, "platform": 1, "source": 4}[column]
        values = {g[position] for g in self.groups if g[2]}
        return (True, values.pop()) if len(values) == 1 else (False, None)


@dataclass
class Row:
    """One group of a metric's records, shaped as its own grouped query returns it."""

    reason: str | None
    k: Any
    n: int
    a: Any = None
    b: Any = None
    has: dict[str, int] = field(default_factory=dict)


def known_only(metric: Metric, name: str) -> bool:
    """Whether ``unknown`` means "not carried" for this field of this metric's scope."""
    return name in metric.unknown_is_missing or name in ("state", "stage")


def shareable(metric: Metric) -> bool:
    """A :class:`~.SqlMetric` that sums the way the base class does (a metric that computes or
    sums its own way is computed alone)."""
    from . import Metric as Base
    from . import SqlMetric as Sql

    kind: Any = type(metric)
    return (
        isinstance(metric, Sql)
        and kind.compute is Sql.compute
        and kind._sums is Sql._sums
        and kind._reason is Sql._reason
        and kind.presence is Base.presence
        and kind.base_where is Base.base_where
    )


class _Once:
    """Values built once, however many threads ask for one at the same time: the first builds
    it, the others wait and take what it built. A build that fails keeps nothing, so the next
    one asking builds again (as a metric computed alone would fail again)."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.RLock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.RLock()
        with lock:
            if key not in self._values:
                self._values[key] = build()
            return self._values[key]


class SharedScans:
    """What the metrics of one ``compute_metrics`` call share: censuses, coverage verdicts, the
    ``month`` expressions, and one pass per entity and dimension."""

    def __init__(self, ctx: MetricContext, metrics: Sequence[Metric], by: Sequence[str]) -> None:
        self.ctx = ctx
        self.metrics = list(metrics)
        self.by = list(by)
        self._once = _Once()

    # -- coverage ---------------------------------------------------------------------------

    def census(self, metric: Metric) -> Census | None:
        """The census of the metric's entity, or None when it cannot answer for this metric."""
        census = self._census_of(metric)
        if census is None:
            return None
        need = {(name, known_only(metric, name)) for name in metric.scope_fields}
        return census if need <= census.fields else None

    def _census_of(self, metric: Metric) -> Census | None:
        """The census of the metric's entity, taken once for the pack; None for a metric of
        kinds on a table that has none (a census groups by kind)."""
        if metric.kinds and "kind" not in metric.table.c:
            return None
        entity = metric.entity

        def take() -> Census:
            wanted = {
                (name, known_only(m, name))
                for m in self.metrics
                if m.entity == entity
                for name in m.scope_fields
            }
            return self._take_census(metric.table, sorted(wanted))

        return self._once.get(("census", entity), take)  # type: ignore[no-any-return]

    def _take_census(self, t: sa.Table, fields: list[tuple[str, bool]]) -> Census:
        where: list[Any] = [t.c.deleted.is_(False)]
        if self.ctx.source:
            where.append(t.c.source == self.ctx.source)
        keys = [t.c.kind if "kind" in t.c else sa.null(), t.c.platform, t.c.source]
        sums = []
        for name, known in fields:
            present: Any = t.c[name].is_not(None)
            if known:
                present = sa.and_(present, t.c[name] != "unknown")
            sums.append(sa.func.sum(sa.case((present, 1), else_=0)))
        query = sa.select(*keys, sa.func.count(), *sums).where(*where)
        query = query.group_by(*[key for key in keys if key is not keys[0] or "kind" in t.c])
        with self.ctx.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        groups = [
            (
                row[0],
                row[1],
                int(row[3]),
                {f: int(row[4 + i] or 0) for i, f in enumerate(fields)},
                row[2],
            )
            for row in rows
        ]
        return Census(groups, frozenset(fields))

    def coverage(self, metric: Metric) -> str | None:
        """``metric.coverage_reason``, asked once per computation."""
        return self._once.get(  # type: ignore[no-any-return]
            ("coverage", id(metric)), lambda: metric.coverage_reason(self.ctx)
        )

    # -- expressions --------------------------------------------------------------------------

    def month(self, column: Any, build: Any) -> Any:
        """The ``month`` expression of a column, built once (it reads the column's span)."""
        return self.built(("month", column.table.name, column.name), build)

    def built(self, key: Hashable, build: Any) -> Any:
        """A value several metrics read and none changes (a month expression, the capacity
        plan), built once for the pack."""
        return self._once.get(("built", key), build)

    def only_value(self, metric: Metric, expr: Any) -> tuple[bool, Any]:
        """Whether every live record of the metric's entity (of the source asked for) holds one
        value of the dimension ``expr``, and that value: then its breakdown is the total, and
        no pass needs to group (a sort of every record, on SQLite) to say so."""
        t = metric.table
        if not isinstance(expr, sa.Column) or expr.table is not t:
            return False, None
        if expr.name not in ("kind", "platform", "source") or expr.name not in t.c:
            return False, None
        census = self._census_of(metric)
        return census.only(expr.name) if census is not None else (False, None)

    def dimension(self, metric: Metric, dimension: str) -> Any:
        return self._once.get(
            ("dimension", id(metric), dimension),
            lambda: metric.dimension_expr(dimension, self.ctx),
        )

    def start_order(self) -> list[int]:
        """The pack's metrics (as positions in it) in the order threads should start them: the
        first metric of each entity's shared pass, which runs that pass; then the metrics
        computed alone; last the others of a pass, which only read its rows. Started in the
        pack's order, a second thread would take the first pass's next metric and wait for the
        pass instead of running a query of its own meanwhile."""
        leaders, alone, followers, seen = [], [], [], set()
        for i, m in enumerate(self.metrics):
            if not shareable(m):
                alone.append(i)
            elif m.entity in seen:
                followers.append(i)
            else:
                seen.add(m.entity)
                leaders.append(i)
        return leaders + alone + followers

    # -- the passes ---------------------------------------------------------------------------

    def scan(self, metric: SqlMetric) -> _EntityScan | None:
        """The shared pass of the metric's entity, or None when the metric is computed alone."""
        if not shareable(metric) or metric not in self.metrics:
            return None
        entity = metric.entity

        def members() -> _EntityScan:
            sharing = [
                m
                for m in self.metrics
                if m.entity == entity and shareable(m) and not self.coverage(m)
            ]
            return _EntityScan(self, sharing)  # type: ignore[arg-type]

        scan: _EntityScan = self._once.get(("scan", entity), members)
        return scan if metric in scan.members else None


def _expr_key(expr: Any, dialect: Any) -> tuple[Any, ...]:
    compiled = expr.compile(dialect=dialect)
    return (str(compiled), tuple(sorted(compiled.params.items(), key=lambda p: p[0])))


class _EntityScan:
    """The metrics of one entity, summed in one pass per grouping."""

    def __init__(self, shared: SharedScans, members: list[SqlMetric]) -> None:
        self.shared = shared
        self.ctx = shared.ctx
        self.members = members
        self.table = members[0].table
        self._main: dict[int, list[Row]] | None = None
        self._folded: str | None = None
        self._grouped: dict[tuple[int, str], list[Row]] = {}
        self._done: set[str] = set()
        self._tallies: dict[int, list[int]] = {}
        self._collected: dict[int, list[tuple[Any, Any]]] = {}
        # The passes run under it, and their rows are read under it: a metric of the entity
        # asking while another thread runs the pass waits for that pass, and runs none.
        self._lock = threading.RLock()

    def dims(self, metric: SqlMetric) -> list[str]:
        return [d for d in self.shared.by if self.shared.dimension(metric, d) is not None]

    def _key_for(self, dimension: str, members: list[SqlMetric]) -> tuple[Any, list[SqlMetric]]:
        """The dimension's expression and the members that have it, when they all share one."""
        having = [m for m in members if self.shared.dimension(m, dimension) is not None]
        if not having:
            return None, []
        dialect = self.ctx.store.engine.dialect
        exprs = {_expr_key(self.shared.dimension(m, dimension), dialect) for m in having}
        if len(exprs) > 1:
            return None, having
        return self.shared.dimension(having[0], dimension), having

    # The rows ---------------------------------------------------------------------------

    def main(self, metric: SqlMetric) -> tuple[list[Row], str | None]:
        """The metric's rows by reason (and by the folded dimension), and that dimension."""
        with self._lock:
            if self._main is None:
                self._run_main()
            assert self._main is not None
            return self._main[id(metric)], self._folded

    def tally(self, metric: SqlMetric) -> list[int]:
        """The counts of the metric's :meth:`~.SqlMetric.tallied` values over its scope."""
        with self._lock:
            if self._main is None:
                self._run_main()
            return self._tallies[id(metric)]

    def collected(self, metric: SqlMetric) -> list[tuple[Any, Any]]:
        """The (key, value) pairs of the metric's :meth:`~.SqlMetric.collected` over its counted
        records, in no particular order."""
        with self._lock:
            if self._main is None:
                self._run_main()
            return self._collected[id(metric)]

    def grouped(self, metric: SqlMetric, dimension: str) -> list[Row]:
        """The metric's counted rows by ``dimension``."""
        with self._lock:
            if dimension not in self._done:
                # Marked done as it starts; a pass that fails fails the whole pack, so no
                # answer is ever made of what it left.
                self._run_dimension(dimension)
            return self._grouped.get((id(metric), dimension), [])

    # Building the pass ------------------------------------------------------------------

    def _codes(self, members: list[SqlMetric]) -> tuple[list[Any], list[list[str | None]]]:
        """Per member, the code of a record (NULL out of scope, 0 counted, i excluded by the
        i-th rule) and the reason of each code."""
        t, ctx = self.table, self.ctx
        codes, reasons = [], []
        common = len(_common_where(t, ctx))
        for i, m in enumerate(members):
            rules = m.exclusions(t, ctx)
            code: Any = (
                sa.case(*[(cond, j + 1) for j, (_r, cond) in enumerate(rules)], else_=0)
                if rules
                else sa.literal(0)
            )
            conditions = m.base_where(ctx)[common:] + m.scope(t, ctx)
            if conditions:
                code = sa.case((sa.and_(*conditions), code), else_=sa.null())
            codes.append(code.label(f"code_{i}"))
            reasons.append([None, *[reason for reason, _c in rules]])
        return codes, reasons

    def _terms(self, m: SqlMetric) -> tuple[Any, Any]:
        """The measure's per-record terms ``a`` and ``b`` (None where it has none)."""
        t, ctx, measure = self.table, self.ctx, m.measure
        if measure.kind == "share":
            assert measure.condition is not None
            return sa.case((measure.condition(t, ctx), 1), else_=0), None
        if measure.kind in ("mean", "sum"):
            assert measure.expr is not None
            return measure.expr(t, ctx), None
        if measure.kind == "ratio":
            assert measure.numerator is not None and measure.denominator is not None
            return measure.numerator(t, ctx), measure.denominator(t, ctx)
        return None, None

    def _carried(self, m: SqlMetric) -> dict[str, int]:
        """Per needed field, 1 when a record in the metric's scope carries it, else 0.

        A metric only asks whether any record carries a field (none means the platform does not
        provide it), so each is one lookup that stops at the first such record, not a sum over
        every record in the pass."""
        t, ctx = self.table, self.ctx
        scope = m.base_where(ctx) + m.scope(t, ctx)
        carried = {}
        with ctx.store.engine.connect() as conn:
            for name in m.fields:
                query = sa.select(sa.literal(1)).where(*scope, self._present(m, name)).limit(1)
                carried[name] = 1 if conn.execute(query).first() else 0
        return carried

    def _present(self, m: SqlMetric, name: str) -> Any:
        column = self.table.c[name]
        present: Any = column.is_not(None)
        if name in m.unknown_is_missing:
            present = sa.and_(present, column != "unknown")
        return present

    def _pass(self, members: list[SqlMetric], key: Any, *, counted_only: bool) -> list[Any]:
        """One pass over the table: per member, the records by code (all codes, or the counted
        ones only) and its measure's sums over the counted ones; grouped by ``key`` if given."""
        t, ctx = self.table, self.ctx
        codes, reasons = self._codes(members)
        raw: dict[str, Any] = {}
        terms: list[Any] = [key] if key is not None else []
        for m in members:
            terms.extend(x for x in self._terms(m) if x is not None)
            if not counted_only:
                terms.extend(m.collected(t, ctx) or ())
        for term in terms:
            for element in iterate(term):
                if isinstance(element, sa.Column) and element.table is t:
                    raw[element.name] = element
        tallies = []
        for i, m in enumerate(members):
            tallied = m.tallied(t, ctx) if not counted_only else None
            if tallied is not None:
                scope = m.base_where(ctx)[len(_common_where(t, ctx)) :] + m.scope(t, ctx)
                value = sa.case((sa.and_(*scope), tallied[0])) if scope else tallied[0]
                tallies.append(value.label(f"tally_{i}"))
        inner = sa.select(
            *codes,
            *tallies,
            *([key.label("dim_key")] if key is not None else []),
            *raw.values(),
        ).where(*whole_table(_common_where(t, ctx)))
        sub = inner.offset(0).subquery("shared")
        adapt = ClauseAdapter(sub).traverse
        sums: list[Any] = []
        for i, m in enumerate(members):
            code = sub.c[f"code_{i}"]
            if counted_only and len(reasons[i]) > 1:
                sums.append(sa.func.count(sa.case((code == 0, 1), else_=sa.null())))
            else:
                # The records in scope (a code is never NULL there), then each rule's: the
                # counted ones are what is left, with one test fewer per record.
                sums.append(sa.func.count(code))
                for j in range(1, 1 if counted_only else len(reasons[i])):
                    sums.append(sa.func.count(sa.case((code == j, 1), else_=sa.null())))
            for n_term, term in enumerate(self._terms(m)):
                if term is not None and not (
                    n_term == 0 and not counted_only and self._a_gathered(m)
                ):
                    sums.append(sa.func.sum(sa.case((code == 0, adapt(term)))))
            tallied = m.tallied(t, ctx) if not counted_only else None
            if tallied is not None:
                value = sub.c[f"tally_{i}"]
                sums.extend(
                    sa.func.count(sa.case((value == v, 1), else_=sa.null()))
                    for v in range(tallied[1])
                )
            collected = m.collected(t, ctx) if not counted_only else None
            if collected is not None:
                sums.extend(self._gathered(adapt(term), code == 0) for term in collected)
        query = sa.select(*sums).select_from(sub)
        if key is not None:
            query = sa.select(*sums, sub.c.dim_key).select_from(sub).group_by(sub.c.dim_key)
        with ctx.store.engine.connect() as conn:
            without_jit(conn)
            return list(conn.execute(query).all())

    def _a_gathered(self, m: SqlMetric) -> bool:
        """Whether the metric's measure sums the values it gathers: then the main pass adds them
        up from the gathered values rather than convert every record's twice."""
        collected = m.collected(self.table, self.ctx)
        a_term = self._terms(m)[0]
        if collected is None or a_term is None:
            return False
        dialect = self.ctx.store.engine.dialect
        return _expr_key(a_term, dialect) == _expr_key(collected[1], dialect)

    def _gathered(self, value: Any, counted: Any) -> Any:
        """Every counted record's ``value`` (an integer, or NULL), in one aggregate: an array on
        PostgreSQL, text on SQLite (NULL as an empty item). Two of them over one pass list
        their records in the same order, so a key and a value pair up by position."""
        if self.ctx.dialect == "postgresql":
            return sa.func.array_agg(value).filter(counted)
        text = sa.func.coalesce(sa.cast(value, sa.Text), "")
        return sa.func.group_concat(text, ",").filter(counted)

    @staticmethod
    def _ungathered(gathered: Any) -> list[Any]:
        if gathered is None:
            return []
        if isinstance(gathered, list):
            return gathered
        items = str(gathered).split(",")
        if items[0] and items[-1] and ",," not in gathered:
            return list(map(int, items))  # no NULL among them
        return [int(item) if item else None for item in items]

    def _run_main(self) -> None:
        folded = self.shared.by[0] if self.shared.by else None
        key, only = None, (False, None)
        if folded is not None:
            key, _having = self._key_for(folded, self.members)
            if key is None:
                folded = None
            else:
                only = self.shared.only_value(self.members[0], key)
        _codes, reasons = self._codes(self.members)
        rows = self._pass(self.members, None if only[0] else key, counted_only=False)
        if only[0]:
            rows = [(*row, only[1]) for row in rows]
        main: dict[int, list[Row]] = {}
        position = 0
        for i, m in enumerate(self.members):
            a_term, b_term = self._terms(m)
            tallied = m.tallied(self.table, self.ctx)
            tally = tallied[1] if tallied is not None else 0
            collects = 2 if m.collected(self.table, self.ctx) is not None else 0
            a_gathered = self._a_gathered(m)
            width = len(reasons[i]) + (a_term is not None) + (b_term is not None) + tally
            width += collects - a_gathered
            self._tallies[id(m)] = [0] * tally
            self._collected[id(m)] = []
            out: list[Row] = []
            for row in rows:
                values = list(row[position : position + width])
                k = row[-1] if key is not None else None
                counts = [int(values.pop(0) or 0) for _reason in reasons[i]]
                counts[0] -= sum(counts[1:])
                a = values.pop(0) if a_term is not None and not a_gathered else None
                b = values.pop(0) if b_term is not None else None
                for v in range(tally):
                    self._tallies[id(m)][v] += int(values.pop(0) or 0)
                if collects:
                    keys, kept = (self._ungathered(values.pop(0)) for _ in range(2))
                    self._collected[id(m)].extend(zip(keys, kept, strict=True))
                    if a_gathered:
                        # SUM's answer: the integers added exactly, NULLs aside, NULL for none.
                        present = [value for value in kept if value is not None]
                        a = sum(present) if present else None
                by_reason: dict[str | None, int] = {}
                for reason, n in zip(reasons[i], counts, strict=True):
                    if n:
                        by_reason[reason] = by_reason.get(reason, 0) + n
                for reason, n in by_reason.items():
                    counted = reason is None
                    out.append(Row(reason, k, n, a if counted else None, b if counted else None))
            if out:
                out[0].has = self._carried(m)
            position += width
            main[id(m)] = out
        self._main, self._folded = main, folded
        if folded is not None:
            self._done.add(folded)
            for m in self.members:
                self._grouped[(id(m), folded)] = [r for r in main[id(m)] if r.reason is None]

    def _run_dimension(self, dimension: str) -> None:
        self._done.add(dimension)
        having = [m for m in self.members if self.shared.dimension(m, dimension) is not None]
        dialect = self.ctx.store.engine.dialect
        by_key: dict[tuple[Any, ...], list[SqlMetric]] = {}
        for m in having:
            key = _expr_key(self.shared.dimension(m, dimension), dialect)
            by_key.setdefault(key, []).append(m)
        for group in by_key.values():
            key = self.shared.dimension(group[0], dimension)
            single, value = self.shared.only_value(group[0], key)
            if single:
                # One value for every record: the breakdown is the counted total, read from the
                # main pass's rows.
                for m in group:
                    counted = [r for r in self.main(m)[0] if r.reason is None]
                    self._grouped[(id(m), dimension)] = (
                        [Row(None, value, sum(r.n for r in counted), *_summed(counted))]
                        if counted
                        else []
                    )
                continue
            rows = self._pass(group, key, counted_only=True)
            position = 0
            for m in group:
                a_term, b_term = self._terms(m)
                width = 1 + (a_term is not None) + (b_term is not None)
                out = []
                for row in rows:
                    values = list(row[position : position + width])
                    n = int(values.pop(0) or 0)
                    a = values.pop(0) if a_term is not None else None
                    b = values.pop(0) if b_term is not None else None
                    if n:
                        out.append(Row(None, row[-1], n, a, b))
                position += width
                self._grouped[(id(m), dimension)] = out


def _summed(rows: list[Row]) -> tuple[Any, Any]:
    """The ``a`` and ``b`` sums of several rows, as :class:`~._Sums` adds them."""
    from . import _Sums

    sums = _Sums.of(rows)
    return sums.a, sums.b


def _common_where(t: sa.Table, ctx: MetricContext) -> list[Any]:
    """What every metric of an entity reads: its live records, of the source asked for (the
    first terms of :meth:`~.Metric.base_where`)."""
    where: list[Any] = [t.c.deleted.is_(False)]
    if ctx.source:
        where.append(t.c.source == ctx.source)
    return where
