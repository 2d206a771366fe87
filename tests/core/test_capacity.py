"""Resource capacity: hand-worked utilization across two platforms, and each bad input of
issue 20 (display names, dates outside the work item, gaps, holidays, inactive people), on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from itcrosswalk.core.capacity import capacity_by_role, compute, load, plan
from itcrosswalk.core.capacity.engine import WorkCalendar
from itcrosswalk.core.config import CalendarConfig, Config, MetricsConfig
from itcrosswalk.core.model import Assignment, AssignmentPeriod, Capacity, Person, Record, WorkItem
from itcrosswalk.core.store import Store

# March 2026: 1 March is a Sunday; 22 weekdays, and the City's holiday on Tuesday 17 March
# leaves 21 working days. The City works 09:00-17:00: 8 hours a day.
HOLIDAY = date(2026, 3, 17)
CALENDAR = CalendarConfig(start="09:00", end="17:00", holidays=[HOLIDAY])
CONFIG = Config(metrics=MetricsConfig(calendar=CALENDAR))
MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def weekdays(start: date, end: date) -> list[date]:
    days, day = [], start
    while day < end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def person(source: str, platform: str, sid: str, upn: str | None, name: str, **kw: Any) -> Person:
    return Person(source=source, platform=platform, source_id=sid, upn=upn, name=name, **kw)


def project(source: str, platform: str, sid: str, start: date, finish: date, **kw: Any) -> WorkItem:
    return WorkItem(
        source=source, platform=platform, source_id=sid, kind="project", name=f"Project {sid}",
        planned_start=at(start), planned_finish=at(finish), **kw,
    )  # fmt: skip


def dana_records() -> list[Record]:
    """Dana, part-time (6 h a day on Project Server's calendar, which knows the holiday), is
    booked 60 h in March on a ServiceNow resource plan (no timephasing) and 4 h every weekday
    in March on a Project Server task (timephased by day, the holiday included: Project books
    it). Eli, full-time on the City's calendar, is booked 84 h on ServiceNow."""
    records: list[Record] = [
        person("snow", "servicenow", "u-dana", "Dana.Reyes@city.example.gov", "Dana Reyes"),
        person("pwa", "project_online", "r-dana", "dana.reyes@city.example.gov", "Dana Reyes"),
        person("snow", "servicenow", "u-eli", "eli.ward@city.example.gov", "Eli Ward"),
        project("snow", "servicenow", "p1", MARCH, date(2026, 6, 30)),
        project("pwa", "project_online", "p2", MARCH, date(2026, 6, 30)),
        Assignment(
            source="snow", platform="servicenow", source_id="rp1", work_item_id="p1",
            project_id="p1", person_upn="dana.reyes@city.example.gov", role="Developer",
            start=at(MARCH), finish=at(date(2026, 3, 31)), planned_hours=60,
        ),
        Assignment(
            source="pwa", platform="project_online", source_id="as1", work_item_id="p2",
            project_id="p2", resource_id="r-dana", person_name="Dana Reyes", role="Developer",
            start=at(date(2026, 3, 2)), finish=at(date(2026, 3, 31)), planned_hours=88,
            granularity="day",
        ),
        Assignment(
            source="snow", platform="servicenow", source_id="rp2", work_item_id="p1",
            person_upn="eli.ward@city.example.gov", role="Analyst",
            start=at(MARCH), finish=at(date(2026, 3, 31)), planned_hours=84,
        ),
    ]  # fmt: skip
    for day in weekdays(MARCH, APRIL):
        records.append(
            AssignmentPeriod(
                source="pwa", platform="project_online", source_id=f"as1:{day}",
                assignment_id="as1", period_start=day, period_finish=day + timedelta(days=1),
                granularity="day", planned_hours=4,
            )
        )  # fmt: skip
        records.append(
            Capacity(
                source="pwa", platform="project_online", source_id=f"r-dana:{day}",
                resource_id="r-dana", period_start=day, period_finish=day + timedelta(days=1),
                granularity="day", hours=0 if day == HOLIDAY else 6, calendar="Part-time 75%",
            )
        )  # fmt: skip
    return records


def put(store: Store, records: list[Record]) -> None:
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.source, record.ENTITY), []).append(record)
    for (source, entity), batch in groups.items():
        store.write_page(source=source, stream=entity, entity=entity, records=batch)


