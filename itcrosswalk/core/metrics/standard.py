"""The standard pack: service, portfolio and endpoint metrics, each defined in words and in SQL.

A definition says which records are in scope, which of those are excluded and why, and what
is summed. Timestamps are compared as whole epoch seconds (integers), so the same expressions
give the same answers on SQLite and PostgreSQL; days and months are the City's calendar zone's.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..store import without_jit
from . import (
    DepartmentOrigin,
    Explanation,
    Measure,
    Metric,
    MetricContext,
    MetricResult,
    SqlMetric,
    end_of_local_day,
    epoch,
    epoch_of,
    key_text,
    plain,
    record_label,
    whole_table,
)
from .calendar import BusinessCalendar

OPEN_TICKET = ("new", "in_progress", "on_hold")
DONE_TICKET = ("resolved", "closed")
ACTIVE_WORK = ("approved", "in_progress", "on_hold")
UNDECIDED_DEMAND = ("submitted", "screening", "qualified")
HOUR, DAY = 3600.0, 86400.0
NO_RESOLUTION_TIME = "resolved, no resolution time"
"""A ticket its platform marks resolved or closed without saying when: not open, not timed."""

# The oldest supported version of each OS family, where the config names none.
DEFAULT_SUPPORTED_OS: dict[str, str] = {
    "Windows": "10.0.19045",
    "macOS": "14.0",
    "Mac OS X": "14.0",  # the ServiceNow CMDB's name for macOS
    "iOS": "17.0",
    "iPadOS": "17.0",
    "Android": "13",
}


def fetch(
    ctx: MetricContext, query: Any, batch: int = 10000, *, compiled: bool = True
) -> Iterator[Any]:
    """The rows of a query, read in batches (row-at-a-time fetching costs more than the work).
    ``compiled=False`` for a query whose expressions are too large for PostgreSQL to compile
    to machine code (see :func:`~.without_jit`)."""
    with ctx.store.engine.connect() as conn:
        if not compiled:
            without_jit(conn)
        result = conn.execution_options(yield_per=batch).execute(query)
        try:
            for rows in result.partitions():
                yield from rows
        finally:
            result.close()


def fetch_plain(ctx: MetricContext, query: Any, *, compiled: bool = True) -> list[tuple[Any, ...]]:
    """The rows of a query whose columns are plain numbers and text, as the driver gives them.

    Building a result row per record costs more than the arithmetic on it when a metric reads
    hundreds of thousands of them; numbers and text need no conversion, so the driver's tuples
    are the same values. Never for times or dates (those the store's types convert)."""
    with ctx.store.engine.connect() as conn:
        if not compiled:
            without_jit(conn)
        result = conn.execute(query)
        try:
            return list(result.cursor.fetchall())
        finally:
            result.close()


def _moment(seconds: int) -> datetime:
    """The UTC moment of whole epoch seconds (the inverse of :func:`epoch_of`)."""
    return datetime.fromtimestamp(seconds, UTC)


def _resolved_at(t: sa.Table) -> Any:
    return sa.func.coalesce(t.c.resolved_at, t.c.closed_at)


def _seconds_to_resolve(t: sa.Table, ctx: MetricContext) -> Any:
    # Whole seconds, summed as integers: the stores agree to the last digit; hours come after.
    return epoch(_resolved_at(t), ctx.dialect) - epoch(t.c.opened_at, ctx.dialect)


# -- service ----------------------------------------------------------------------------------


class TicketVolume(SqlMetric):
    id = "itsm.volume"
    title = "Tickets opened"
    domain = "service"
    unit = "count"
    entity = "ticket"
    fields = ("opened_at",)
    date_field = "opened_at"
    definition = (
        "The number of tickets of every kind opened in the period (by their opened time). "
        "Tickets without an opened time are excluded and counted."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("no opened time", t.c.opened_at.is_(None))]


class TicketBacklog(SqlMetric):
    id = "itsm.backlog"
    title = "Open tickets (backlog)"
    domain = "service"
    unit = "count"
    entity = "ticket"
    fields = ("state",)
    unknown_is_missing = ("state",)
    scope_fields = ("state",)
    definition = (
        "Tickets open at the moment of reading (state new, in progress or on hold), whatever "
        "their age; detail gives them by age since opening, measured at the moment of reading, "
        "in bands of 0-7, 8-30, 31-90 and over 90 days. --since/--until do not apply, to the "
        "count or to the ages: a backlog is the moment of the last sync, not a period."
    )
    BANDS = (("0-7", 7), ("8-30", 30), ("31-90", 90))

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.state.in_(OPEN_TICKET)]

    NAMES = ("unknown age", *[name for name, _limit in BANDS], ">90")

    def tallied(self, t: sa.Table, ctx: MetricContext) -> tuple[Any, int] | None:
        # The states are the ones synced last, so the ages are measured now: --until does not
        # turn today's backlog into the one of a past day.
        # A ticket is under ``limit + 1`` days old when its whole opened second is after
        # ``now - (limit + 1)`` days, i.e. it was opened at or after the second that follows:
        # a comparison of stored moments, with no conversion to seconds per ticket.
        now = epoch_of(ctx.now)
        band = sa.case(
            (t.c.opened_at.is_(None), 0),
            *[
                (t.c.opened_at >= _moment(now - (limit + 1) * int(DAY) + 1), i + 1)
                for i, (_name, limit) in enumerate(self.BANDS)
            ],
            else_=len(self.NAMES) - 1,
        )
        return band, len(self.NAMES)

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        counts = {name: 0 for name, _ in self.BANDS} | {">90": 0}
        tally = self.tally(ctx, scope)
        counts.update({name: n for name, n in zip(self.NAMES, tally, strict=True) if n})
        result.detail["age_bands"] = counts


