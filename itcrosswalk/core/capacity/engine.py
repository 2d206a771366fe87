"""Demand against capacity per person and period, summed across every platform that books them.

The inputs are the store's assignments (with their timephased periods where the platform keeps
them), the capacity rows platforms keep, the people and the work items. Everything is brought
down to working days first — a bucket's hours spread evenly over the working days it covers,
an untimephased assignment's total over the working days between its start and finish, a
person's capacity from the platform's rows where one keeps them, else the City's working
calendar (``[metrics.calendar]``: its workdays, its hours from ``start`` to ``end``, less its
holidays) — and then summed into the weeks or months asked for. Working on days makes a
weekly bucket that straddles two months land in both, and makes the answer the same whatever
grain each platform keeps.

People join across platforms on their UPN or e-mail (:func:`..model.normalize_email`). A
booking that names its person only by display name is matched when exactly one person carries
that name, and reported otherwise; a booking of a role with nobody named (``generic``) is
demand shown apart from named people. Nothing is dropped: what cannot be placed is a
:class:`Problem` naming the record.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, cached_property
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..config import CalendarConfig
from ..errors import ConfigError
from ..model import normalize_email
from ..store import ENTITY_TABLES, Store

GROUPINGS = ("person", "role", "department", "team", "platform")
GRAINS = ("week", "month")
OVER_ALLOCATED = 1.10
"""Utilization above which a person is over-allocated (110 %)."""


# -- inputs ---------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The store's rows the plan is computed from (plain dicts, as the store gives them)."""

    assignments: list[dict[str, Any]] = field(default_factory=list)
    periods: list[dict[str, Any]] = field(default_factory=list)
    capacities: list[dict[str, Any]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    work_items: list[dict[str, Any]] = field(default_factory=list)


def load(store: Store, source: str | None = None) -> Inputs:
    """The live rows of the entities the plan reads, in a stable order (both stores alike)."""

    def rows(entity: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        t = ENTITY_TABLES[entity]
        # Every column but the native fields (``extra``), which the plan never reads: decoding
        # their JSON was a fifth of the load.
        picked = [t.c[c] for c in columns] if columns else [c for c in t.c if c.name != "extra"]
        where: list[Any] = [t.c.deleted.is_(False)]
        if source and entity != "person":
            where.append(t.c.source == source)
        query = sa.select(*picked).where(*where).order_by(t.c.source, t.c.source_id)
        with store.engine.connect() as conn:
            result = conn.execute(query)
            names = list(result.keys())
            return [dict(zip(names, row, strict=True)) for row in result]

    work_columns = (
        "source", "platform", "source_id", "kind", "number", "name", "state", "department",
        "parent_id", "planned_start", "planned_finish", "url",
    )  # fmt: skip
    return Inputs(
        assignments=rows("assignment"),
        periods=rows("assignment_period"),
        capacities=rows("capacity"),
        people=rows("person"),
        work_items=rows("work_item", work_columns),
    )


# -- calendars ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and hours per day: the City's calendar, or a person's part-time share of it."""

    workdays: frozenset[int]
    hours_per_day: float
    holidays: frozenset[date] = frozenset()
    zone: ZoneInfo = ZoneInfo("UTC")

    @classmethod
    def from_config(cls, config: CalendarConfig) -> WorkCalendar:
        """The City's calendar: its workdays, ``hours_per_day`` (default ``end - start``) hours
        a day, its holidays."""

        def minutes(text: str) -> int:
            hours, mins = (int(part) for part in text.split(":"))
            return hours * 60 + mins

        span = max(0, minutes(config.end) - minutes(config.start)) / 60
        return cls(
            workdays=frozenset(config.workdays),
            hours_per_day=config.hours_per_day or span,
            holidays=frozenset(config.holidays),
            zone=ZoneInfo(config.timezone),
        )

    def is_working(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def working_days(self, start: date, end: date) -> list[date]:
        """The working days from ``start`` up to, not including, ``end``."""
        out, day = [], start
        while day < end:
            if self.is_working(day):
                out.append(day)
            day += timedelta(days=1)
        return out

    def count_working_days(self, start: date, end: date) -> int:
        """How many working days :meth:`working_days` gives, without walking the span: whole
        weeks hold ``len(workdays)`` each, the days left over are counted one by one, and the
        holidays on a workday within the span are taken off."""
        if end <= start:
            return 0
        weeks, rest = divmod((end - start).days, 7)
        first = start.weekday()
        count = weeks * len(self.workdays)
        count += sum(1 for i in range(rest) if (first + i) % 7 in self.workdays)
        off = self._workday_holidays
        return count - (bisect_left(off, end) - bisect_left(off, start))

    @cached_property
    def _workday_holidays(self) -> list[date]:
        return sorted(h for h in self.holidays if h.weekday() in self.workdays)

    def local_date(self, moment: datetime | date | None) -> date | None:
        if moment is None:
            return None
        if isinstance(moment, datetime):
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return aware.astimezone(self.zone).date()
        return moment


# -- periods --------------------------------------------------------------------------------------


def period_of(day: date, grain: str) -> date:
    """The first day of the week (Monday) or month ``day`` falls in."""
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise ConfigError(f"granularity must be one of {', '.join(GRAINS)}, not {grain!r}")


def next_period(start: date, grain: str) -> date:
    if grain == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_label(start: date, grain: str) -> str:
    """``2026-03`` for a month, ``2026-W10`` (ISO week) for a week."""
    if grain == "month":
        return f"{start.year:04d}-{start.month:02d}"
    year, week, _ = start.isocalendar()
    return f"{year:04d}-W{week:02d}"


def periods_between(start: date, end: date, grain: str) -> list[date]:
    """The periods that overlap ``start`` up to, not including, ``end``."""
    out, at = [], period_of(start, grain)
    while at < end:
        out.append(at)
        at = next_period(at, grain)
    return out


# -- results --------------------------------------------------------------------------------------


@dataclass
class Problem:
    """A record the plan could not place as it stands, and what was done with it."""

    kind: str
    """``ambiguous_name``, ``unknown_name``, ``no_person``, ``outside_work_item``,
    ``timephased_gap``, ``no_dates``, ``inactive_booked``, ``unknown_work_item``."""
    source: str
    entity: str
    source_id: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "entity": self.entity,
            "source_id": self.source_id,
            "message": self.message,
        }


@dataclass
class PersonInfo:
    """One person as the platforms know them, joined on the UPN."""

    key: str
    name: str | None = None
    department: str | None = None
    role: str | None = None
    team: str | None = None
    platforms: set[str] = field(default_factory=set)
    """Platforms that book or know the person."""
    active_on: set[str] = field(default_factory=set)
    inactive_on: set[str] = field(default_factory=set)
    matched_by_name: set[str] = field(default_factory=set)
    """Sources whose bookings named the person by display name only."""


@dataclass
class Cell:
    """One row's numbers in one period."""

    demand: float = 0.0
    capacity: float = 0.0
    by_platform: dict[str, float] = field(default_factory=dict)

    @property
    def utilization(self) -> float | None:
        return None if self.capacity <= 0 else self.demand / self.capacity

    def as_json(self) -> dict[str, Any]:
        u = self.utilization
        return {
            "demand_hours": round(self.demand, 2),
            "capacity_hours": round(self.capacity, 2),
            "utilization": None if u is None else round(u, 4),
            "by_platform": {k: round(v, 2) for k, v in sorted(self.by_platform.items())},
        }


@dataclass
class Finding:
    """A person booked on several platforms whose sum passes their capacity in a period."""

    person: str
    name: str | None
    period: str
    demand: float
    capacity: float
    by_platform: dict[str, float]
    hidden: bool
    """True when no single platform's bookings pass the capacity: only the sum does (the
    finding no platform can make)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "name": self.name,
            "period": self.period,
            "demand_hours": round(self.demand, 2),
            "capacity_hours": round(self.capacity, 2),
            "utilization": round(self.demand / self.capacity, 4) if self.capacity else None,
            "by_platform": {k: round(v, 2) for k, v in sorted(self.by_platform.items())},
            "hidden": self.hidden,
        }


@dataclass
class CapacityPlan:
    """Demand against capacity per row (person, role, ...) and period."""

    by: str
    granularity: str
    periods: list[date]
    rows: dict[str, dict[date, Cell]]
    labels: dict[str, str]
    """Row key -> what to show (a person's name and UPN)."""
    generic: dict[str, dict[date, Cell]]
    """Demand for roles nobody is named on, by role; shown apart (no capacity of its own)."""
    unresolved: dict[date, Cell]
    """Demand whose person could not be told (ambiguous or unknown name): counted, not lost."""
    people: dict[str, PersonInfo]
    person_cells: dict[str, dict[date, Cell]]
    findings: list[Finding]
    problems: list[Problem]
    sources_with_assignments: list[str]
    capacity_basis: dict[str, str]
    """Person -> ``platform`` (a platform's capacity rows) or ``calendar`` (the City's)."""

    def period_labels(self) -> list[str]:
        return [period_label(p, self.granularity) for p in self.periods]

    def over_allocated(
        self, threshold: float = OVER_ALLOCATED, months: int = 2
    ) -> dict[str, list[str]]:
        """People above ``threshold`` for ``months`` consecutive periods or more: person ->
        the periods of their longest such run."""
        out: dict[str, list[str]] = {}
        for person, cells in self.person_cells.items():
            run: list[str] = []
            best: list[str] = []
            for period in self.periods:
                u = cells.get(period, Cell()).utilization
                if u is not None and u > threshold:
                    run.append(period_label(period, self.granularity))
                    if len(run) > len(best):
                        best = list(run)
                else:
                    run = []
            if len(best) >= months:
                out[person] = best
        return out

    def as_json(self) -> dict[str, Any]:
        labels = self.period_labels()

        def table(rows: Mapping[str, Mapping[date, Cell]]) -> dict[str, Any]:
            return {
                key: {
                    label: cells.get(p, Cell()).as_json()
                    for p, label in zip(self.periods, labels, strict=True)
                }
                for key, cells in sorted(rows.items())
            }

        return {
            "by": self.by,
            "granularity": self.granularity,
            "periods": labels,
            "rows": table(self.rows),
            "labels": dict(sorted(self.labels.items())),
            "generic_demand": table(self.generic),
            "unresolved_demand": {
                label: self.unresolved.get(p, Cell()).as_json()
                for p, label in zip(self.periods, labels, strict=True)
            },
            "multi_platform_overbooked": [f.as_json() for f in self.findings],
            "over_allocated": self.over_allocated(),
            "problems": [p.as_json() for p in self.problems],
            "sources_with_assignments": self.sources_with_assignments,
            "capacity_basis": dict(sorted(self.capacity_basis.items())),
        }


# -- the computation ------------------------------------------------------------------------------


def _fold(name: str | None) -> str:
    return " ".join((name or "").split()).casefold()


class _People:
    """People by UPN, and display names that lead to exactly one of them."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.info: dict[str, PersonInfo] = {}
        self.by_resource: dict[tuple[str, str], str] = {}
        names: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            key = normalize_email(row.get("upn")) or normalize_email(row.get("email"))
            if key is None:
                continue
            info = self.info.setdefault(key, PersonInfo(key))
            info.name = info.name or row.get("name")
            if row.get("active") is False:
                info.inactive_on.add(str(row["source"]))
            else:
                info.active_on.add(str(row["source"]))
                info.department = row.get("department") or info.department
            info.department = info.department or row.get("department")
            self.by_resource[(str(row["source"]), str(row["source_id"]))] = key
            if row.get("name"):
                names[_fold(row["name"])].add(key)
        self.names = names

    def by_name(self, name: str | None) -> set[str]:
        return self.names.get(_fold(name), set()) if name else set()


def compute(
    inputs: Inputs,
    calendar: CalendarConfig,
    *,
    start: date,
    end: date,
    by: str = "person",
    granularity: str = "month",
) -> CapacityPlan:
    """Demand against capacity from ``start`` up to, not including, ``end``."""
    if by not in GROUPINGS:
        raise ConfigError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    if granularity not in GRAINS:
        raise ConfigError(f"--granularity must be one of {', '.join(GRAINS)}, not {granularity!r}")
    if end <= start:
        raise ConfigError(f"--to ({end}) must be after --from ({start})")
    city = WorkCalendar.from_config(calendar)
    # The working days of a span, walked once per span (bookings and capacity rows share a
    # handful of month and week bounds): walked per row, they were most of the plan's time
    # (20,000 assignments and 24,000 timephased periods: 3.4 s of 6). Read, never changed.
    working_days = cache(city.working_days)
    people = _People(inputs.people)
    problems: list[Problem] = []
    work = {(str(w["source"]), str(w["source_id"])): w for w in inputs.work_items}
    periods_of: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in inputs.periods:
        periods_of[(str(row["source"]), str(row["assignment_id"]))].append(row)

    # Demand per (who, day): who is ("person", upn), ("generic", role) or ("unresolved", "").
    demand: dict[tuple[str, str], dict[date, dict[str, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    roles: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    teams: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def spread(
        target: dict[date, dict[str, float]], platform: str, hours: float, lo: date, hi: date
    ) -> None:
        # Each working day of the span gets its share, but only the days inside the window are
        # walked: a year-long booking seen through a six-month window is half outside it (at
        # 4,000 bookings, walking every span was 0.8 s of the compliance run's plan).
        count = city.count_working_days(lo, hi)
        if not count:  # hours on a day off land on its first day
            if start <= lo < end:
                target[lo][platform] += hours
            return
        each = hours / count
        for day in working_days(max(lo, start), min(hi, end)):
            target[day][platform] += each

    sources = sorted({str(a["source"]) for a in inputs.assignments})
    for a in inputs.assignments:
        src, sid, platform = str(a["source"]), str(a["source_id"]), str(a["platform"])
        where = f"assignment {sid} of source {src}"
        key = normalize_email(a.get("person_upn"))
        if key is None and a.get("resource_id"):
            key = people.by_resource.get((src, str(a["resource_id"])))
        if a.get("generic"):
            who = ("generic", a.get("role") or "(unnamed role)")
        elif key is not None:
            who = ("person", key)
        else:
            found = people.by_name(a.get("person_name"))
            if len(found) == 1:
                key = next(iter(found))
                who = ("person", key)
                people.info[key].matched_by_name.add(src)
            else:
                who = ("unresolved", "")
                if not a.get("person_name"):
                    kind, text = "no_person", "names no person and no role"
                elif found:
                    kind = "ambiguous_name"
                    text = (
                        f"names its person only as {a['person_name']!r}, which "
                        f"{len(found)} people carry ({', '.join(sorted(found))}): not matched"
                    )
                else:
                    kind = "unknown_name"
                    text = f"names its person only as {a['person_name']!r}, whom no platform knows"
                problems.append(
                    Problem(
                        kind,
                        src,
                        "assignment",
                        sid,
                        f"{where} {text}; its hours are shown as unresolved demand",
                    )
                )
        if who[0] == "person":
            info = people.info.setdefault(who[1], PersonInfo(who[1], name=a.get("person_name")))
            info.platforms.add(platform)
            if a.get("role"):
                roles[who[1]][str(a["role"])] += float(a.get("planned_hours") or 0)
            if a.get("team"):
                teams[who[1]][str(a["team"])] += float(a.get("planned_hours") or 0)
            info.department = info.department or a.get("department")
            if src in info.inactive_on and src not in info.active_on or a.get("active") is False:
                problems.append(
                    Problem(
                        "inactive_booked", src, "assignment", sid,
                        f"{where} books {who[1]}, who is inactive on that platform"
                        + (f" but active on {', '.join(sorted(info.active_on))}" if info.active_on else "")
                        + "; the hours are counted",
                    )
                )  # fmt: skip
        item = work.get((src, str(a.get("work_item_id")))) if a.get("work_item_id") else None
        if a.get("work_item_id") and item is None:
            item = work.get((src, str(a.get("project_id")))) if a.get("project_id") else None
        a_start, a_finish = city.local_date(a.get("start")), city.local_date(a.get("finish"))
        if item is not None:
            w_start = city.local_date(item.get("planned_start"))
            w_finish = city.local_date(item.get("planned_finish"))
            if (
                a_start
                and w_start
                and a_start < w_start
                or a_finish
                and w_finish
                and a_finish > w_finish
            ):
                problems.append(
                    Problem(
                        "outside_work_item", src, "assignment", sid,
                        f"{where} runs {a_start} to {a_finish}, outside its work item "
                        f"{item.get('number') or item.get('name')} ({w_start} to {w_finish}); "
                        "its hours are counted where they are booked",
                    )
                )  # fmt: skip
        target = demand[who]
        buckets = periods_of.get((src, sid), [])
        if buckets:
            booked = 0.0
            for b in sorted(buckets, key=lambda r: r["period_start"]):
                hours = float(b.get("planned_hours") or 0)
                booked += hours
                spread(target, platform, hours, b["period_start"], b["period_finish"])
            total = a.get("planned_hours")
            if total is not None and abs(float(total) - booked) > 0.01:
                problems.append(
                    Problem(
                        "timephased_gap", src, "assignment", sid,
                        f"{where} plans {float(total):g} h but its timephased periods hold "
                        f"{booked:g} h; the periods are used (a period without a row books nothing)",
                    )
                )  # fmt: skip
            continue
        if a_start is None or a_finish is None:
            if item is not None:
                a_start = a_start or city.local_date(item.get("planned_start"))
                a_finish = a_finish or city.local_date(item.get("planned_finish"))
        hours = float(a.get("planned_hours") or 0)
        if a_start is None or a_finish is None:
            if hours:
                problems.append(
                    Problem(
                        "no_dates", src, "assignment", sid,
                        f"{where} plans {hours:g} h but neither it nor its work item has dates: "
                        "it cannot be placed in a period",
                    )
                )  # fmt: skip
            continue
        spread(target, platform, hours, a_start, a_finish + timedelta(days=1))

    # Capacity per (person, day): a platform's rows where one keeps them, else the calendar.
    stored: dict[str, dict[date, float]] = defaultdict(dict)
    basis: dict[str, str] = {}
    covered: dict[str, tuple[date, date]] = {}
    """Person -> the span their platform's capacity rows cover: outside it, the calendar."""
    for c in sorted(inputs.capacities, key=lambda r: (str(r["source"]), r["period_start"])):
        key = normalize_email(c.get("person_upn"))
        if key is None and c.get("resource_id"):
            key = people.by_resource.get((str(c["source"]), str(c["resource_id"])))
        if key is None:
            found = people.by_name(c.get("person_name"))
            key = next(iter(found)) if len(found) == 1 else None
        if key is None:
            continue
        if c.get("role"):
            roles[key][str(c["role"])] += 0.0
        if c.get("team"):
            teams[key][str(c["team"])] += 0.0
        days = working_days(c["period_start"], c["period_finish"])
        hours = float(c["hours"])
        lo, hi = covered.get(key, (c["period_start"], c["period_finish"]))
        covered[key] = (min(lo, c["period_start"]), max(hi, c["period_finish"]))
        for day in days:
            # The first source (by name) that keeps a day wins: two platforms describing the
            # same person's availability are not two people's.
            stored[key].setdefault(day, hours / len(days))
        if not days and hours:
            stored[key].setdefault(c["period_start"], hours)
        basis[key] = "platform"

    persons = sorted(k for kind, k in demand if kind == "person")
    persons = sorted(set(persons) | set(stored))
    grain_periods = periods_between(start, end, granularity)
    person_cells: dict[str, dict[date, Cell]] = {}
    for key in persons:
        cells = {p: Cell() for p in grain_periods}
        own = stored.get(key)
        day = start
        while day < end:
            cell = cells[period_of(day, granularity)]
            if own is not None and covered[key][0] <= day < covered[key][1]:
                cell.capacity += own.get(day, 0.0)
            elif city.is_working(day):
                cell.capacity += city.hours_per_day
            for platform, hours in demand.get(("person", key), {}).get(day, {}).items():
                cell.demand += hours
                cell.by_platform[platform] = cell.by_platform.get(platform, 0.0) + hours
            day += timedelta(days=1)
        person_cells[key] = cells
        basis.setdefault(key, "calendar")
        info = people.info.setdefault(key, PersonInfo(key))
        booked_as, booked_in = roles.get(info.key), teams.get(info.key)
        if booked_as:
            info.role = max(sorted(booked_as), key=booked_as.__getitem__)
        if booked_in:
            info.team = max(sorted(booked_in), key=booked_in.__getitem__)

    def cells_of(who: tuple[str, str]) -> dict[date, Cell]:
        cells = {p: Cell() for p in grain_periods}
        for day, platforms in demand.get(who, {}).items():
            cell = cells[period_of(day, granularity)]
            for platform, hours in platforms.items():
                cell.demand += hours
                cell.by_platform[platform] = cell.by_platform.get(platform, 0.0) + hours
        return cells

    generic = {role: cells_of(("generic", role)) for kind, role in demand if kind == "generic"}
    unresolved = cells_of(("unresolved", ""))

    findings: list[Finding] = []
    for key in persons:
        for period, cell in person_cells[key].items():
            if len(cell.by_platform) < 2 or cell.capacity <= 0 or cell.demand <= cell.capacity:
                continue
            hidden = all(v <= cell.capacity for v in cell.by_platform.values())
            findings.append(
                Finding(
                    key, people.info[key].name, period_label(period, granularity),
                    cell.demand, cell.capacity, dict(cell.by_platform), hidden,
                )
            )  # fmt: skip

    rows, labels = _group(by, persons, person_cells, people.info, grain_periods)
    return CapacityPlan(
        by=by,
        granularity=granularity,
        periods=grain_periods,
        rows=rows,
        labels=labels,
        generic=generic,
        unresolved=unresolved,
        people={k: people.info[k] for k in persons},
        person_cells=person_cells,
        findings=findings,
        problems=problems,
        sources_with_assignments=sources,
        capacity_basis={k: basis[k] for k in persons},
    )


def _group(
    by: str,
    persons: list[str],
    person_cells: Mapping[str, Mapping[date, Cell]],
    info: Mapping[str, PersonInfo],
    periods: list[date],
) -> tuple[dict[str, dict[date, Cell]], dict[str, str]]:
    if by == "person":
        rows = {k: dict(person_cells[k]) for k in persons}
        labels = {k: f"{info[k].name} <{k}>" if info[k].name else k for k in persons}
        return rows, labels
    grouped: dict[str, dict[date, Cell]] = {}
    for key in persons:
        if by == "platform":
            groups = sorted({p for c in person_cells[key].values() for p in c.by_platform})
        else:
            groups = [getattr(info[key], by) or "(none)"]
        for group in groups:
            cells = grouped.setdefault(group, {p: Cell() for p in periods})
            for period, cell in person_cells[key].items():
                into = cells[period]
                into.capacity += cell.capacity
                if by == "platform":
                    hours = cell.by_platform.get(group, 0.0)
                    into.demand += hours
                    if hours:
                        into.by_platform[group] = into.by_platform.get(group, 0.0) + hours
                else:
                    into.demand += cell.demand
                    for platform, hours in cell.by_platform.items():
                        into.by_platform[platform] = into.by_platform.get(platform, 0.0) + hours
    return grouped, {k: k for k in grouped}


def default_window(today: date, months: int = 6) -> tuple[date, date]:
    """From the first of this month, ``months`` months on."""
    first = today.replace(day=1)
    end = first
    for _ in range(months):
        end = next_period(end, "month")
    return first, end


def as_date(value: datetime | date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)
