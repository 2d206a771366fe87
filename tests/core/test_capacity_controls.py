"""The capacity metrics and controls on SQLite and PostgreSQL: the same verdicts, the
over-allocation rule (two months running) applied to the plan's numbers, and unsupported or
skip, with the reason, where no source keeps assignments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.metrics import MetricContext, all_metrics, compute_metrics
from itcrosswalk.core.model import Assignment, Record
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry
from tests.core.test_capacity import CONFIG, at, person, project, put

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def booking(source: str, platform: str, sid: str, upn: str, month: int, hours: float) -> Assignment:
    last = date(2026, month + 1, 1).toordinal() - 1
    return Assignment(
        source=source, platform=platform, source_id=sid, work_item_id="p1", project_id="p1",
        person_upn=upn, start=at(date(2026, month, 1)), finish=at(date.fromordinal(last)),
        planned_hours=hours,
    )  # fmt: skip


def city() -> list[Record]:
    """Ola: 100 h a month on ServiceNow and 100 h on Clarity in March and April. March has 21
    working days (the holiday), April 22: 200/168 = 119 % and 200/176 = 114 %, both past 110 %,
    neither platform alone past 100 %. Eli: 84 h in March only (50 %). Projects: p1 on both
    (staffed), p3 approved and starting 1 April with nobody on it, j1 on a source with no
    assignments at all."""
    ola, eli = "ola.berg@city.example.gov", "eli.ward@city.example.gov"
    return [
        person("snow", "servicenow", "u-ola", ola, "Ola Berg", department="ITD"),
        person("snow", "servicenow", "u-eli", eli, "Eli Ward", department="Water"),
        project("snow", "servicenow", "p1", date(2026, 3, 10), date(2026, 9, 30), state="approved"),
        project("snow", "servicenow", "p3", date(2026, 4, 1), date(2026, 9, 30), state="approved"),
        project("snow", "servicenow", "p4", date(2026, 7, 1), date(2026, 9, 30), state="approved"),
        project("clar", "clarity", "p1", date(2026, 3, 1), date(2026, 9, 30), state="in_progress"),
        project("jira", "jira_align", "j1", date(2026, 3, 20), date(2026, 9, 30), state="approved"),
        booking("snow", "servicenow", "a1", ola, 3, 100),
        booking("snow", "servicenow", "a2", ola, 4, 100),
        booking("clar", "clarity", "t1", ola, 3, 100),
        booking("clar", "clarity", "t2", ola, 4, 100),
        booking("snow", "servicenow", "a3", eli, 3, 84),
    ]  # fmt: skip


@pytest.fixture
def store(store_url: str) -> Any:
    opened = Store(store_url)
    yield opened
    opened.close()


def _verdicts(store: Store) -> dict[str, dict[str, tuple[str, str]]]:
    controls = load_controls()
    chosen = [controls["capacity.over_allocated"], controls["capacity.unstaffed"]]
    run = run_controls(store, chosen, config=CONFIG, now=NOW, record=False)
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for result in run.results:
        assert result.error is None, result.error
        out[result.control.id] = {f.resource: (f.status, f.reason) for f in result.findings}
    return out


def test_the_controls_judge_the_plan_and_say_what_they_could_not(store: Store) -> None:
    put(store, city())
    found = _verdicts(store)
    over = found["capacity.over_allocated"]
    assert over["ola.berg@city.example.gov"] == (
        "alarm",
        "above 110 % of capacity in 2026-03, 2026-04 (only in the sum of clarity, servicenow: "
        "no platform alone shows it)",
    )
    assert over["eli.ward@city.example.gov"] == (
        "ok", "not above 110 % two months running (peak 50.0 %)",
    )  # fmt: skip
    staffed = found["capacity.unstaffed"]
    assert staffed["snow/p1"][0] == "ok"
    assert staffed["snow/p3"] == (
        "alarm", "approved, starts within 60 days, and nobody (no person, no role) is assigned",
    )  # fmt: skip
    assert "snow/p4" not in staffed  # starts in 118 days
    assert "clar/p1" not in staffed  # in progress, not approved-and-waiting
    assert staffed["jira/j1"][0] == "skip" and "holds no assignments" in staffed["jira/j1"][1]


def test_one_month_over_is_not_two_months_running(store: Store) -> None:
    records = [r for r in city() if r.source_id not in ("a2", "t2")]
    put(store, records)
    status, reason = _verdicts(store)["capacity.over_allocated"]["ola.berg@city.example.gov"]
    assert status == "ok" and "peak 119.0 %" in reason


def test_without_assignments_the_control_skips_and_the_metrics_are_unsupported(
    store: Store,
) -> None:
    put(store, [r for r in city() if not isinstance(r, Assignment)])
    assert _verdicts(store)["capacity.over_allocated"] == {
        "(assignments)": (
            "skip",
            "no synced source keeps assignments: nobody's bookings can be judged",
        )
    }
    pm = make_registry(builtins=(), entry_points_group=None)
    results = compute_metrics(
        store, CONFIG, ["capacity.utilization", "capacity.over_allocated_people"], now=NOW, pm=pm
    )
    for result in results:
        assert result.value is None
        assert result.unsupported and "no synced source keeps assignments" in result.unsupported


def test_the_metrics_and_their_explanations(store: Store) -> None:
    put(store, city())
    pm = make_registry(builtins=(), entry_points_group=None)
    ids = ["capacity.utilization", "capacity.over_allocated_people"]
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    util, over = compute_metrics(
        store, CONFIG, ids, now=NOW, since=since, until=until, by=["platform", "department"], pm=pm
    )
    # Ola 400 h of 168 + 176 = 344 h; Eli 84 h of 344 h: 484 / 688.
    assert util.value == pytest.approx(100 * 484 / 688)
    assert util.breakdown["department"] == pytest.approx(
        {"ITD": 100 * 400 / 344, "Water": 100 * 84 / 344}
    )
    assert util.breakdown["platform"]["clarity"] == pytest.approx(100 * 200 / 344)
    assert (over.value, over.detail["seen_by_no_single_platform"]) == (
        1.0, ["ola.berg@city.example.gov"],
    )  # fmt: skip
    metric = all_metrics(pm)["capacity.utilization"]
    ctx = MetricContext(store=store, policy=CONFIG.metrics, since=since, until=until, now=NOW)
    rows = {e.source_id: e for e in metric.explain(ctx)}
    assert rows["ola.berg@city.example.gov"].value == pytest.approx(100 * 400 / 344)
    assert rows["ola.berg@city.example.gov"].source == "clarity,servicenow"
    assert rows["ola.berg@city.example.gov"].detail["months"]["2026-04"]["by_platform"] == {
        "clarity": 100.0, "servicenow": 100.0,
    }  # fmt: skip
    assert rows["eli.ward@city.example.gov"].detail["over_allocated_months"] == []


def test_the_pack_computes_the_plan_once_with_each_metric_s_own_values(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The capacity metrics of one pack share one plan: the values each gives alone."""
    from itcrosswalk.core.metrics import capacity

    put(store, city())
    pm = make_registry(builtins=(), entry_points_group=None)
    ids = ["capacity.utilization", "capacity.over_allocated_people"]
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    ctx = MetricContext(store=store, policy=CONFIG.metrics, since=since, until=until, now=NOW)
    by = ["platform", "department", "month"]
    alone = [all_metrics(pm)[i].compute(ctx, by) for i in ids]
    plans = []
    real = capacity.compute
    monkeypatch.setattr(capacity, "compute", lambda *a, **k: plans.append(1) or real(*a, **k))
    together = compute_metrics(store, CONFIG, ids, now=NOW, since=since, until=until, by=by, pm=pm)
    assert len(plans) == 1
    for one, other in zip(alone, together, strict=True):
        assert (one.value, one.n, one.breakdown, one.detail, one.excluded) == (
            other.value, other.n, other.breakdown, other.detail, other.excluded,
        )  # fmt: skip
    assert alone[1].value == 1.0 and alone[0].breakdown["month"]


def test_a_person_with_no_working_hours_in_the_window_is_explained_not_divided_by(
    store: Store,
) -> None:
    # A weekend window: nobody has a working hour in it, so no one's utilization is a number.
    put(store, city())
    pm = make_registry(builtins=(), entry_points_group=None)
    metric = all_metrics(pm)["capacity.utilization"]
    since, until = datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    ctx = MetricContext(store=store, policy=CONFIG.metrics, since=since, until=until, now=NOW)
    rows = list(metric.explain(ctx))
    assert rows, "the people booked are still listed"
    for row in rows:
        assert (row.counted, row.value) == (False, None), row
        assert row.reason == "no working hours in the window (capacity 0)"