class MeanTimeToResolve(SqlMetric):
    id = "itsm.mttr_hours"
    title = "Mean time to resolve"
    domain = "service"
    unit = "hours"
    entity = "ticket"
    kinds = ("incident",)
    fields = ("opened_at", "resolved_at")
    date_field = "opened_at"
    measure = Measure("mean", expr=_seconds_to_resolve, scale=1 / HOUR)
    definition = (
        "For incidents opened in the period and resolved, the mean of the hours from opened to "
        "resolved (the resolved time, or the closed time where the platform leaves resolved "
        "empty), in clock hours; detail gives the median and both by priority. Excluded and "
        "counted: cancelled, resolved or closed with no resolution time (neither resolved nor "
        "closed time), still open, no opened time, resolved before opened (bad data)."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.kind == "incident"]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        resolved = _resolved_at(t)
        return [
            ("cancelled", t.c.state == "cancelled"),
            (NO_RESOLUTION_TIME, sa.and_(t.c.state.in_(DONE_TICKET), resolved.is_(None))),
            ("still open", resolved.is_(None)),
            ("no opened time", t.c.opened_at.is_(None)),
            ("resolved before opened (bad timestamps)", resolved < t.c.opened_at),
        ]

    def collected(self, t: sa.Table, ctx: MetricContext) -> tuple[Any, Any] | None:
        return t.c.priority, _seconds_to_resolve(t, ctx)

    def explain_columns(self, t: sa.Table, ctx: MetricContext) -> dict[str, Any]:
        return {
            "start": t.c.opened_at,
            "end": _resolved_at(t),
            "end_is": sa.case(
                (t.c.resolved_at.is_not(None), "resolved time"),
                (t.c.closed_at.is_not(None), "closed time (no resolved time)"),
                else_="none",
            ),
            "state": t.c.state,
            "clock_seconds": _seconds_to_resolve(t, ctx),
        }

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        by_value: dict[Any, list[int]] = defaultdict(list)
        for priority, seconds in self.collect(ctx, scope):
            by_value[priority].append(seconds)
        groups: dict[str, list[int]] = defaultdict(list)
        for priority, seconds_list in by_value.items():
            groups[key_text(priority)].extend(seconds_list)
        # Whole seconds (an integer column of the driver's own), sorted as integers: hours are
        # the same order, so the middle ones are the ones statistics.median would pick from the
        # hours; the mean is an exact sum (fsum) of the hours, as statistics.fmean's. Neither
        # depends on the order the store returns the records in.
        by_priority, every = {}, []
        for key, values in sorted(groups.items()):
            values.sort()
            every.extend(values)
            hours = map(operator.truediv, values, itertools.repeat(HOUR))
            by_priority[key] = {
                "mean": round(math.fsum(hours) / len(values), 4),
                "median": round(_median_hours(values), 4),
                "n": len(values),
            }
        every.sort()  # runs already sorted: a merge
        result.detail["median"] = round(_median_hours(every), 4) if every else None
        result.detail["by_priority"] = by_priority


def _median_hours(ordered: Sequence[int]) -> float:
    """``statistics.median`` of the hours of sorted whole seconds, with its arithmetic: the
    middle one, or the mean of the two middle ones, in hours."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle] / HOUR
    return (ordered[middle - 1] / HOUR + ordered[middle] / HOUR) / 2


class FirstContactResolution(SqlMetric):
    id = "itsm.fcr_rate"
    title = "First-contact resolution"
    domain = "service"
    unit = "%"
    entity = "ticket"
    kinds = ("incident",)
    fields = ("reassignment_count",)
    date_field = "opened_at"
    measure = Measure(
        "share",
        condition=lambda t, ctx: sa.and_(
            t.c.reassignment_count == 0, sa.func.coalesce(t.c.reopen_count, 0) == 0
        ),
    )
    scope_fields = ("state",)
    definition = (
        "Of incidents opened in the period and resolved or closed, the share resolved by the "
        "group that first took them (never reassigned) and never reopened. Excluded and "
        "counted: incidents whose platform does not record the reassignment count."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.kind == "incident", t.c.state.in_(DONE_TICKET)]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("reassignment count not recorded", t.c.reassignment_count.is_(None))]


class ReopenRate(SqlMetric):
    id = "itsm.reopen_rate"
    title = "Reopen rate"
    domain = "service"
    unit = "%"
    entity = "ticket"
    fields = ("reopen_count",)
    date_field = "opened_at"
    measure = Measure("share", condition=lambda t, ctx: t.c.reopen_count > 0)
    scope_fields = ("state",)
    definition = (
        "Of tickets opened in the period and resolved or closed, the share reopened at least "
        "once. Excluded and counted: tickets whose platform does not record the reopen count."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.state.in_(DONE_TICKET)]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("reopen count not recorded", t.c.reopen_count.is_(None))]


class ReassignmentRate(SqlMetric):
    id = "itsm.reassignment_rate"
    title = "Reassignment rate"
    domain = "service"
    unit = "%"
    entity = "ticket"
    fields = ("reassignment_count",)
    date_field = "opened_at"
    measure = Measure("share", condition=lambda t, ctx: t.c.reassignment_count > 0)
    definition = (
        "Of tickets opened in the period (cancelled ones aside), the share reassigned from one "
        "group to another at least once. Excluded and counted: cancelled tickets, and tickets "
        "whose platform does not record the reassignment count."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [
            ("cancelled", t.c.state == "cancelled"),
            ("reassignment count not recorded", t.c.reassignment_count.is_(None)),
        ]


def parse_target(text: str, calendar: BusinessCalendar) -> tuple[float, bool]:
    """A target (``4h``, ``6bh``, ``3bd``, ``2d``) as seconds, and whether it runs on business time."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(h|bh|bd|d)", text)
    if not match:
        raise ValueError(f"not an SLA target: {text!r}")
    amount, unit = float(match.group(1)), match.group(2)
    if unit == "h":
        return amount * HOUR, False
    if unit == "d":
        return amount * DAY, False
    if unit == "bh":
        return amount * HOUR, True
    return amount * calendar.working_seconds_per_day(), True


