"""The standard metric pack against a small store whose answers were worked out by hand.

The store (on SQLite and on PostgreSQL) holds 14 tickets, 4 SLA records, 8 work items, 6
demands and 9 devices, chosen for the edge cases: tickets still open, resolved before opened,
on hold, across a weekend and a holiday; projects with zero or no budget; placeholder serials.
The moment of reading is Monday 2026-03-16 12:00 UTC; the calendar is UTC, Monday to Friday,
08:00-17:00 (9 working hours a day), with Tuesday 2026-03-10 a holiday.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from itcrosswalk.core.config import CalendarConfig, Config, MetricsConfig
from itcrosswalk.core.metrics import (
    DIMENSIONS,
    Measure,
    MetricContext,
    MetricResult,
    SqlMetric,
    all_metrics,
    compute_metrics,
)
from itcrosswalk.core.metrics.calendar import BusinessCalendar
from itcrosswalk.core.model import Demand, Device, Record, SlaRecord, Ticket, WorkItem
from itcrosswalk.core.store import Store
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.registry import make_registry

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ticket(n: int, **kw: Any) -> Ticket:
    base: dict[str, Any] = {
        "source": "snow",
        "platform": "servicenow",
        "source_id": f"t{n:02d}",
        "number": f"INC{n:04d}",
        "kind": "incident",
        "state": "closed",
    }
    return Ticket(**(base | kw))


TICKETS = [
    # met its 4 h P1 target in 3 h
    ticket(
        1,
        priority=1,
        opened_at=at(2, 9),
        resolved_at=at(2, 12),
        reassignment_count=0,
        reopen_count=0,
    ),
    # missed: 6 h
    ticket(
        2,
        priority=1,
        opened_at=at(2, 10),
        resolved_at=at(2, 16),
        reassignment_count=1,
        reopen_count=0,
    ),
    # Friday 16:00 to Wednesday 10:00 over the Tuesday holiday: 12 business hours of 27: met
    ticket(
        3,
        priority=3,
        opened_at=at(6, 16),
        resolved_at=at(11, 10),
        reassignment_count=0,
        reopen_count=1,
    ),
    # Monday 08:00 to Thursday 12:00 over the Tuesday holiday: 22 business hours: met
    ticket(
        4,
        priority=3,
        opened_at=at(9, 8),
        resolved_at=at(12, 12),
        reassignment_count=0,
        reopen_count=0,
        department="Water",
    ),
    # 10 clock hours, 3 of them on hold (its SLA record): 7 h against 8 h: met
    ticket(
        5,
        priority=2,
        opened_at=at(2, 8),
        resolved_at=at(2, 18),
        reassignment_count=None,
        reopen_count=0,
    ),
    # open for one hour: may still make its 8 h target
    ticket(6, priority=2, state="in_progress", opened_at=at(16, 11), reassignment_count=0),
    # open for 75 hours: already missed its 8 h target
    ticket(7, priority=2, state="new", opened_at=at(13, 9)),
    # resolved before it was opened: bad data
    ticket(8, priority=4, opened_at=at(5, 12), resolved_at=at(5, 10), reassignment_count=2),
    # priority 5 has no target; 24 clock hours
    ticket(9, priority=5, opened_at=at(3), closed_at=at(4), reassignment_count=0),
    ticket(
        10, priority=3, state="cancelled", opened_at=at(4, 9), reassignment_count=5, reopen_count=0
    ),
    # no priority; 1 hour
    ticket(
        11,
        priority=None,
        opened_at=at(3, 10),
        resolved_at=at(3, 11),
        reassignment_count=0,
        reopen_count=0,
    ),
    ticket(
        12,
        kind="request",
        state="resolved",
        priority=3,
        opened_at=at(10, 9),
        resolved_at=at(10, 10),
        reassignment_count=3,
        reopen_count=1,
    ),
    ticket(
        13,
        kind="request",
        state="on_hold",
        priority=4,
        opened_at=at(1, 9, month=1),
        reassignment_count=1,
    ),
    ticket(
        14,
        kind="request",
        state="on_hold",
        priority=4,
        opened_at=at(1, 9, month=10, year=2025),
        reassignment_count=0,
    ),
]

SLAS = [
    SlaRecord(
        source="snow",
        platform="servicenow",
        source_id="s1",
        ticket_id="t05",
        stage="completed",
        has_breached=False,
        start_at=at(2, 8),
        end_at=at(2, 18),
        elapsed_seconds=7 * 3600,
    ),
    SlaRecord(
        source="snow",
        platform="servicenow",
        source_id="s2",
        ticket_id="t02",
        stage="completed",
        has_breached=True,
        start_at=at(2, 10),
        end_at=at(2, 16),
        elapsed_seconds=6 * 3600,
    ),
    SlaRecord(
        source="snow",
        platform="servicenow",
        source_id="s3",
        ticket_id="t06",
        stage="in_progress",
        has_breached=False,
        start_at=at(16, 11),
    ),
    SlaRecord(
        source="snow",
        platform="servicenow",
        source_id="s4",
        ticket_id="t09",
        stage="completed",
        has_breached=None,
        start_at=at(3),
    ),
]


def project(n: int, **kw: Any) -> WorkItem:
    base: dict[str, Any] = {
        "source": "ppm",
        "platform": "project_online",
        "source_id": f"p{n}",
        "name": f"Project {n}",
        "kind": "project",
    }
    return WorkItem(**(base | kw))


WORK = [
    project(
        1,
        state="done",
        baseline_finish=at(10, month=2),
        planned_finish=at(10, 15, month=2),
        actual_finish=at(10, 15, month=2),
        budget=100000,
        actual_cost=110000,
        planned_value=50000,
        earned_value=40000,
    ),
    project(
        2,
        state="done",
        baseline_finish=at(10, month=2),
        planned_finish=at(12, month=2),
        actual_finish=at(12, month=2),
        budget=200000,
        forecast_cost=190000,
        actual_cost=125000,
        planned_value=100000,
        earned_value=100000,
    ),
    project(
        3,
        state="in_progress",
        health="green",
        budget=0,
        actual_cost=5,
        planned_value=10,
        earned_value=5,
    ),
    project(4, state="in_progress", health="red"),
    project(5, state="on_hold", budget=50000),
    project(6, state="cancelled", budget=10, actual_cost=99, planned_value=1, earned_value=1),
    project(7, state="proposed", budget=80000, forecast_cost=92000),
    WorkItem(
        source="ppm",
        platform="project_online",
        source_id="task1",
        name="A task",
        kind="task",
        state="in_progress",
        budget=1,
        actual_cost=1000,
    ),
]


def demand(n: int, state: str, submitted: datetime | None, decided: datetime | None) -> Demand:
    return Demand(
        source="snow",
        platform="servicenow",
        source_id=f"d{n}",
        name=f"Demand {n}",
        state=state,
        submitted_at=submitted,
        decided_at=decided,
    )


DEMANDS = [
    demand(1, "approved", at(1, month=1), at(11, month=1)),
    demand(2, "rejected", at(5, month=1), at(25, month=1)),
    demand(3, "screening", at(6, month=1), None),
    demand(4, "approved", at(9, month=1), at(2, month=1)),
    demand(5, "submitted", at(10, month=1), None),
    demand(6, "qualified", None, None),
]


def managed(n: int, serial: str, **kw: Any) -> Device:
    return Device(
        source="intune",
        platform="intune",
        source_id=f"m{n}",
        name=f"M{n}",
        serial=serial,
        enrolled_at=at(1, month=1),
        **kw,
    )


def cmdb(n: int, serial: str, **kw: Any) -> Device:
    return Device(
        source="snow", platform="servicenow", source_id=f"c{n}", name=f"C{n}", serial=serial, **kw
    )


DEVICES = [
    managed(
        1,
        "ABC 123",
        compliance="compliant",
        encrypted=True,
        last_seen_at=at(15),
        os="Windows",
        os_version="10.0.22631.4460",
    ),
    managed(
        2,
        "xyz789",
        compliance="noncompliant",
        encrypted=False,
        last_seen_at=at(1, month=1),
        os="Windows",
        os_version="10.0.19044",
    ),
    managed(3, "To be filled by O.E.M.", compliance="in_grace_period", os="iOS", os_version="16.7"),
    managed(
        4,
        "Q1",
        compliance="not_applicable",
        encrypted=True,
        last_seen_at=at(1),
        os="Android",
        os_version="14",
    ),
    managed(
        5,
        "Q2",
        compliance="unknown",
        encrypted=True,
        last_seen_at=at(10),
        os="Linux",
        os_version="6.1",
    ),
    cmdb(1, "abc123", os="Windows 11 Enterprise", os_version="10.0.26100"),
    cmdb(2, "q2", os="Mac OS X", os_version="13.6"),
    cmdb(3, "NOPE", os="iOS", os_version="17.0"),
    cmdb(4, "", os="Windows", os_version=""),
]

POLICY = MetricsConfig(calendar=CalendarConfig(timezone="UTC", holidays=[date(2026, 3, 10)]))


def fill(store: Store, records: list[Record], entity: str) -> None:
    by_source: dict[str, list[Record]] = {}
    for record in records:
        by_source.setdefault(record.source, []).append(record)
    for source, batch in by_source.items():
        store.write_page(source=source, stream=entity, entity=entity, records=batch)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    fill(store, TICKETS, "ticket")
    fill(store, SLAS, "sla_record")
    fill(store, WORK, "work_item")
    fill(store, DEMANDS, "demand")
    fill(store, DEVICES, "device")
    yield store
    store.close()


def compute(store: Store, *ids: str, **kw: Any) -> dict[str, MetricResult]:
    config = Config(metrics=POLICY)
    kw.setdefault("pm", make_registry(builtins=(), entry_points_group=None))
    results = compute_metrics(store, config, list(ids) or None, now=NOW, **kw)
    return {r.id: r for r in results}


def test_business_calendar_counts_working_seconds_across_weekends_and_holidays() -> None:
    calendar = BusinessCalendar.from_config(POLICY.calendar)
    hours = lambda a, b: calendar.seconds_between(a.timestamp(), b.timestamp()) / 3600  # noqa: E731
    assert hours(at(6, 16), at(11, 10)) == 12
    assert hours(at(9, 8), at(12, 12)) == 22
    assert hours(at(7, 10), at(8, 20)) == 0, "a weekend has no working time"
    assert hours(at(2, 18), at(3, 7)) == 0, "nor has a night"
    assert hours(at(2, 12), at(2, 10)) == 0
    assert calendar.working_seconds_per_day() == 9 * 3600


def test_a_calendar_in_a_local_zone_follows_its_daylight_saving_change() -> None:
    calendar = BusinessCalendar.from_config(CalendarConfig(timezone="America/New_York"))
    # Friday 6 March 17:00 EST to Monday 9 March 09:00 EDT: one working hour (08-09 local).
    start, end = datetime(2026, 3, 6, 22, tzinfo=UTC), datetime(2026, 3, 9, 13, tzinfo=UTC)
    assert calendar.seconds_between(start.timestamp(), end.timestamp()) == 3600


def test_service_metrics_match_the_hand_worked_answers(store: Store) -> None:
    r = compute(store, domain="service")
    assert r["itsm.volume"].value == 14 and r["itsm.volume"].excluded == {}

    backlog = r["itsm.backlog"]
    assert backlog.value == 4
    assert backlog.detail["age_bands"] == {"0-7": 2, "8-30": 0, "31-90": 1, ">90": 1}

    mttr = r["itsm.mttr_hours"]
    assert mttr.n == 7
    assert mttr.value == pytest.approx(234 / 7)
    assert mttr.detail["median"] == 10
    assert mttr.excluded == {
        "cancelled": 1,
        "still open": 2,
        "resolved before opened (bad timestamps)": 1,
    }
    assert mttr.detail["by_priority"]["1"] == {"mean": 4.5, "median": 4.5, "n": 2}
    assert mttr.detail["by_priority"]["(none)"]["n"] == 1

    sla = r["itsm.sla_attainment"]
    assert (sla.n, sla.value) == (6, pytest.approx(400 / 6))
    assert sla.excluded == {
        "cancelled": 1,
        "still open, within target": 1,
        "resolved before opened (bad timestamps)": 1,
        "no target for priority 5": 1,
        "no priority": 1,
    }
    own = r["itsm.platform_sla_attainment"]
    assert (own.n, own.value, own.excluded) == (2, 50.0, {"breach not recorded": 1})

    fcr = r["itsm.fcr_rate"]
    assert (fcr.n, fcr.value) == (7, pytest.approx(400 / 7))
    assert fcr.excluded == {"reassignment count not recorded": 1}
    reopen = r["itsm.reopen_rate"]
    assert (reopen.n, reopen.value) == (7, pytest.approx(200 / 7))
    assert reopen.excluded == {"reopen count not recorded": 2}
    reassign = r["itsm.reassignment_rate"]
    assert (reassign.n, reassign.value) == (11, pytest.approx(400 / 11))
    assert reassign.excluded == {"cancelled": 1, "reassignment count not recorded": 2}


def test_sla_attainment_without_the_holiday_and_with_other_targets(store: Store) -> None:
    config = Config(metrics=MetricsConfig(sla_targets={"1": "2h", "3": "3bd"}))
    pm = make_registry(builtins=(), entry_points_group=None)
    result = compute_metrics(
        store, config, ["itsm.sla_attainment"], now=NOW, by=["priority"], pm=pm
    )[0]
    # No holiday now. P1: both miss 2 h; P3: ticket 3 takes 21 business hours (met, of 27),
    # ticket 4 takes 31 (missed).
    assert result.breakdown["priority"] == {"1": 0.0, "3": 50.0}
    assert result.excluded["no target for priority 2"] == 3


def test_portfolio_metrics_match_the_hand_worked_answers(store: Store) -> None:
    r = compute(store, domain="portfolio")
    states = r["ppm.count_by_state"]
    assert states.value == 6, "the task is not a project, the cancelled one is left out"
    assert states.excluded == {"cancelled": 1}
    assert states.breakdown["state"] == {
        "cancelled": 1,
        "done": 2,
        "in_progress": 2,
        "on_hold": 1,
        "proposed": 1,
    }
    health = r["ppm.health_mix"]
    assert (health.n, health.value) == (2, 50.0)
    assert health.breakdown["health"] == {"green": 50.0, "red": 50.0}
    assert health.excluded == {"no health reported": 1}
    assert r["ppm.on_time_rate"].value == 50.0

    variance = r["ppm.budget_variance"]
    assert variance.value == pytest.approx(100 * 12000 / 380000)
    assert variance.excluded == {"cancelled": 1, "zero budget": 1, "no budget": 1, "no cost": 1}

    assert r["ppm.spi"].value == pytest.approx(140005 / 150010)
    assert r["ppm.spi"].n == 3
    assert r["ppm.cpi"].value == pytest.approx(140005 / 235005)
    # EAC = BAC x AC / EV: project 1 100000 x 110000 / 40000, project 2 200000 x 125000 / 100000
    assert r["ppm.eac"].value == pytest.approx(275000 + 250000)
    assert r["ppm.eac"].excluded["zero budget (BAC)"] == 1
    assert r["ppm.vac"].value == pytest.approx((100000 - 275000) + (200000 - 250000))

    cycle = r["ppm.demand_cycle_days"]
    assert (cycle.n, cycle.value) == (2, 15.0)
    assert cycle.excluded == {"not decided yet": 3, "decided before submitted (bad timestamps)": 1}
    assert r["ppm.demand_backlog"].value == 3


def test_endpoint_metrics_match_the_hand_worked_answers(store: Store) -> None:
    r = compute(store, domain="endpoint")
    compliance = r["endpoint.compliance_rate"]
    assert (compliance.n, compliance.value) == (3, pytest.approx(100 / 3))
    assert compliance.excluded == {"compliance not applicable": 1, "compliance unknown": 1}
    assert r["endpoint.encryption_rate"].value == 75.0
    stale = r["endpoint.stale_devices"]
    assert (stale.value, stale.detail["share"]) == (2, 40.0)
    currency = r["endpoint.os_currency"]
    assert (currency.n, currency.value) == (7, pytest.approx(400 / 7))
    assert currency.excluded == {"OS not in the supported list": 1, "no OS or version": 1}
    coverage = r["endpoint.cmdb_coverage"]
    assert (coverage.n, coverage.value) == (4, 50.0)
    assert coverage.excluded == {"no usable serial number": 1}
    assert coverage.detail["cmdb_devices"] == 3
    assert coverage.detail["cmdb_devices_managed_pct"] == pytest.approx(200 / 3, abs=1e-4)


def test_breakdowns_and_the_period(store: Store) -> None:
    r = compute(store, "itsm.volume", "itsm.fcr_rate", by=["month", "department", "platform"])
    assert r["itsm.volume"].breakdown["month"] == {"2025-10": 1, "2026-01": 1, "2026-03": 12}
    assert r["itsm.volume"].breakdown["department"] == {"(none)": 13, "Water": 1}
    assert r["itsm.fcr_rate"].breakdown["platform"] == {"servicenow": pytest.approx(400 / 7)}
    since = compute(store, "itsm.volume", since=at(9), until=at(16, 12))["itsm.volume"]
    assert since.value == 4, "tickets 4, 6, 7 and 12 were opened from 9 March to the 16th noon"


def test_a_metric_the_data_cannot_support_says_why_instead_of_zero(store_url: str) -> None:
    store = Store(store_url)
    try:
        bare = [ticket(1, opened_at=at(2), resolved_at=at(3), priority=2)]
        fill(store, bare, "ticket")
        r = compute(store)
        fcr = r["itsm.fcr_rate"]
        assert fcr.value is None and "reassignment_count" in (fcr.unsupported or "")
        assert "management platform" in (r["endpoint.compliance_rate"].unsupported or "")
        # No platform with demands or projects: nothing to count, which is not 0.
        backlog = r["ppm.demand_backlog"]
        assert backlog.value is None and "no synced source holds demand" in (
            backlog.unsupported or ""
        )
        assert r["ppm.spi"].value is None and "work item" in (r["ppm.spi"].unsupported or "")
        assert "SLA records" in (r["itsm.platform_sla_attainment"].unsupported or "")
        assert r["itsm.volume"].value == 1 and r["itsm.backlog"].value == 0
    finally:
        store.close()


def test_explain_lists_every_record_with_its_reason(store: Store) -> None:
    metric = all_metrics(make_registry(builtins=(), entry_points_group=None))["itsm.mttr_hours"]
    ctx = MetricContext(store=store, policy=POLICY, now=NOW)
    rows = {e.source_id: e for e in metric.explain(ctx)}
    assert len(rows) == 11, "every incident, counted or not"
    assert rows["t01"].counted and rows["t01"].value == pytest.approx(3.0)
    assert rows["t08"].reason == "resolved before opened (bad timestamps)"
    assert rows["t06"].reason == "still open" and rows["t06"].value is None
    sla = all_metrics(make_registry(builtins=(), entry_points_group=None))["itsm.sla_attainment"]
    judged = {e.source_id: e for e in sla.explain(ctx)}
    assert judged["t05"].value == 100.0 and judged["t07"].value == 0.0
    assert judged["t06"].reason == "still open, within target"
    counted = [e for e in judged.values() if e.counted]
    result = compute(store, "itsm.sla_attainment")["itsm.sla_attainment"]
    assert len(counted) == result.n, "explain and compute agree"


class WaterTickets(SqlMetric):
    id = "city.water_tickets"
    title = "Water tickets"
    domain = "service"
    unit = "count"
    entity = "ticket"
    definition = "Tickets of the Water department."
    measure = Measure("count")

    def scope(self, t: Any, ctx: MetricContext) -> list[Any]:
        return [t.c.department == "Water"]


class CityMetrics:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(WaterTickets())


def test_a_plugin_adds_a_metric_through_register_metrics(store: Store) -> None:
    pm = make_registry(builtins=(), entry_points_group=None)
    pm.register(CityMetrics(), name="city")
    assert "city.water_tickets" in all_metrics(pm)
    config = Config(metrics=POLICY)
    [result] = compute_metrics(store, config, ["city.water_tickets"], now=NOW, pm=pm)
    assert result.value == 1


def test_the_cli_repeats_the_core_dimensions() -> None:
    from itcrosswalk.cli.metrics import DIMENSIONS as CLI_DIMENSIONS

    assert CLI_DIMENSIONS == DIMENSIONS