@pytest.fixture
def store(store_url: str) -> Any:
    opened = Store(store_url)
    yield opened
    opened.close()


def test_hand_worked_utilization_across_two_platforms_with_a_holiday_and_a_part_time_calendar(
    store: Store,
) -> None:
    put(store, dana_records())
    result = plan(store, CONFIG, start=MARCH, end=APRIL)
    dana = result.person_cells["dana.reyes@city.example.gov"][MARCH]
    # Capacity: 21 working days (22 weekdays less the holiday, which Project's calendar gives
    # 0 h) x 6 h = 126 h. Demand: ServiceNow's 60 h spread over March's working days (all in
    # March) + Project's 22 booked days x 4 h = 88 h, the holiday's 4 h included: 148 h.
    assert dana.capacity == pytest.approx(126.0)
    assert dana.demand == pytest.approx(148.0)
    assert dana.by_platform == pytest.approx({"servicenow": 60.0, "project_online": 88.0})
    assert dana.utilization == pytest.approx(148 / 126)
    # Eli: no platform keeps his capacity, so the City's calendar: 21 days x 8 h = 168 h.
    eli = result.person_cells["eli.ward@city.example.gov"][MARCH]
    assert (eli.capacity, eli.demand) == pytest.approx((168.0, 84.0))
    assert result.capacity_basis == {
        "dana.reyes@city.example.gov": "platform",
        "eli.ward@city.example.gov": "calendar",
    }
    # The finding no platform makes: neither platform alone passes Dana's 126 h, the sum does.
    [finding] = result.findings
    assert (finding.person, finding.period, finding.hidden) == (
        "dana.reyes@city.example.gov", "2026-03", True,
    )  # fmt: skip
    assert result.problems == []


def test_by_week_a_week_with_the_holiday_has_four_working_days(store: Store) -> None:
    put(store, dana_records())
    result = plan(store, CONFIG, start=date(2026, 3, 16), end=date(2026, 3, 23), granularity="week")
    week = result.person_cells["dana.reyes@city.example.gov"][date(2026, 3, 16)]
    # 4 working days x 6 h; ServiceNow's 60 h / 21 working days x 4, Project's 5 x 4 h.
    assert week.capacity == pytest.approx(24.0)
    assert week.by_platform["servicenow"] == pytest.approx(60 / 21 * 4)
    assert week.by_platform["project_online"] == pytest.approx(20.0)
    assert result.period_labels() == ["2026-W12"]


def test_a_holiday_on_a_working_day_takes_its_hours_out_of_the_city_calendar(store: Store) -> None:
    put(store, dana_records())
    without = compute(
        load(store), CalendarConfig(start="09:00", end="17:00"), start=MARCH, end=APRIL
    )
    assert without.person_cells["eli.ward@city.example.gov"][MARCH].capacity == 176.0  # 22 x 8
    assert (
        plan(store, CONFIG, start=MARCH, end=APRIL)
        .person_cells["eli.ward@city.example.gov"][MARCH]
        .capacity
        == 168.0
    )


def test_by_role_and_the_function_the_investment_selection_reads(store: Store) -> None:
    put(store, dana_records())
    result = plan(store, CONFIG, start=MARCH, end=APRIL, by="role")
    assert set(result.rows) == {"Developer", "Analyst"}
    roles = capacity_by_role(store, CONFIG, start=MARCH, end=APRIL)
    assert roles["Developer"]["2026-03"] == {"capacity": 126.0, "demand": 148.0, "available": -22.0}
    assert roles["Analyst"]["2026-03"] == {"capacity": 168.0, "demand": 84.0, "available": 84.0}