class JudgedMetric(Metric):
    """A share (%) whose records are judged one by one in Python, where SQL cannot carry the
    arithmetic portably. Subclasses give the columns to judge and the judgement; counting,
    breakdowns and explaining are shared.
    """

    def reading(self, ctx: MetricContext) -> tuple[Any, list[Any]]:
        """What the query reads from (the table, or a join), and the SQL expressions ``judge``
        reads, in order."""
        raise NotImplementedError

    def scope(self, ctx: MetricContext) -> list[Any]:
        return self.base_where(ctx)

    def setup(self, ctx: MetricContext) -> Any:
        """What every judgement needs (a calendar, a version list), made once per query."""
        return None

    def judge(self, values: Sequence[Any], state: Any) -> tuple[Any, ...]:
        """(the reason a record is excluded, or None; 100 when it meets the measure, else 0),
        and optionally a third item: the numbers the verdict rests on, for ``--explain``."""
        raise NotImplementedError

    def verdict(self, values: Sequence[Any], state: Any) -> tuple[Any, Any]:
        """The first two items of :meth:`judge`, which ``compute`` reads for every record: a
        metric whose explanation costs more than its verdict gives the verdict alone here."""
        return self.judge(values, state)[:2]  # type: ignore[return-value]

    same_values_same_verdict: bool = False
    """Whether the verdict depends on nothing but the values read (no per-record state such as
    a pause looked up by the record's id): the records are then read grouped by their values
    and counted, and each distinct set of values is judged once."""

    def _query(self, ctx: MetricContext, extra: Sequence[Any], *, explain: bool) -> Any:
        t = self.table
        origin, columns = self.reading(ctx)
        identity = [t.c.source, t.c.source_id, self.label_column()] if explain else []
        query = sa.select(*identity, *columns, *extra).select_from(origin).where(*self.scope(ctx))
        return query.order_by(t.c.source, t.c.source_id) if explain else query

    def label_column(self) -> Any:
        return record_label(self.table)

    def compute(self, ctx: MetricContext, by: Sequence[str] = ()) -> MetricResult:
        result = MetricResult(self.id, self.title, self.unit, None, 0)
        result.unsupported = self.coverage_reason(ctx) or self.unsupported_reason(
            ctx, self.scope(ctx)
        )
        if result.unsupported:
            return result
        state = self.setup(ctx)
        dims = [d for d in by if self.dimension_expr(d, ctx) is not None]
        width = len(self.reading(ctx)[1])
        keys = [self.dimension_expr(d, ctx) for d in dims]
        query = self._query(ctx, keys, explain=False)
        rows: Iterator[Any] = fetch(ctx, query)
        if self.same_values_same_verdict:
            values = query.subquery()
            rows = fetch(ctx, sa.select(*values.c, sa.func.count()).group_by(*values.c))
        met = 0.0
        excluded: dict[str, int] = defaultdict(int)
        cells: dict[str, dict[str, list[float]]] = {
            d: defaultdict(lambda: [0.0, 0.0]) for d in dims
        }
        verdict = self.verdict
        weighted = self.same_values_same_verdict
        for row in rows:
            reason, value = verdict(row, state)
            count = int(row[-1]) if weighted else 1
            if reason is not None:
                excluded[reason] += count
                continue
            assert value is not None
            result.n += count
            # Each record adds its share one at a time: 1.0 or 0.0, so a count of them is exact.
            share = value / 100.0
            met += share * count
            for position, dimension in enumerate(dims):
                cell = cells[dimension][key_text(row[width + position])]
                cell[0] += share * count
                cell[1] += count
        result.value = 100.0 * met / result.n if result.n else None
        result.excluded = dict(excluded)
        for dimension in dims:
            result.breakdown[dimension] = {
                key: 100.0 * a / b for key, (a, b) in sorted(cells[dimension].items())
            }
        return result

    def explain(self, ctx: MetricContext) -> Iterator[Explanation]:
        state = self.setup(ctx)
        origin = self.department_columns()
        # The department's columns come last, so the judgement reads the same row as compute.
        end = -len(origin) if origin else None
        for row in fetch(ctx, self._query(ctx, origin, explain=True)):
            verdict = self.judge(row[3:end], state)
            reason, value = verdict[0], verdict[1]
            detail = dict(verdict[2]) if len(verdict) > 2 else {}
            department = DepartmentOrigin.of(*row[end:]) if origin else None
            yield Explanation(
                row[0], row[1], row[2], reason is None, reason, value, detail, department
            )


@dataclass
class _Pause:
    """How long one platform SLA clock stood still: in clock seconds, and in business seconds
    on the City's calendar where that can be told (``low == high``) or within bounds."""

    clock: float
    low: float
    high: float
    how: str


def _pause(
    calendar: BusinessCalendar, start: int, end: int, elapsed: float, business: float | None
) -> _Pause:
    """The pause of an SLA record that ran from ``start`` to ``end`` with ``elapsed`` clock
    seconds (and ``business`` seconds on its schedule) counted.

    Only the part of a pause that fell inside business hours may come off business time: a
    25 h pause from Tuesday 16:00 to Wednesday 17:00 holds 10 of a 9-to-5 calendar's hours, not
    25. The platform's business elapsed time places it (business span less business elapsed);
    without it the pause lies somewhere between the non-business hours of the span and the
    business ones, and the verdict stands only if it is the same at both ends.
    """
    wall = end - start
    clock = max(0.0, wall - elapsed)
    span = calendar.seconds_between(start, end)
    if business is not None:
        held = min(max(0.0, span - business), clock, span)
        return _Pause(clock, held, held, "business span less the platform's business elapsed")
    low = max(0.0, clock - (wall - span))
    high = min(clock, span)
    how = "exact" if low == high else "the platform does not say when the clock stood still"
    return _Pause(clock, low, high, how)


