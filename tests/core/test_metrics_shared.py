"""The pack's shared passes give every metric the answer it gives computed alone.

``compute_metrics`` reads each entity once for all its metrics (a census for coverage, one pass
per breakdown dimension for the sums) and pushes judged metrics into grouped SQL where that is
exact. A seeded store with nulls, unknowns, excluded and bad records, several sources and
platforms, SLA records with pauses and knowledge links is computed both ways, on SQLite and on
PostgreSQL, with every breakdown, a window and a source filter: every value, n, reason and
breakdown must be the same, and each judged metric must be what its explanation adds up to.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from itcrosswalk.core.config import CalendarConfig, Config, MetricsConfig
from itcrosswalk.core.metrics import (
    DIMENSIONS,
    Measure,
    MetricContext,
    SqlMetric,
    all_metrics,
    compute_metrics,
)
from itcrosswalk.core.metrics.standard import JudgedMetric
from itcrosswalk.core.model import (
    Device,
    KnowledgeLink,
    Record,
    SlaRecord,
    Ticket,
    WorkItem,
)
from itcrosswalk.core.store import Store, StreamCursor
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.registry import make_registry

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
POLICY = MetricsConfig(
    calendar=CalendarConfig(timezone="America/New_York", holidays=["2026-05-25"]),
    sla_targets={"1": "4h", "2": "8bh", "3": "3bd", "4": "2d"},
)


def _maybe(rng: random.Random, value: Any, share: float = 0.15) -> Any:
    return None if rng.random() < share else value


def seeded(seed: int = 5) -> list[Record]:
    rng = random.Random(seed)
    sources = [("snow", "servicenow"), ("jira", "jira"), ("snow2", "servicenow")]
    records: list[Record] = []
    for i in range(900):
        source, platform = rng.choice(sources)
        opened = NOW - timedelta(minutes=rng.randrange(0, 200 * 1440))
        state = rng.choice(["new", "in_progress", "on_hold", "resolved", "closed", "closed",
                            "cancelled", "unknown"])  # fmt: skip
        resolved = opened + timedelta(minutes=rng.randrange(-30, 9000))
        done = state in ("resolved", "closed")
        records.append(
            Ticket(
                source=source,
                platform=platform,
                source_id=f"t{i}",
                number=_maybe(rng, f"INC{i:05d}"),
                kind=rng.choice(["incident", "incident", "incident", "request", "problem"]),
                priority=_maybe(rng, rng.randint(1, 5)),
                state=state,
                opened_at=_maybe(rng, opened, 0.05),
                resolved_at=_maybe(rng, resolved, 0.3) if done else None,
                closed_at=_maybe(rng, resolved + timedelta(hours=1), 0.5) if done else None,
                assignment_group=_maybe(rng, rng.choice(["Desk", "Network", "Apps"])),
                department=_maybe(rng, rng.choice(["Police", "Fire", "Water"])),
                category=_maybe(rng, rng.choice(["email", "vpn"]), 0.5),
                device_name=_maybe(rng, f"DEV{rng.randrange(30)}", 0.6),
                reassignment_count=_maybe(rng, rng.choice([0, 0, 1, 3])),
                reopen_count=_maybe(rng, rng.choice([0, 0, 0, 1])),
                cause_notes=_maybe(rng, rng.choice(["", "disk full"]), 0.4),
                fix_notes=_maybe(rng, rng.choice(["", "cleaned up"]), 0.4),
                known_error=_maybe(rng, rng.random() < 0.3),
                resolution_code=_maybe(
                    rng, rng.choice(["fixed", "duplicate", "canceled", "risk_accepted"]), 0.5
                ),  # fmt: skip
            )
        )
    for i in range(40):
        # A source whose platform keeps no reassignment or reopen counts, nor resolution times.
        opened = NOW - timedelta(days=rng.randrange(0, 100))
        records.append(
            Ticket(
                source="bare",
                platform="jira",
                source_id=f"b{i}",
                kind="incident",
                state=rng.choice(["new", "closed", "resolved"]),
                priority=rng.randint(1, 4),
                opened_at=opened,
            )  # fmt: skip
        )
    for i in range(300):
        source = rng.choice(["snow", "snow2"])
        start = NOW - timedelta(minutes=rng.randrange(0, 100 * 1440))
        wall = rng.randrange(0, 5 * 86400)
        records.append(
            SlaRecord(
                source=source,
                platform="servicenow",
                source_id=f"s{i}",
                ticket_id=f"t{rng.randrange(900)}",
                sla_name=rng.choice(["P1 resolution", "P2 resolution"]),
                stage=rng.choice(["completed", "completed", "in_progress", "unknown"]),
                has_breached=_maybe(rng, rng.random() < 0.3),
                start_at=_maybe(rng, start, 0.05),
                end_at=_maybe(rng, start + timedelta(seconds=wall), 0.05),
                elapsed_seconds=_maybe(rng, float(rng.randrange(0, wall + 1)), 0.1),
                business_elapsed_seconds=_maybe(rng, float(rng.randrange(0, wall // 3 + 1)), 0.5),
            )
        )
    for i in range(400):
        managed = i % 3 != 0
        serial = _maybe(rng, f"SN{rng.randrange(250):05d}", 0.1)
        records.append(
            Device(
                source="intune" if managed else "snow",
                platform="intune" if managed else "servicenow",
                source_id=f"d{i}",
                name=f"DEV{i}",
                serial=serial,
                serial_key=serial,
                os=_maybe(rng, rng.choice(["Windows", "iOS", "Android", "macOS", "Linux"])),
                os_version=_maybe(
                    rng, rng.choice(["10.0.19044", "10.0.22631", "17.2", "13", "14.1", "beta"])
                ),  # fmt: skip
                department=_maybe(rng, rng.choice(["Police", "Fire"])),
                enrolled_at=NOW - timedelta(days=300) if managed else None,
                last_seen_at=_maybe(rng, NOW - timedelta(days=rng.randrange(0, 90))),
                compliance=rng.choice(["compliant", "noncompliant", "unknown", "not_applicable"]),
                encrypted=_maybe(rng, rng.random() < 0.8),
            )
        )
    for i in range(150):
        source, platform = rng.choice([("ppm", "project_online"), ("align", "jira_align")])
        budget = _maybe(rng, rng.choice([0.0, 1e5, 2.5e5, 1.2e6]))
        finish = NOW - timedelta(days=rng.randrange(-100, 200), hours=rng.randrange(24))
        records.append(
            WorkItem(
                source=source,
                platform=platform,
                source_id=f"w{i}",
                name=f"Work {i}",
                kind=rng.choice(["project", "epic", "program"]),
                state=rng.choice(
                    ["proposed", "approved", "in_progress", "done", "cancelled", "unknown"]
                ),  # fmt: skip
                health=rng.choice(["green", "amber", "red", "unknown"]),
                department=_maybe(rng, rng.choice(["Police", "Fire"])),
                priority=_maybe(rng, rng.randint(1, 5)),
                baseline_finish=_maybe(rng, finish),
                actual_finish=_maybe(rng, finish + timedelta(hours=rng.randrange(-48, 96))),
                budget=budget,
                actual_cost=_maybe(rng, (budget or 1e5) * rng.uniform(0.0, 1.4)),
                forecast_cost=_maybe(rng, (budget or 1e5) * rng.uniform(0.5, 1.5), 0.6),
                planned_value=_maybe(rng, (budget or 1e5) * rng.choice([0.0, 0.5])),
                earned_value=_maybe(rng, (budget or 1e5) * rng.uniform(0.0, 0.7)),
            )
        )
    for i in range(120):
        records.append(
            KnowledgeLink(
                source="snow",
                platform="servicenow",
                source_id=f"l{i}",
                task_id=f"t{rng.randrange(900)}",
                article_id=f"a{i % 7}",
            )  # fmt: skip
        )
    return records


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url)
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in seeded():
        groups.setdefault((record.source, record.ENTITY), []).append(record)
    for (source, entity), batch in groups.items():
        store.write_page(
            source=source,
            stream=entity,
            entity=entity,
            records=batch,
            cursor=StreamCursor(watermark=NOW, access="ok"),
        )
    yield store
    store.close()


def _alone(store: Store, pm: Any, by: list[str], **kw: Any) -> dict[str, Any]:
    ctx = MetricContext(store=store, policy=POLICY, now=NOW, **kw)
    return {m.id: m.compute(ctx, by).as_json() for m in all_metrics(pm).values()}


def _shared(store: Store, pm: Any, by: list[str], **kw: Any) -> dict[str, Any]:
    results = compute_metrics(store, Config(metrics=POLICY), by=by, now=NOW, pm=pm, **kw)
    return {r.id: r.as_json() for r in results}


@pytest.mark.parametrize(
    "by, window",
    [
        ([], {}),
        (["platform"], {}),
        (list(DIMENSIONS), {}),
        (
            ["month", "priority"],
            {"since": NOW - timedelta(days=90), "until": NOW - timedelta(days=3)},
        ),
        (["department", "source"], {"source": "snow"}),
        (["platform"], {"source": "bare"}),
        # One platform and one source for every record: breakdowns without grouping.
        (["platform", "source", "kind"], {"source": "snow"}),
    ],
)
def test_shared_passes_give_each_metric_its_own_answer(
    store: Store, by: list[str], window: dict[str, Any]
) -> None:
    pm = make_registry(entry_points_group=None)
    alone, shared = _alone(store, pm, by, **window), _shared(store, pm, by, **window)
    assert alone.keys() == shared.keys()
    for metric_id, result in alone.items():
        assert shared[metric_id] == result, metric_id
    if window.get("source") == "bare":
        assert shared["itsm.reopen_rate"]["unsupported"] and shared["itsm.fcr_rate"]["unsupported"]
    counted = {i for i, r in shared.items() if r["n"]}
    excluded = {i for i, r in shared.items() if r["excluded"]}
    if not window:
        # The seed reaches the cases the passes must get right, not only empty answers.
        assert {"itsm.mttr_hours", "itsm.sla_attainment", "itsm.fcr_rate", "ppm.budget_variance",
                "endpoint.cmdb_coverage", "kb.incident_coverage", "problem.repeat_incidents",
                "endpoint.os_currency", "ppm.on_time_rate"} <= counted  # fmt: skip
        assert {"itsm.mttr_hours", "itsm.sla_attainment", "ppm.spi"} <= excluded


def test_judged_metrics_are_what_their_explanations_add_up_to(store: Store) -> None:
    pm = make_registry(entry_points_group=None)
    results = {r.id: r for r in compute_metrics(store, Config(metrics=POLICY), now=NOW, pm=pm)}
    ctx = MetricContext(store=store, policy=POLICY, now=NOW)
    for metric in all_metrics(pm).values():
        if not isinstance(metric, JudgedMetric) or results[metric.id].unsupported:
            continue
        rows = list(metric.explain(ctx))
        counted = [e.value for e in rows if e.counted]
        result = results[metric.id]
        assert result.n == len(counted), metric.id
        assert result.excluded == dict(Counter(e.reason for e in rows if not e.counted))
        expected = sum(counted) / len(counted) if counted else None
        assert result.value == pytest.approx(expected), metric.id


def test_judging_each_distinct_value_once_gives_the_record_by_record_answer(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    pm = make_registry(entry_points_group=None)
    grouped = [m for m in all_metrics(pm).values() if getattr(m, "same_values_same_verdict", 0)]
    assert grouped, "some judged metric reads its records grouped by their values"
    ids = [m.id for m in grouped]
    config = Config(metrics=POLICY)
    by = list(DIMENSIONS)
    once = [r.as_json() for r in compute_metrics(store, config, ids, by=by, now=NOW, pm=pm)]
    for metric in grouped:
        monkeypatch.setattr(metric, "same_values_same_verdict", False)
    each = [r.as_json() for r in compute_metrics(store, config, ids, by=by, now=NOW, pm=pm)]
    assert once == each
    assert all(r["n"] and r["breakdown"]["platform"] for r in once)


@pytest.mark.parametrize(
    "calendar",
    [
        POLICY.calendar,
        CalendarConfig(timezone="Australia/Lord_Howe", workdays=[0, 1, 2, 3, 4, 5], start="07:30"),
        CalendarConfig(timezone="UTC", start="00:00", end="24:00"),
    ],
    ids=["new-york-holiday", "half-hour-dst", "whole-days"],
)
def test_sla_clock_in_sql_gives_the_python_verdicts(store: Store, calendar: CalendarConfig) -> None:
    from itcrosswalk.core.metrics.standard import SlaAttainment

    policy = POLICY.model_copy(update={"calendar": calendar})
    metric = SlaAttainment()
    for window in ({}, {"until": NOW - timedelta(days=20)}, {"source": "snow2"}):
        ctx = MetricContext(store=store, policy=policy, now=NOW, **window)
        in_sql = metric.compute(ctx, list(DIMENSIONS)).as_json()
        in_python = JudgedMetric.compute(metric, ctx, list(DIMENSIONS)).as_json()
        in_python["detail"]["targets"] = dict(policy.sla_targets)
        assert in_sql == in_python, window
        assert in_sql["n"] and in_sql["excluded"], window


def _write(store: Store, records: list[Record]) -> None:
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.source, record.ENTITY), []).append(record)
    for (source, entity), batch in groups.items():
        store.write_page(
            source=source,
            stream=entity,
            entity=entity,
            records=batch,
            cursor=StreamCursor(watermark=NOW, access="ok"),
        )


def _whole(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def test_mttr_median_and_means_by_priority_are_statistics_of_the_hours(store_url: str) -> None:
    """The median and the means by priority are ``statistics.median`` and ``fmean`` of each
    incident's whole-second clock in hours: odd and even counts, a group of one, no priority,
    equal values, and fractions of a second up to .9995 (whole seconds on both stores)."""
    import statistics

    base = datetime(2026, 3, 2, 9, tzinfo=UTC)
    # (priority, opened offset in seconds, seconds to resolve), fractions included.
    shapes: list[tuple[int | None, float, float]] = [
        (1, 0, 3600), (1, 10.9995, 7200.5), (1, 20, 5400),  # odd
        (2, 0, 100), (2, 0.25, 100), (2, 5, 100.9996), (2, 9, 86400 * 3 + 0.9995),  # even, equal
        (3, 0.9999, 59.0001),  # one
        (None, 0, 1800), (None, 1, 3601),  # no priority
        (4, 0, 7), (4, 0, 8),
    ]  # fmt: skip
    records: list[Record] = []
    expected: dict[str, list[float]] = {}
    for i, (priority, offset, seconds) in enumerate(shapes):
        opened = base + timedelta(seconds=offset)
        resolved = opened + timedelta(seconds=seconds)
        records.append(
            Ticket(source="snow", platform="servicenow", source_id=f"m{i}", kind="incident",
                   priority=priority, state="resolved", opened_at=opened, resolved_at=resolved)
        )  # fmt: skip
        hours = (_whole(resolved) - _whole(opened)) / 3600.0
        expected.setdefault("(none)" if priority is None else str(priority), []).append(hours)
    store = Store(store_url)
    try:
        _write(store, records)
        pm = make_registry(entry_points_group=None)
        config = Config(metrics=POLICY)
        for by in ([], ["priority"]):
            (result,) = compute_metrics(store, config, ["itsm.mttr_hours"], by=by, now=NOW, pm=pm)
            every = [h for values in expected.values() for h in values]
            assert result.detail["median"] == round(statistics.median(every), 4)
            assert result.detail["by_priority"] == {
                key: {
                    "mean": round(statistics.fmean(values), 4),
                    "median": round(statistics.median(values), 4),
                    "n": len(values),
                }
                for key, values in sorted(expected.items())
            }
            assert result.n == len(shapes)
            assert result.value == pytest.approx(statistics.fmean(every))
            # Gathered by the shared pass, or read by the metric's own query: one answer.
            ctx = MetricContext(store=store, policy=POLICY, now=NOW)
            alone = all_metrics(pm)["itsm.mttr_hours"].compute(ctx, by)
            assert alone.as_json() == result.as_json()
    finally:
        store.close()


def test_backlog_age_bands_at_their_edges(store_url: str) -> None:
    """A ticket is in a band by whole days of whole seconds since it was opened, to the second
    at each edge (and a fraction of a second, .9995 included, does not move it)."""
    now = epoch_of_now = _whole(NOW)
    records: list[Record] = []
    expected = {"0-7": 0, "8-30": 0, "31-90": 0, ">90": 0}
    bands = (("0-7", 7), ("8-30", 30), ("31-90", 90))
    i = 0
    for limit in (7, 30, 90):
        for delta in (-1, 0, 1):
            for fraction in (0.0, 0.5, 0.9995, 0.9999):
                seconds = (limit + 1) * 86400 + delta
                opened = datetime.fromtimestamp(now - seconds, UTC) + timedelta(seconds=fraction)
                records.append(
                    Ticket(source="snow", platform="servicenow", source_id=f"b{i}",
                           kind="incident", state="new", opened_at=opened)
                )  # fmt: skip
                i += 1
                age = (epoch_of_now - _whole(opened)) / 86400.0
                name = next((n for n, lim in bands if age < lim + 1), ">90")
                expected[name] += 1
    records.append(
        Ticket(source="snow", platform="servicenow", source_id="future", kind="incident",
               state="new", opened_at=NOW + timedelta(days=2))
    )  # fmt: skip
    expected["0-7"] += 1
    store = Store(store_url)
    try:
        _write(store, records)
        pm = make_registry(entry_points_group=None)
        config = Config(metrics=POLICY)
        (shared,) = compute_metrics(store, config, ["itsm.backlog"], now=NOW, pm=pm)
        ctx = MetricContext(store=store, policy=POLICY, now=NOW)
        alone = all_metrics(pm)["itsm.backlog"].compute(ctx)
        assert shared.detail["age_bands"] == alone.detail["age_bands"] == expected
        assert all(expected.values())
    finally:
        store.close()


def test_gathered_values_keep_their_nulls_and_positions() -> None:
    """SQLite's text of gathered integers gives back each one, NULLs (empty items) in place."""
    from itcrosswalk.core.metrics.shared import _EntityScan

    ungathered = _EntityScan._ungathered
    assert ungathered(None) == []
    assert ungathered("") == [None]
    assert ungathered("3") == [3]
    assert ungathered("-4,5,60") == [-4, 5, 60]
    assert ungathered(",5,,7,") == [None, 5, None, 7, None]
    assert ungathered([1, None]) == [1, None]


