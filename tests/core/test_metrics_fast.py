"""A judged metric's value comes from its verdicts alone (``verdict``), its explanation from
``judge`` with the numbers each verdict rests on: the two must tell every record the same."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from itcrosswalk.core.config import CalendarConfig, Config, MetricsConfig, load_config
from itcrosswalk.core.metrics import MetricContext, all_metrics, compute_metrics
from itcrosswalk.core.metrics.standard import JudgedMetric
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate

POLICY = MetricsConfig(
    calendar=CalendarConfig(timezone="America/Phoenix"),
    sla_targets={"1": "4h", "2": "8bh", "3": "3bd", "4": "5bd"},
)


@pytest.mark.slow
def test_judged_values_are_what_their_explanations_add_up_to(tmp_path: Path) -> None:
    pm = make_registry(entry_points_group=None)
    with runner.start(generate(11, "tiny"), pm=pm) as box:
        config_path = runner.write_config(box, tmp_path / "sandbox")
        config = load_config(config_path)
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        engine = SyncEngine(config, store, pm=pm)
        for name in config.sources:
            engine.sync(name)
    try:
        now = datetime(2026, 12, 1, 12, tzinfo=UTC)
        results = {r.id: r for r in compute_metrics(store, Config(metrics=POLICY), now=now, pm=pm)}
        ctx = MetricContext(store=store, policy=POLICY, now=now)
        judged = [m for m in all_metrics(pm).values() if isinstance(m, JudgedMetric)]
        assert any(m.id == "itsm.sla_attainment" for m in judged)
        for metric in judged:
            result = results[metric.id]
            if result.unsupported:
                continue
            rows = list(metric.explain(ctx))
            counted = [e.value for e in rows if e.counted]
            assert result.n == len(counted), metric.id
            assert result.excluded == dict(Counter(e.reason for e in rows if not e.counted))
            expected = sum(counted) / len(counted) if counted else None
            assert result.value == pytest.approx(expected), metric.id
        sla = results["itsm.sla_attainment"]
        assert sla.n > 0 and sla.excluded, "the city's incidents were judged and some excluded"
    finally:
        store.close()