class SlaAttainment(JudgedMetric):
    """Resolution within the City's target for the priority, on the City's calendar."""

    id = "itsm.sla_attainment"
    title = "SLA attainment (City policy)"
    domain = "service"
    unit = "%"
    entity = "ticket"
    kinds = ("incident",)
    fields = ("opened_at", "priority")
    date_field = "opened_at"
    definition = (
        "Of incidents opened in the period, the share resolved within the City's target for "
        "their priority ([metrics] sla_targets; default P1 4 h, P2 8 h, P3 3 business days, "
        "P4 5 business days). Business targets run on the [metrics.calendar] business hours "
        "(workdays, hours, holidays, time zone). Time on hold is deducted where the platform's "
        "own SLA record shows it: its wall time less its elapsed time for clock targets, and "
        "for business targets only the part of the pause that fell inside business hours (its "
        "business span less its business elapsed time); where the record does not place the "
        "pause and the verdict depends on where it fell, the incident is excluded as such. "
        "Times are compared in whole seconds. An incident still open counts as missed once its "
        "target has passed, and is excluded while it may still make it. Excluded and counted: "
        "cancelled, no priority, a priority without a target, no opened time, resolved or "
        "closed with no resolution time (never judged against the present), resolved before "
        "opened."
    )

    def scope(self, ctx: MetricContext) -> list[Any]:
        return [*self.base_where(ctx), self.table.c.kind == "incident"]

    def _pauses(self, ctx: MetricContext, calendar: BusinessCalendar) -> dict[Any, _Pause]:
        """Per (source, ticket), the pause of its platform SLA record that stood still longest."""
        sla = ctx.store.table("sla_record")
        query = sa.select(
            sla.c.source,
            sla.c.ticket_id,
            epoch(sla.c.start_at, ctx.dialect),
            epoch(sla.c.end_at, ctx.dialect),
            sla.c.elapsed_seconds,
            sla.c.business_elapsed_seconds,
        ).where(
            sla.c.deleted.is_(False),
            sla.c.ticket_id.is_not(None),
            sla.c.elapsed_seconds.is_not(None),
            sla.c.start_at.is_not(None),
            sla.c.end_at.is_not(None),
        )
        if ctx.source:
            query = query.where(sla.c.source == ctx.source)
        pauses: dict[Any, _Pause] = {}
        for source, ticket_id, start, end, elapsed, business in fetch(ctx, query):
            pause = _pause(
                calendar,
                int(start),
                int(end),
                float(elapsed),
                None if business is None else float(business),
            )
            key = (source, ticket_id)
            if key not in pauses or pause.clock > pauses[key].clock:
                pauses[key] = pause
        return pauses

    def reading(self, ctx: MetricContext) -> tuple[Any, list[Any]]:
        t = self.table
        return t, [
            t.c.state,
            t.c.priority,
            epoch(t.c.opened_at, ctx.dialect),
            epoch(_resolved_at(t), ctx.dialect),
            t.c.source,
            t.c.source_id,
        ]

    def setup(self, ctx: MetricContext) -> Any:
        calendar = BusinessCalendar.from_config(ctx.policy.calendar)
        targets = {
            int(priority): (text, *parse_target(text, calendar))
            for priority, text in ctx.policy.sla_targets.items()
        }
        return calendar, targets, epoch_of(ctx.as_of), self._pauses(ctx, calendar)

    @staticmethod
    def _gate(values: Sequence[Any], state: Any) -> Any:
        """Why an incident is not judged (text), or what it is judged on: the target's text,
        seconds and kind, opened and end (whole seconds), whether resolved, the elapsed
        seconds on its clock, the hold deducted at the least and the most, and the pause.
        :meth:`verdict` and :meth:`judge` share it, so they test in one order."""
        calendar, targets, as_of, pauses = state
        status, priority, opened, resolved, source, ticket_id = values[:6]
        if status == "cancelled":
            return "cancelled"
        if priority is None:
            return "no priority"
        if priority not in targets:
            return f"no target for priority {priority}"
        if opened is None:
            return "no opened time"
        if resolved is None and status in DONE_TICKET:
            return NO_RESOLUTION_TIME
        if resolved is not None and resolved < opened:
            return "resolved before opened (bad timestamps)"
        text, target, business = targets[priority]
        opened = int(opened)
        end = int(resolved) if resolved is not None else as_of
        elapsed = calendar.seconds_between(opened, end) if business else float(end - opened)
        pause = pauses.get((source, ticket_id)) if pauses else None
        if pause is None:
            low = high = 0.0
        elif business:
            low, high = pause.low, pause.high
        else:
            low = high = pause.clock
        return text, target, business, opened, end, resolved is not None, elapsed, low, high, pause

    def verdict(self, values: Sequence[Any], state: Any) -> tuple[Any, Any]:
        """:meth:`judge` without the explanation's numbers (the same tests, in the same order:
        test_metrics_exact.py holds the two to one answer)."""
        gate = self._gate(values, state)
        if type(gate) is str:
            return gate, None
        _text, target, _business, _opened, _end, resolved, elapsed, low, high, _pause = gate
        if elapsed - high <= target < elapsed - low:
            return "time on hold not placed in business hours", None
        met = elapsed - high <= target
        if not resolved and met:
            return "still open, within target", None
        return None, 100.0 if met else 0.0

    def judge(self, values: Sequence[Any], state: Any) -> tuple[Any, ...]:
        gate = self._gate(values, state)
        if type(gate) is str:
            return gate, None
        calendar = state[0]
        text, target, business, opened, end, resolved, elapsed, low, high, pause = gate
        clock = end - opened
        detail: dict[str, Any] = {
            "start": _iso(opened),
            "end": _iso(end),
            "end_is": "resolved (or closed) time" if resolved else "now: still open",
            "clock_hours": round(clock / HOUR, 4),
            "business_hours": round(calendar.seconds_between(opened, end) / HOUR, 4),
            "hold_hours": round(high / HOUR, 4)
            if low == high
            else f"{round(low / HOUR, 4)}-{round(high / HOUR, 4)}",
            "hold_from": "no platform SLA record" if pause is None else pause.how,
            "target": f"{text} ({'business' if business else 'clock'} time)",
            "target_hours": round(target / HOUR, 4),
        }
        best, worst = elapsed - high, elapsed - low  # the most and the least deducted
        if best <= target < worst:
            detail["comparison"] = (
                f"{round(best / HOUR, 4)}-{round(worst / HOUR, 4)} h against {round(target / HOUR, 4)} h"
            )
            return "time on hold not placed in business hours", None, detail
        spent = elapsed - high
        met = spent <= target
        detail["spent_hours"] = round(spent / HOUR, 4)
        detail["comparison"] = (
            f"{round(spent / HOUR, 4)} h {'<=' if met else '>'} {round(target / HOUR, 4)} h"
        )
        if not resolved and met:
            return "still open, within target", None, detail
        return None, 100.0 if met else 0.0, detail

    def compute(self, ctx: MetricContext, by: Sequence[str] = ()) -> MetricResult:
        result = self._compute_in_sql(ctx, by)
        if result is None:
            result = super().compute(ctx, by)
        if not result.unsupported:
            result.detail["targets"] = dict(ctx.policy.sla_targets)
        return result

    # The same verdicts in SQL --------------------------------------------------------------
    #
    # Judged one by one in Python, the clock of a million incidents costs seconds. Every test of
    # :meth:`verdict` is a comparison of whole epoch seconds, and business time is a lookup in
    # the calendar's tables of local days (:meth:`BusinessCalendar.days`): a balanced CASE over
    # the days' midnights finds a moment's day as ``bisect`` does, and the day's window and the
    # working seconds before it give its position, in integers on both stores. Incidents whose
    # platform SLA record holds a pause, and moments outside the tables, are still judged in
    # Python, by the same verdict; a calendar with a fraction of a second in it (hours ending
    # at 24:00) is judged in Python throughout.

    _MET, _MISSED, _IN_PYTHON = 8, 0, 9
    _CODES: dict[int, str] = {
        1: "cancelled",
        2: "no priority",
        4: "no opened time",
        5: NO_RESOLUTION_TIME,
        6: "resolved before opened (bad timestamps)",
        7: "still open, within target",
    }

    def _compute_in_sql(self, ctx: MetricContext, by: Sequence[str]) -> MetricResult | None:
        calendar = BusinessCalendar.from_config(ctx.policy.calendar)
        t = self.table
        with ctx.store.engine.connect() as conn:
            # Apart, each is one step down the index; together they are a walk of it.
            low = conn.execute(sa.select(sa.func.min(t.c.opened_at))).scalar()
            high = conn.execute(sa.select(sa.func.max(t.c.opened_at))).scalar()
        as_of = epoch_of(ctx.as_of)
        days: list[tuple[float, float, float, float]] = []
        if low is not None:
            zone = calendar.zone
            first = low.astimezone(zone).date() - timedelta(days=2)
            last = max(high or low, ctx.as_of).astimezone(zone).date() + timedelta(days=62)
            days = calendar.days(first, last)
            if not all(float(v).is_integer() for day in days for v in day):
                return None
        result = MetricResult(self.id, self.title, self.unit, None, 0)
        shared = ctx.shared
        result.unsupported = shared.coverage(self) if shared else self.coverage_reason(ctx)
        if result.unsupported:
            return result
        targets = {
            int(priority): (text, *parse_target(text, calendar))
            for priority, text in ctx.policy.sla_targets.items()
        }
        pauses = self._pauses(ctx, calendar)
        dims = [
            d
            for d in by
            if (shared.dimension(self, d) if shared else self.dimension_expr(d, ctx)) is not None
        ]
        keys = [shared.dimension(self, d) if shared else self.dimension_expr(d, ctx) for d in dims]
        records = self._judged_in_sql(ctx, targets, days, as_of, bool(pauses), keys)
        singles = [shared.only_value(self, key) if shared else (False, None) for key in keys]
        rows = None
        if all(single for single, _value in singles):
            # No breakdown, or one value per dimension for every record: no grouping needed.
            counted = self._counted(ctx, records, targets)
            values = tuple(value for _single, value in singles)
            rows = None if counted is None else [(*r[:2], *values, *r[2:]) for r in counted]
        if rows is None:
            groups = [
                records.c.code,
                records.c.no_target,
                *[records.c[f"dim_{i}"] for i in range(len(keys))],
            ]
            grouped = sa.select(
                *groups,
                sa.func.count(),
                sa.func.sum(sa.case((records.c.opened.is_not(None), 1), else_=0)),
                sa.func.sum(sa.case((records.c.priority.is_not(None), 1), else_=0)),
            ).group_by(*groups)
            rows = list(fetch(ctx, grouped, compiled=False))
        total = sum(int(r[-3]) for r in rows)
        present = {
            "opened_at": sum(int(r[-2] or 0) for r in rows),
            "priority": sum(int(r[-1] or 0) for r in rows),
        }
        result.unsupported = self.judge_support(total, present)
        if result.unsupported:
            return result
        met = 0.0
        excluded: dict[str, int] = defaultdict(int)
        cells: dict[str, dict[str, list[float]]] = {
            d: defaultdict(lambda: [0.0, 0.0]) for d in dims
        }

        def count(reason: str | None, value: float | None, n: int, keys: Sequence[Any]) -> None:
            nonlocal met
            if reason is not None:
                excluded[reason] += n
                return
            assert value is not None
            result.n += n
            # Each record adds its share, 1.0 or 0.0: a count of them adds up exactly alike.
            share = value / 100.0
            met += share * n
            for dimension, key in zip(dims, keys, strict=True):
                cell = cells[dimension][key_text(key)]
                cell[0] += share * n
                cell[1] += n

        in_python = False
        for row in rows:
            code, no_target, n, values = row[0], row[1], int(row[-3]), row[2:-3]
            if not n:
                continue
            if code == self._IN_PYTHON:
                in_python = True
            elif code == 3:
                count(f"no target for priority {no_target}", None, n, values)
            elif code in (self._MET, self._MISSED):
                count(None, 100.0 if code == self._MET else 0.0, n, values)
            else:
                count(self._CODES[code], None, n, values)
        if in_python:
            state = calendar, targets, as_of, pauses
            judged = self._judged_in_sql(
                ctx, targets, days, as_of, bool(pauses), keys, reading=True
            )
            reading = ["state", "priority", "opened", "resolved", "source", "source_id"]
            query = sa.select(
                *[judged.c[name] for name in reading],
                *[judged.c[f"dim_{i}"] for i in range(len(keys))],
            ).where(judged.c.code == self._IN_PYTHON)
            for values in fetch(ctx, query, compiled=False):
                reason, value = self.verdict(values, state)
                count(reason, value, 1, values[6:])
        result.value = 100.0 * met / result.n if result.n else None
        result.excluded = dict(excluded)
        for dimension in dims:
            result.breakdown[dimension] = {
                key: 100.0 * a / b for key, (a, b) in sorted(cells[dimension].items())
            }
        return result

    def _counted(
        self, ctx: MetricContext, records: Any, targets: dict[int, Any]
    ) -> list[tuple[Any, ...]] | None:
        """Without a breakdown, the grouped rows (code, priority without a target, n, and how
        many carry an opened time and a priority) as sums of one pass, with no sort: the codes
        are few and known, and so are the priorities a City may leave without a target. None
        when a priority outside 0-9 has no target (the grouped query then says which)."""
        c = records.c
        candidates = [p for p in range(10) if p not in targets]
        plain = [1, 2, 4, 5, 6, 7, self._MET, self._MISSED, self._IN_PYTHON]
        cells = [(code, None) for code in plain] + [(3, p) for p in candidates]
        conditions = [c.code == code for code in plain]
        # ``no_target`` holds a priority only where the code is 3.
        conditions += [c.no_target == p for p in candidates]
        query = sa.select(
            *[sa.func.count(sa.case((condition, 1), else_=sa.null())) for condition in conditions],
            sa.func.count(),
            sa.func.count(c.opened),
            sa.func.count(c.priority),
        )
        (*values, total, has_opened, has_priority) = fetch_plain(ctx, query, compiled=False)[0]
        rows = [(*cell, n, 0, 0) for cell, n in zip(cells, values, strict=True) if n]
        if sum(r[2] for r in rows) != total:
            return None
        rows.append((self._MISSED, None, 0, int(has_opened or 0), int(has_priority or 0)))
        return rows

    def _judged_in_sql(
        self,
        ctx: MetricContext,
        targets: dict[int, tuple[str, float, bool]],
        days: list[tuple[float, float, float, float]],
        as_of: int,
        paused: bool,
        keys: Sequence[Any],
        *,
        reading: bool = False,
    ) -> Any:
        """The incidents in scope with their code: met (8) or missed (0) their target, one of
        :attr:`_CODES` (3: no target for the priority ``no_target``), or 9, left to Python."""
        t = self.table
        dims = [key.label(f"dim_{i}") for i, key in enumerate(keys)]
        identity = [t.c.source.label("source"), t.c.source_id.label("source_id")] if reading else []
        columns = [
            t.c.state.label("state"),
            t.c.priority.label("priority"),
            epoch(t.c.opened_at, ctx.dialect).label("opened"),
            epoch(_resolved_at(t), ctx.dialect).label("resolved"),
            *identity,
            *dims,
        ]
        if paused:
            sla = ctx.store.table("sla_record")
            where = [
                sla.c.source == t.c.source,
                sla.c.ticket_id == t.c.source_id,
                sla.c.deleted.is_(False),
                sla.c.ticket_id.is_not(None),
                sla.c.elapsed_seconds.is_not(None),
                sla.c.start_at.is_not(None),
                sla.c.end_at.is_not(None),
            ]
            if ctx.source:
                where.append(sla.c.source == ctx.source)
            columns.append(sa.exists().where(*where).label("paused"))
        else:
            columns.append(sa.false().label("paused"))
        reads = sa.select(*columns).where(*whole_table(self.scope(ctx)))
        read = reads.offset(0).subquery("incidents")
        opened, resolved, priority = read.c.opened, read.c.resolved, read.c.priority
        starts = [int(day[0]) for day in days]

        def number(value: int) -> Any:
            return sa.literal_column(str(value), sa.BigInteger)

        def position(moment: str, lo: int, hi: int) -> str:
            """Working seconds before ``moment`` (a moment of days[lo:hi]), as ``bisect`` finds
            its day in :meth:`BusinessCalendar.seconds_between`: SQL text of integer literals, as
            a calendar of years is thousands of them (parameters, or an expression tree to
            compile, would cost more than the pass)."""
            if hi - lo == 1:
                _start, opens, closes, before = (int(v) for v in days[lo])
                return (
                    f"CASE WHEN {moment} <= {opens} THEN {before} "
                    f"WHEN {moment} >= {closes} THEN {before + closes - opens} "
                    f"ELSE {moment} - {opens} + {before} END"
                )
            mid = (lo + hi) // 2
            return (
                f"CASE WHEN {moment} < {starts[mid]} THEN {position(moment, lo, mid)} "
                f"ELSE {position(moment, mid, hi)} END"
            )

        business = [p for p, (_text, _target, on_business) in targets.items() if on_business]
        end: Any = sa.func.coalesce(resolved, as_of)
        outside: Any = sa.false()
        if days and business:
            outside = sa.and_(
                priority.in_(business),
                sa.not_(sa.and_(opened >= number(starts[0]), end < number(starts[-1]))),
            )
        elif business:
            outside = priority.in_(business)
        # First the reasons that need no clock (and the records Python judges), then the clock,
        # only for the records that reach it.
        before_clock = sa.case(
            (read.c.state == "cancelled", 1),
            (priority.is_(None), 2),
            (priority.not_in(list(targets)) if targets else sa.true(), 3),
            (opened.is_(None), 4),
            (sa.and_(resolved.is_(None), read.c.state.in_(DONE_TICKET)), 5),
            (sa.and_(resolved.is_not(None), resolved < opened), 6),
            (read.c.paused, self._IN_PYTHON),
            (outside, self._IN_PYTHON),
            else_=0,
        )
        carried = [priority, opened, resolved, *[read.c[d.name] for d in dims]]
        if reading:
            carried += [read.c.state, read.c.source, read.c.source_id]
        sorting = sa.select(*carried, end.label("end_epoch"), before_clock.label("pre"))
        sorted_ = sorting.offset(0).subquery("clock_in")
        opened, end = sorted_.c.opened, sorted_.c.end_epoch
        elapsed_business: Any = number(0)
        if days and business:
            last = len(days) - 1
            elapsed_business = sa.literal_column(
                "CASE WHEN clock_in.end_epoch <= clock_in.opened THEN 0 ELSE "
                f"({position('clock_in.end_epoch', 0, last)}) - "
                f"({position('clock_in.opened', 0, last)}) END",
                sa.BigInteger,
            )
        met = sa.case(
            *[
                (
                    sorted_.c.priority == p,
                    (elapsed_business if on_business else end - opened)
                    <= sa.literal(target, sa.Float),
                )
                for p, (_text, target, on_business) in targets.items()
            ],
            else_=sa.false(),
        )
        code = sa.case(
            (sorted_.c.pre != 0, sorted_.c.pre),
            (met, sa.case((sorted_.c.resolved.is_(None), 7), else_=self._MET)),
            else_=self._MISSED,
        )
        no_target = sa.case((sorted_.c.pre == 3, sorted_.c.priority), else_=sa.null())
        kept = [c for c in sorted_.c if c.name not in ("end_epoch", "pre")]
        judged = sa.select(*kept, code.label("code"), no_target.label("no_target"))
        return judged.offset(0).subquery("judged")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class PlatformSlaAttainment(SqlMetric):
    id = "itsm.platform_sla_attainment"
    title = "SLA attainment (platform's own)"
    domain = "service"
    unit = "%"
    entity = "sla_record"
    fields = ("has_breached",)
    date_field = "start_at"
    measure = Measure("share", condition=lambda t, ctx: t.c.has_breached.is_(False))
    scope_fields = ("stage",)
    absent_reason = (
        "no synced source keeps SLA records of its own (such as ServiceNow task_sla): there is "
        "no platform verdict to report; itsm.sla_attainment judges the City's targets instead"
    )
    definition = (
        "Where the platform keeps its own SLA records (ServiceNow task_sla), the share of "
        "completed ones it marks as not breached, for SLAs started in the period: the "
        "platform's own answer, to set beside itsm.sla_attainment. Excluded and counted: "
        "records without a breach flag."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.stage == "completed"]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("breach not recorded", t.c.has_breached.is_(None))]

    def label_column(self) -> Any:
        t = self.table
        return sa.func.coalesce(t.c.ticket_id, t.c.source_id)


