"""The whole metric pack on SQLite and on PostgreSQL, value by value, on the same synced data.

Every sandbox emulator serves one seeded city; both stores sync it over loopback HTTPS, and
every metric's value, breakdown by every dimension, and --explain verdict (with the numbers it
rests on) must be the same on both. The City's calendar is a real local zone (Phoenix) so
months and days are not UTC's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import CalendarConfig, Config, MetricsConfig, load_config
from itcrosswalk.core.metrics import DIMENSIONS, MetricContext, all_metrics, compute_metrics
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate
from tests.conftest import empty_database

POLICY = MetricsConfig(
    calendar=CalendarConfig(timezone="America/Phoenix"),
    sla_targets={"1": "4h", "2": "8bh", "3": "3bd", "4": "5bd"},
)


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with empty_database("postgresql", tmp_path, "the metrics") as url:
        yield url


def _sync(config_path: Path, url: str, pm: Any) -> Store:
    config = load_config(config_path)
    store = Store(url)
    engine = SyncEngine(config, store, pm=pm)
    for name in config.sources:
        engine.sync(name)
    return store


def _pack(store: Store, now: datetime, pm: Any) -> dict[str, Any]:
    config = Config(metrics=POLICY)
    results = compute_metrics(store, config, by=list(DIMENSIONS), now=now, pm=pm)
    ctx = MetricContext(store=store, policy=POLICY, now=now)
    verdicts = {
        metric.id: [
            (e.source, e.source_id, e.label, e.counted, e.reason, e.value, e.detail, e.department)
            for e in metric.explain(ctx)
        ]
        for metric in all_metrics(pm).values()
    }
    return {"values": {r.id: r.as_json() for r in results}, "explain": verdicts}


@pytest.mark.postgres
@pytest.mark.slow
def test_both_stores_give_the_same_answers_on_the_same_synced_city(
    tmp_path: Path, postgres_url: str
) -> None:
    pm = make_registry(entry_points_group=None)
    world = generate(11, "tiny")
    with runner.start(world, pm=pm) as box:
        config_path = runner.write_config(box, tmp_path / "sandbox")
        sqlite = _sync(config_path, f"sqlite:///{tmp_path / 'store.db'}", pm)
        postgres = _sync(config_path, postgres_url, pm)
    try:
        now = datetime(2026, 12, 1, 12, tzinfo=UTC)
        left, right = _pack(sqlite, now, pm), _pack(postgres, now, pm)
    finally:
        sqlite.close()
        postgres.close()
    assert left["values"].keys() == right["values"].keys()
    counted = 0
    for metric_id, value in left["values"].items():
        assert value == right["values"][metric_id], metric_id
        counted += value["n"]
    assert counted > 0, "the city gave the metrics records to count"
    for metric_id, rows in left["explain"].items():
        assert rows == right["explain"][metric_id], metric_id
    judged = [r for r in left["explain"]["itsm.sla_attainment"] if r[3]]
    assert judged and all("comparison" in r[6] for r in judged)