def _booking(sid: str, **kw: Any) -> Assignment:
    base: dict[str, Any] = dict(
        source="pwa", platform="project_online", source_id=sid, work_item_id="p2",
        start=at(date(2026, 3, 2)), finish=at(date(2026, 3, 31)), planned_hours=42,
    )  # fmt: skip
    base.update(kw)
    return Assignment(**base)


def test_a_person_known_only_by_display_name_is_matched_only_when_unambiguous(
    store: Store,
) -> None:
    records = dana_records() + [
        person("snow", "servicenow", "u-sam1", "sam.lee@city.example.gov", "Sam Lee"),
        person("snow", "servicenow", "u-sam2", "sam.lee2@city.example.gov", "Sam  LEE"),
        _booking("as-eli", person_name="eli ward"),
        _booking("as-sam", person_name="Sam Lee"),
        _booking("as-nobody", person_name="Nobody Known"),
    ]
    put(store, records)
    result = plan(store, CONFIG, start=MARCH, end=APRIL)
    eli = result.person_cells["eli.ward@city.example.gov"][MARCH]
    assert eli.by_platform == pytest.approx({"servicenow": 84.0, "project_online": 42.0})
    assert "pwa" in result.people["eli.ward@city.example.gov"].matched_by_name
    kinds = {(p.kind, p.source_id) for p in result.problems}
    assert kinds == {("ambiguous_name", "as-sam"), ("unknown_name", "as-nobody")}
    ambiguous = next(p for p in result.problems if p.kind == "ambiguous_name")
    assert "2 people" in ambiguous.message and "sam.lee2@city.example.gov" in ambiguous.message
    # Nothing is lost: the two unmatched bookings are unresolved demand, not anybody's.
    assert result.unresolved[MARCH].demand == pytest.approx(84.0)


def test_an_assignment_outside_its_work_items_dates_is_reported_and_counted(
    store: Store,
) -> None:
    put(store, [*dana_records(), _booking("as-early", person_upn="eli.ward@city.example.gov",
        start=at(date(2026, 2, 2)), finish=at(date(2026, 3, 6)), planned_hours=100)])  # fmt: skip
    result = plan(store, CONFIG, start=date(2026, 2, 1), end=APRIL)
    [problem] = result.problems
    assert (problem.kind, problem.source, problem.source_id) == (
        "outside_work_item",
        "pwa",
        "as-early",
    )
    assert "2026-02-02" in problem.message and "2026-03-01" in problem.message
    # 25 working days (20 in February, 5 in March): 4 h each.
    eli = result.person_cells["eli.ward@city.example.gov"]
    assert eli[date(2026, 2, 1)].by_platform["project_online"] == pytest.approx(80.0)
    assert eli[MARCH].by_platform["project_online"] == pytest.approx(20.0)


def test_a_timephased_series_with_gaps_books_nothing_in_the_gap_and_says_so(store: Store) -> None:
    records = [r for r in dana_records() if not isinstance(r, AssignmentPeriod)]
    # Weekly buckets for weeks 1, 2 and 4 of March only: week 3 (16-20 March) is a gap.
    for monday in (date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 23)):
        records.append(
            AssignmentPeriod(
                source="pwa", platform="project_online", source_id=f"as1:{monday}",
                assignment_id="as1", period_start=monday, period_finish=monday + timedelta(days=7),
                granularity="week", planned_hours=20,
            )
        )  # fmt: skip
    put(store, records)
    result = plan(store, CONFIG, start=MARCH, end=APRIL, granularity="week")
    dana = result.person_cells["dana.reyes@city.example.gov"]
    assert dana[date(2026, 3, 16)].by_platform.get("project_online", 0.0) == 0.0
    assert dana[date(2026, 3, 9)].by_platform["project_online"] == pytest.approx(20.0)
    [gap] = [p for p in result.problems if p.kind == "timephased_gap"]
    assert gap.source_id == "as1" and "88 h" in gap.message and "60 h" in gap.message