# -- portfolio ---------------------------------------------------------------------------------


class _Projects(SqlMetric):
    domain = "portfolio"
    entity = "work_item"
    kinds = ("project",)

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [self.kind_condition(t)]


class ProjectsByState(_Projects):
    id = "ppm.count_by_state"
    title = "Projects by state"
    unit = "count"
    fields = ("state",)
    unknown_is_missing = ("state",)
    definition = (
        "The number of projects (work items of kind project; a Jira Align source's epics) on "
        "every platform, cancelled ones left out of the count and counted apart; the breakdown "
        "always includes every normalized state (proposed, approved, in progress, on hold, "
        "done, cancelled, unknown)."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("cancelled", t.c.state == "cancelled")]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        with ctx.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.state, sa.func.count()).where(*scope).group_by(t.c.state)
            ).all()
        result.breakdown["state"] = {key_text(s): float(n) for s, n in sorted(rows)}


class HealthMix(_Projects):
    id = "ppm.health_mix"
    title = "Active projects in green health"
    unit = "%"
    fields = ("health",)
    unknown_is_missing = ("health",)
    measure = Measure("share", condition=lambda t, ctx: t.c.health == "green")
    scope_fields = ("state",)
    definition = (
        "Of active projects (approved, in progress or on hold), the share reported green; the "
        "breakdown always includes the share in each health (green, amber, red). Excluded and "
        "counted: active projects with no health reported."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [*super().scope(t, ctx), t.c.state.in_(ACTIVE_WORK)]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("no health reported", t.c.health == "unknown")]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        with ctx.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.health, sa.func.count())
                .where(*scope, t.c.health != "unknown")
                .group_by(t.c.health)
            ).all()
        total = sum(n for _h, n in rows)
        result.breakdown["health"] = (
            {h: 100.0 * n / total for h, n in sorted(rows)} if total else {}
        )


