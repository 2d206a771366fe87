"""Metric history: every scheduled job and `metrics --record` keep each metric, its
breakdowns and the compliance summary with the run they came from; the history reads them
back, oldest first, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core import jobs
from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.history import history, known_metrics, record_snapshot
from itcrosswalk.core.metrics import compute_metrics
from itcrosswalk.core.store import Store, metric_snapshots, snapshot_runs
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import NOW, city_store


def _pm() -> Any:
    return make_registry(entry_points_group=None)


def test_a_snapshot_keeps_every_metric_its_breakdowns_and_the_compliance_summary(
    store_url: str,
) -> None:
    store = city_store(store_url)
    try:
        run = run_controls(store, list(load_controls().values()), benchmark="city", now=NOW)
        first = record_snapshot(
            store, Config(), pm=_pm(), origin="job nightly", now=NOW - timedelta(days=7)
        )
        second = record_snapshot(store, Config(), pm=_pm(), origin="metrics --record", now=NOW)
        assert second > first
        now = {
            r.id: r
            for r in compute_metrics(
                store, Config(), by=["platform", "source", "department"], now=NOW, pm=_pm()
            )
        }
        kept = known_metrics(store)
        assert set(now) <= set(kept)
        assert {"compliance.pass_rate", "compliance.controls_failed", "compliance.alarms"} <= set(
            kept
        )
        for metric_id, result in now.items():
            points = history(store, metric_id)
            assert [p.origin for p in points] == ["job nightly", "metrics --record"]
            assert points[-1].value == (
                None if result.value is None else pytest.approx(result.value)
            )
            # a metric the data cannot support is kept as such, with its reason, never as 0
            assert points[-1].unsupported == result.unsupported
            for dimension, cells in result.breakdown.items():
                by_key = {
                    p.key: p.value
                    for p in history(store, metric_id, dimension=dimension)
                    if p.snapshot_id == second
                }
                assert by_key == pytest.approx({k: v for k, v in cells.items()}), (
                    metric_id,
                    dimension,
                )
        [rate] = history(store, "compliance.pass_rate", since=NOW - timedelta(days=1))
        from itcrosswalk.core.reports.compliance import report_for

        summary = report_for(store.engine, run_id=run.run_id)["summary"]
        assert rate.value == pytest.approx(100 * summary["pass_rate"])
        assert rate.snapshot_id == second
        assert (
            history(store, "compliance.pass_rate", until=NOW - timedelta(days=1))[0].snapshot_id
            == first
        )
        with store.engine.connect() as conn:
            linked = conn.execute(
                sa.select(snapshot_runs.c.compliance_run_id).where(snapshot_runs.c.id == second)
            ).scalar()
        assert linked == run.run_id
    finally:
        store.close()


def test_a_snapshot_names_the_run_it_came_from(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(ConfigError, match="names the run it came from"):
            record_snapshot(store, Config(), pm=_pm(), origin="  ")
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(snapshot_runs)).scalar() == 0
        # An empty store: every metric is kept as unsupported with its reason; no compliance yet.
        record_snapshot(store, Config(), pm=_pm(), origin="metrics --record", now=NOW)
        [backlog] = history(store, "itsm.backlog")
        assert backlog.value is None and backlog.unsupported
        assert history(store, "compliance.pass_rate") == []
    finally:
        store.close()


def test_every_scheduled_job_keeps_a_snapshot(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    city_store(store_url).close()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    spec_path = tmp_path / "jobs.toml"
    spec_path.write_text(
        '[jobs.nightly]\nsync = false\nreports = [{ kind = "compliance", formats = ["json"] }]\n'
        '[jobs.nightly.folder]\npath = "out"\n'
    )
    spec = jobs.load_jobs(spec_path)
    for day in (2, 1):
        [outcome] = jobs.run_jobs(spec, config_path=config, now=NOW - timedelta(days=day), pm=_pm())
        assert outcome.problems == [], outcome.problems
    store = Store(store_url)
    try:
        points = history(store, "compliance.controls_failed")
        assert [p.origin for p in points] == ["job nightly", "job nightly"]
        assert [p.taken_at for p in points] == [NOW - timedelta(days=2), NOW - timedelta(days=1)]
        assert len(history(store, "endpoint.stale_devices")) == 2
        with store.engine.connect() as conn:
            runs = (
                conn.execute(
                    sa.select(snapshot_runs.c.compliance_run_id).order_by(snapshot_runs.c.id)
                )
                .scalars()
                .all()
            )
        assert runs == [1, 2], "each snapshot names the compliance run of its job"
    finally:
        store.close()


def test_metrics_record_and_history_from_the_command_line(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    city_store(store_url).close()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    cli = make_cli(_pm())
    runner = CliRunner()
    base = ["--config", str(config), "metrics"]
    for _ in range(2):
        recorded = runner.invoke(cli, [*base, "--record", "--format", "json"])
        assert recorded.exit_code == 0, recorded.output
        assert "recorded snapshot" in recorded.stderr
    shown = runner.invoke(cli, [*base, "--history", "itsm.backlog", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    points = json.loads(shown.stdout)
    assert [p["origin"] for p in points] == ["metrics --record"] * 2
    assert points[0]["value"] == points[1]["value"] is not None
    by = runner.invoke(
        cli, [*base, "--history", "itsm.backlog", "--by", "platform", "--format", "json"]
    )
    assert by.exit_code == 0 and {p["key"] for p in json.loads(by.stdout)} == {"servicenow"}
    future = runner.invoke(
        cli, [*base, "--history", "itsm.backlog", "--from", "2999-01-01", "--format", "json"]
    )
    assert future.exit_code == 0 and json.loads(future.stdout) == []
    assert "no snapshot holds itsm.backlog yet in that period" in future.stderr
    # bad input: a misspelt metric, --from without --history, --record with a filter
    typo = runner.invoke(cli, [*base, "--history", "itsm.backlgo"])
    assert typo.exit_code == 2 and "itsm.backlog" in typo.output
    stray = runner.invoke(cli, [*base, "--from", "2026-01-01"])
    assert stray.exit_code == 2 and "--from and --to go with --history" in stray.output
    narrow = runner.invoke(cli, [*base, "--record", "--metric", "itsm.backlog"])
    assert narrow.exit_code == 2 and "--record keeps the whole picture" in narrow.output
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(snapshot_runs)).scalar() == 2
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(metric_snapshots)).scalar() > 0
            )
    finally:
        store.close()


def test_the_dashboard_command_writes_one_page_and_its_json_per_audience(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    city_store(store_url).close()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    cli = make_cli(_pm())
    result = CliRunner().invoke(
        cli, ["--config", str(config), "dashboard", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        f"dashboard-{a}.{x}"
        for a in ("cio", "pmo", "service-desk", "endpoints")
        for x in ("html", "json")
    )
    assert "unverified data: snow" in result.stderr
    one = CliRunner().invoke(
        cli,
        ["--config", str(config), "dashboard", "--audience", "pmo", "-o", str(tmp_path / "pmo")],
    )
    assert one.exit_code == 0 and sorted(p.name for p in (tmp_path / "pmo").iterdir()) == [
        "dashboard-pmo.html",
        "dashboard-pmo.json",
    ]
    bad = CliRunner().invoke(
        cli, ["--config", str(config), "dashboard", "--audience", "ceo", "-o", "x"]
    )
    assert bad.exit_code == 2