def test_a_person_inactive_on_one_platform_and_active_on_another_is_one_person(
    store: Store,
) -> None:
    records = dana_records()
    records[1] = person(
        "pwa", "project_online", "r-dana", "dana.reyes@city.example.gov", "Dana Reyes",
        active=False, department="ITD",
    )  # fmt: skip
    put(store, records)
    result = plan(store, CONFIG, start=MARCH, end=APRIL, by="department")
    info = result.people["dana.reyes@city.example.gov"]
    assert (info.active_on, info.inactive_on) == ({"snow"}, {"pwa"})
    assert result.person_cells["dana.reyes@city.example.gov"][MARCH].demand == pytest.approx(148.0)
    [problem] = result.problems
    assert problem.kind == "inactive_booked" and problem.source_id == "as1"
    assert "active on snow" in problem.message


def test_generic_role_demand_is_shown_apart(store: Store) -> None:
    put(store, [*dana_records(), _booking("as-dba", generic=True, role="DBA", planned_hours=21)])
    result = plan(store, CONFIG, start=MARCH, end=APRIL)
    assert result.generic["DBA"][MARCH].demand == pytest.approx(21.0)
    assert all("DBA" not in key for key in result.rows)
    assert capacity_by_role(store, CONFIG, start=MARCH, end=APRIL)["DBA"]["2026-03"] == {
        "capacity": 0.0, "demand": 21.0, "available": -21.0,
    }  # fmt: skip


def test_hours_per_day_sets_a_working_day_apart_from_the_business_hours(store: Store) -> None:
    # 08:00-17:00 business hours with an unpaid lunch hour: a person gives 8 hours, not 9.
    put(store, dana_records())
    nine = compute(load(store), CalendarConfig(start="08:00", end="17:00"), start=MARCH, end=APRIL)
    eight = compute(
        load(store),
        CalendarConfig(start="08:00", end="17:00", hours_per_day=8),
        start=MARCH,
        end=APRIL,
    )
    assert nine.person_cells["eli.ward@city.example.gov"][MARCH].capacity == 198.0  # 22 x 9
    assert eight.person_cells["eli.ward@city.example.gov"][MARCH].capacity == 176.0  # 22 x 8


def test_a_booking_longer_than_the_window_puts_only_its_share_of_working_days_in_it(
    store: Store,
) -> None:
    # Project's 1,000 h from 1 January to 31 December 2026 (outside its work item, so also a
    # problem, but counted where booked): 261 weekdays, less the holiday on 17 March,
    # 260 working days. March, seen through a March-April window, holds 21 of them; April 22.
    put(
        store,
        [
            *dana_records(),
            _booking(
                "as-year", person_upn="eli.ward@city.example.gov",
                start=at(date(2026, 1, 1)), finish=at(date(2026, 12, 31)), planned_hours=1000,
            ),
        ],
    )  # fmt: skip
    result = plan(store, CONFIG, start=MARCH, end=date(2026, 5, 1))
    eli = result.person_cells["eli.ward@city.example.gov"]
    assert eli[MARCH].by_platform == pytest.approx(
        {"servicenow": 84.0, "project_online": 1000 * 21 / 260}
    )
    assert eli[APRIL].by_platform == pytest.approx({"project_online": 1000 * 22 / 260})


def test_a_spans_working_days_are_counted_as_its_walk_finds_them() -> None:
    rng = random.Random(20261201)
    for _ in range(300):
        workdays = frozenset(rng.sample(range(7), rng.randint(0, 7)))
        base = date(2025, 1, 1)
        holidays = frozenset(
            base + timedelta(days=rng.randrange(900)) for _ in range(rng.randint(0, 40))
        )
        city = WorkCalendar(workdays=workdays, hours_per_day=8, holidays=holidays)
        lo = base + timedelta(days=rng.randrange(-30, 900))
        hi = lo + timedelta(days=rng.randrange(-5, 400))
        assert city.count_working_days(lo, hi) == len(city.working_days(lo, hi)), (lo, hi)