class OnTimeRate(JudgedMetric):
    id = "ppm.on_time_rate"
    title = "Projects finished on time"
    domain = "portfolio"
    unit = "%"
    entity = "work_item"
    kinds = ("project",)
    fields = ("baseline_finish", "actual_finish")
    date_field = "baseline_finish"
    scope_fields = ("state",)
    definition = (
        "Of projects done (those whose baseline finish falls in the period, when one is "
        "given), the share whose actual finish fell no later than the end of their baseline "
        "finish day, the day taken in the City's calendar zone ([metrics.calendar] timezone). "
        "The baseline is the finish the approved plan committed to (Project's baseline 0), "
        "never the current schedule, which moves to the actual finish as a project completes. "
        "Excluded and counted: no baseline finish (the platform keeps no baseline, or none was "
        "set), no actual finish."
    )

    def scope(self, ctx: MetricContext) -> list[Any]:
        t = self.table
        return [*self.base_where(ctx), self.kind_condition(t), t.c.state == "done"]

    def reading(self, ctx: MetricContext) -> tuple[Any, list[Any]]:
        t = self.table
        return t, [t.c.baseline_finish, t.c.actual_finish]

    def setup(self, ctx: MetricContext) -> Any:
        return ZoneInfo(ctx.policy.calendar.timezone)

    def judge(self, values: Sequence[Any], state: Any) -> tuple[Any, ...]:
        planned, actual = values[0], values[1]
        if planned is None:
            return "no baseline finish", None
        if actual is None:
            return "no actual finish", None
        # Not "within 24 hours of the planned instant": planned 17:00, finished 09:00 the
        # next morning is a day late.
        deadline = end_of_local_day(planned, state)
        met = actual < deadline
        detail = {
            "baseline_finish": plain(planned),
            "actual_finish": plain(actual),
            "day_ends": plain(deadline),
            "day_zone": state.key,
            "comparison": f"actual {'<' if met else '>='} end of the baseline finish day",
        }
        return None, 100.0 if met else 0.0, detail