# -- a pack in threads ------------------------------------------------------------------------


def _statements(store: Store, run: Any) -> Counter[str]:
    """The statements ``run`` sends the store, each with its parameters, counted."""
    from sqlalchemy import event

    seen: Counter[str] = Counter()

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any) -> None:
        seen[f"{statement} {params!r}"] += 1

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
    return seen


@pytest.mark.parametrize("by", [[], ["platform"], ["month", "priority"]])
def test_a_pack_in_threads_gives_the_answers_and_the_queries_of_one_by_one(
    store: Store, by: list[str]
) -> None:
    pm = make_registry(entry_points_group=None)

    def pack(threads: int) -> list[Any]:
        config = Config(metrics=POLICY.model_copy(update={"threads": threads}))
        return [r.as_json() for r in compute_metrics(store, config, by=by, now=NOW, pm=pm)]

    one: list[Any] = []
    serial = _statements(store, lambda: one.extend(pack(1)))
    for _ in range(3):
        many: list[Any] = []
        threaded = _statements(store, lambda: many.extend(pack(4)))  # noqa: B023
        assert many == one  # the same answers, in the pack's order
        # Every census, month span and pass run once, as one by one: none built twice by two
        # threads asking at the same time, none skipped.
        assert threaded == serial


def test_what_threads_share_is_built_once_and_a_failed_build_is_tried_again() -> None:
    from itcrosswalk.core.metrics.shared import _Once

    once, builds = _Once(), Counter[str]()
    entered, release = threading.Event(), threading.Event()
    asked = Counter[str]()

    def slow() -> str:
        builds["slow"] += 1
        entered.set()
        assert release.wait(10)
        return "built"

    answers: list[str] = []

    def ask() -> None:
        asked["threads"] += 1
        answers.append(once.get("key", slow))

    first = threading.Thread(target=ask)
    first.start()
    assert entered.wait(10)  # one thread is inside the build, holding it
    others = [threading.Thread(target=ask) for _ in range(7)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while asked["threads"] < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the seven reach get() while the build is still running
    assert answers == [] and builds["slow"] == 1
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert answers == ["built"] * 8 and builds["slow"] == 1

    def failing() -> str:
        builds["failing"] += 1
        raise RuntimeError("the store went away")

    for _ in range(2):
        with pytest.raises(RuntimeError, match="went away"):
            once.get("other", failing)
    assert builds["failing"] == 2  # nothing kept from a build that failed
    assert once.get("other", lambda: "now") == "now"


_SECOND_FAILED = threading.Event()


class _Broken(SqlMetric):
    entity = "ticket"
    domain = "service"
    unit = "count"
    definition = "A metric whose computation fails."
    measure = Measure("count")


class _First(_Broken):
    id, title = "city.broken_first", "Broken first"

    def compute(self, ctx: MetricContext, by: Any = ()) -> Any:
        # In threads, fails only after the metric behind it in the pack has failed.
        _SECOND_FAILED.wait(10)
        raise RuntimeError(f"{self.id} failed")


class _Second(_Broken):
    id, title = "city.broken_second", "Broken second"

    def compute(self, ctx: MetricContext, by: Any = ()) -> Any:
        _SECOND_FAILED.set()
        raise RuntimeError(f"{self.id} failed")


class _BrokenMetrics:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(_First())
        register(_Second())


def test_a_failing_metric_in_threads_fails_the_pack_as_one_by_one(store: Store) -> None:
    pm = make_registry(entry_points_group=None)
    pm.register(_BrokenMetrics(), name="broken")
    for threads in (1, 4):
        if threads == 1:
            _SECOND_FAILED.set()  # one by one, the first never waits for the second
        else:
            _SECOND_FAILED.clear()
        config = Config(metrics=POLICY.model_copy(update={"threads": threads}))
        # The first failure in the pack's order, though in threads the second failed first.
        with pytest.raises(RuntimeError, match="city.broken_first failed"):
            compute_metrics(store, config, now=NOW, pm=pm)
        assert _SECOND_FAILED.is_set()


def test_threads_are_the_cores_at_most_four_and_one_for_a_store_in_memory(
    store: Store, tmp_path: Any
) -> None:
    import os

    from itcrosswalk.core.config import parse_config
    from itcrosswalk.core.errors import ConfigError
    from itcrosswalk.core.metrics import pack_threads

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert pack_threads(store, None, 35) == min(4, cores or 1)
    assert pack_threads(store, 3, 35) == 3 and pack_threads(store, 8, 2) == 2
    # Never more than the pool keeps connections for (5): a sixth thread would wait for one.
    assert pack_threads(store, 16, 35) == store.engine.pool.size() == 5  # type: ignore[attr-defined]
    for url in ("sqlite://", "sqlite:///:memory:"):
        memory = Store(url)
        try:
            # One connection per thread, or a database per connection: none sees another's.
            assert pack_threads(memory, 4, 35) == 1, url
        finally:
            memory.close()
    with pytest.raises(ConfigError, match=r"metrics\.threads"):
        parse_config("[metrics]\nthreads = 0\n", tmp_path / "crosswalk.toml")