def _cost(t: sa.Table) -> Any:
    return sa.func.coalesce(t.c.forecast_cost, t.c.actual_cost)


class BudgetVariance(_Projects):
    id = "ppm.budget_variance"
    title = "Budget variance"
    unit = "%"
    fields = ("budget",)
    measure = Measure(
        "ratio",
        numerator=lambda t, ctx: _cost(t) - t.c.budget,
        denominator=lambda t, ctx: t.c.budget,
        scale=100.0,
    )
    definition = (
        "Over projects with a budget, (forecast cost, or actual cost where no forecast is kept, "
        "less budget) summed, as a percentage of the budgets summed: positive is over budget. "
        "Excluded and counted: cancelled, no budget, a budget of zero, no cost."
    )

    def explain_columns(self, t: sa.Table, ctx: MetricContext) -> dict[str, Any]:
        return {
            "budget": t.c.budget,
            "forecast_cost": t.c.forecast_cost,
            "actual_cost": t.c.actual_cost,
            "cost_used": sa.case(
                (t.c.forecast_cost.is_not(None), "forecast cost"),
                (t.c.actual_cost.is_not(None), "actual cost (no forecast kept)"),
                else_="none",
            ),
            "variance": _cost(t) - t.c.budget,
        }

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [
            ("cancelled", t.c.state == "cancelled"),
            ("no budget", t.c.budget.is_(None)),
            ("zero budget", t.c.budget == 0),
            ("no cost", _cost(t).is_(None)),
        ]


def _ev_exclusions(t: sa.Table, *need: str) -> list[tuple[str, Any]]:
    names = {
        "budget": "budget (BAC)",
        "planned_value": "planned value",
        "earned_value": "earned value",
        "actual_cost": "actual cost",
    }
    rules: list[tuple[str, Any]] = [("cancelled", t.c.state == "cancelled")]
    for field_name in need:
        column = t.c[field_name]
        rules.append((f"no {names[field_name]}", column.is_(None)))
        rules.append((f"zero {names[field_name]}", column == 0))
    return rules


class _EarnedValueIndex(_Projects):
    """One earned-value input over another, each summed over projects (rolled up); the ratio
    per project is what ``--explain`` shows."""

    unit = "ratio"
    over: tuple[str, str] = ("", "")
    """(numerator, denominator) fields."""

    def __init__(self) -> None:
        top, bottom = self.over
        self.measure = Measure(
            "ratio",
            numerator=lambda t, ctx: t.c[top],
            denominator=lambda t, ctx: t.c[bottom],
        )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return _ev_exclusions(t, *self.fields)

    def row_value(self, t: sa.Table, ctx: MetricContext) -> Any:
        top, bottom = self.over
        return divide(t.c[top], t.c[bottom])


class SchedulePerformance(_EarnedValueIndex):
    id = "ppm.spi"
    title = "Schedule performance index (SPI)"
    fields = ("planned_value", "earned_value")
    over = ("earned_value", "planned_value")
    definition = (
        "Earned value over planned value at the status date, summed over projects (rolled up); "
        "per project in --explain. Below 1 is behind schedule. Excluded and counted: cancelled, "
        "no or zero planned value, no or zero earned value."
    )


class CostPerformance(_EarnedValueIndex):
    id = "ppm.cpi"
    title = "Cost performance index (CPI)"
    fields = ("earned_value", "actual_cost")
    over = ("earned_value", "actual_cost")
    definition = (
        "Earned value over actual cost, summed over projects (rolled up); per project in "
        "--explain. Below 1 is over cost. Excluded and counted: cancelled, no or zero earned "
        "value, no or zero actual cost."
    )


def divide(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator``, NULL where the denominator is zero.

    The exclusions already take such records out of the count, but a grouped query still
    evaluates the expression on their rows, and PostgreSQL raises on a division by zero where
    SQLite quietly gives NULL.
    """
    return numerator / sa.func.nullif(denominator, 0)


def _eac(t: sa.Table, ctx: MetricContext) -> Any:
    # EAC = BAC / CPI = BAC * AC / EV: the budget at the cost efficiency shown so far.
    return divide(t.c.budget * t.c.actual_cost, t.c.earned_value)


class EstimateAtCompletion(_Projects):
    id = "ppm.eac"
    title = "Estimate at completion (EAC)"
    unit = "currency"
    fields = ("budget", "earned_value", "actual_cost")
    measure = Measure("sum", expr=_eac)
    definition = (
        "Per project, budget at completion divided by CPI (BAC x AC / EV), summed over projects; "
        "per project in --explain. Excluded and counted: cancelled, no or zero budget, no or "
        "zero earned value, no or zero actual cost."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return _ev_exclusions(t, "budget", "earned_value", "actual_cost")


class VarianceAtCompletion(EstimateAtCompletion):
    id = "ppm.vac"
    title = "Variance at completion (VAC)"
    measure = Measure("sum", expr=lambda t, ctx: t.c.budget - _eac(t, ctx))
    definition = (
        "Per project, budget at completion less EAC (BAC - BAC x AC / EV), summed over "
        "projects; negative is a forecast overrun. Same exclusions as ppm.eac."
    )


class DemandCycleTime(SqlMetric):
    id = "ppm.demand_cycle_days"
    title = "Demand intake to decision"
    domain = "portfolio"
    unit = "days"
    entity = "demand"
    fields = ("submitted_at", "decided_at")
    date_field = "submitted_at"
    measure = Measure(
        "mean",
        expr=lambda t, ctx: (
            epoch(t.c.decided_at, ctx.dialect) - epoch(t.c.submitted_at, ctx.dialect)
        ),
        scale=1 / DAY,
    )
    definition = (
        "For demands submitted in the period and decided (approved, rejected, deferred), the "
        "mean days from submission to decision. Excluded and counted: not decided yet, no "
        "submission time, decided before submitted."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [
            ("not decided yet", t.c.decided_at.is_(None)),
            ("no submission time", t.c.submitted_at.is_(None)),
            ("decided before submitted (bad timestamps)", t.c.decided_at < t.c.submitted_at),
        ]


class DemandBacklog(SqlMetric):
    id = "ppm.demand_backlog"
    title = "Demands awaiting a decision"
    domain = "portfolio"
    unit = "count"
    entity = "demand"
    fields = ("state",)
    unknown_is_missing = ("state",)
    scope_fields = ("state",)
    definition = (
        "Demands submitted and not yet decided (submitted, screening or qualified) at the "
        "moment of reading."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.state.in_(UNDECIDED_DEMAND)]


# -- endpoints ---------------------------------------------------------------------------------


class _Managed(SqlMetric):
    """Devices a management platform enrolled (an MDM such as Intune), not CMDB entries."""

    domain = "endpoint"
    entity = "device"
    empty_reason = absent_reason = (
        "no synced source enrolls devices: this needs a management platform such as Intune "
        "(a CMDB records devices, not their enrolment, compliance or check-ins)"
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.enrolled_at.is_not(None)]


class ComplianceRate(_Managed):
    id = "endpoint.compliance_rate"
    title = "Managed devices compliant"
    unit = "%"
    fields = ("compliance",)
    unknown_is_missing = ("compliance",)
    measure = Measure("share", condition=lambda t, ctx: t.c.compliance == "compliant")
    definition = (
        "Of devices enrolled in a management platform, the share its compliance evaluation marks "
        "compliant; in grace period, conflict, error and noncompliant all count against. "
        "Excluded and counted: not applicable, and a state the platform reports as unknown."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [
            ("compliance not applicable", t.c.compliance == "not_applicable"),
            ("compliance unknown", t.c.compliance == "unknown"),
        ]


class EncryptionRate(_Managed):
    id = "endpoint.encryption_rate"
    title = "Managed devices encrypted"
    unit = "%"
    fields = ("encrypted",)
    measure = Measure("share", condition=lambda t, ctx: t.c.encrypted.is_(True))
    definition = (
        "Of devices enrolled in a management platform, the share reporting storage encryption. "
        "Excluded and counted: devices that do not report it."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("encryption not reported", t.c.encrypted.is_(None))]


class StaleDevices(_Managed):
    id = "endpoint.stale_devices"
    title = "Stale devices"
    unit = "count"
    fields = ("enrolled_at",)
    definition = (
        "Devices enrolled in a management platform that have not checked in for [metrics] "
        "stale_days (default 30) before the moment of reading, never-seen devices included; "
        "detail gives their share of all managed devices."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        cutoff = ctx.as_of - timedelta(days=ctx.policy.stale_days)
        return [(f"checked in within {ctx.policy.stale_days} days", t.c.last_seen_at >= cutoff)]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        managed = result.n + sum(result.excluded.values())
        result.detail["share"] = round(100.0 * result.n / managed, 4) if managed else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


class OsCurrency(JudgedMetric):
    id = "endpoint.os_currency"
    same_values_same_verdict = True
    title = "Devices on a supported OS version"
    domain = "endpoint"
    unit = "%"
    entity = "device"
    fields = ("os", "os_version")
    definition = (
        "Of devices in every source, the share whose OS version is at least the oldest "
        "supported version of its OS family ([metrics] supported_os; default Windows "
        "10.0.19045, macOS 14.0, iOS and iPadOS 17.0, Android 13). Excluded and counted: no OS "
        "or version, an OS family the list does not name."
    )

    def reading(self, ctx: MetricContext) -> tuple[Any, list[Any]]:
        return self.table, [self.table.c.os, self.table.c.os_version]

    def setup(self, ctx: MetricContext) -> Any:
        table = ctx.policy.supported_os or DEFAULT_SUPPORTED_OS
        # Longest family name first, so "iPadOS" is not taken for "iOS"-prefixed names.
        return sorted(
            ((name.lower(), _version(v)) for name, v in table.items()), key=lambda p: -len(p[0])
        )

    def judge(self, values: Sequence[Any], state: Any) -> tuple[Any, ...]:
        os_name, version = values[0], values[1]
        if not os_name or not version or not _version(version):
            return "no OS or version", None
        lowered = os_name.lower()
        for family, minimum in state:
            if lowered.startswith(family):
                detail = {
                    "os": os_name,
                    "version": version,
                    "oldest_supported": ".".join(str(part) for part in minimum),
                }
                return None, 100.0 if _version(version) >= minimum else 0.0, detail
        return "OS not in the supported list", None


def _on_the_other_side(t: sa.Table, *, managed: bool) -> Any:
    """A device with the same serial on the other side: a CMDB record for a managed device,
    a managed device for a CMDB record."""
    other = t.alias("other")
    side = other.c.enrolled_at.is_(None) if managed else other.c.enrolled_at.is_not(None)
    return sa.exists().where(other.c.serial_key == t.c.serial_key, other.c.deleted.is_(False), side)


class CmdbCoverage(_Managed):
    id = "endpoint.cmdb_coverage"
    title = "Managed devices known to the CMDB"
    unit = "%"
    fields = ("serial_key",)
    definition = (
        "Of devices enrolled in a management platform, the share whose serial number (compared "
        "without case or spaces; placeholders such as 'To be filled by O.E.M.' do not count) is "
        "also on a CMDB record (a device no management platform enrolled); detail gives the "
        "reverse, the share of CMDB devices a management platform enrolled. Excluded and "
        "counted: devices without a usable serial number."
    )

    measure = Measure("share", condition=lambda t, ctx: _on_the_other_side(t, managed=True))

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("no usable serial number", t.c.serial_key.is_(None))]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        cmdb: list[Any] = [
            t.c.deleted.is_(False),
            t.c.enrolled_at.is_(None),
            t.c.serial_key.is_not(None),
        ]
        if ctx.source:
            cmdb.append(t.c.source == ctx.source)
        known = sa.case((_on_the_other_side(t, managed=False), 1), else_=0)
        with ctx.store.engine.connect() as conn:
            total, found = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(known)).where(*cmdb)
            ).one()
        result.detail["cmdb_devices"] = int(total or 0)
        result.detail["cmdb_devices_managed_pct"] = (
            round(100.0 * float(found or 0) / total, 4) if total else None
        )


STANDARD: list[Metric] = [
    TicketVolume(),
    TicketBacklog(),
    MeanTimeToResolve(),
    SlaAttainment(),
    PlatformSlaAttainment(),
    FirstContactResolution(),
    ReopenRate(),
    ReassignmentRate(),
    ProjectsByState(),
    HealthMix(),
    OnTimeRate(),
    BudgetVariance(),
    SchedulePerformance(),
    CostPerformance(),
    EstimateAtCompletion(),
    VarianceAtCompletion(),
    DemandCycleTime(),
    DemandBacklog(),
    ComplianceRate(),
    EncryptionRate(),
    StaleDevices(),
    OsCurrency(),
    CmdbCoverage(),
]
