"""The portfolio and service reports show exactly what the metrics engine computes, in every
format, with unsupported metrics saying why."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config
from itcrosswalk.core.metrics import compute_metrics
from itcrosswalk.core.reports import metrics_report, render
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import NOW, city_store


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = city_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


@pytest.mark.parametrize("kind", ["portfolio", "service"])
def test_the_report_is_the_metrics_engine_s_answer(store: Any, kind: str) -> None:
    config = Config()
    pm = make_registry(builtins=(), entry_points_group=None)
    data = metrics_report.build(store, config, kind, by="department", now=NOW, pm=pm)
    expected = [
        r.as_json()
        for r in compute_metrics(store, config, domain=kind, by=["department"], now=NOW, pm=pm)
    ]
    # the engine's answer, with the definition and the recorded trend beside it
    shown = [
        {k: v for k, v in m.items() if k not in ("definition", "trend")} for m in data["metrics"]
    ]
    assert shown == expected
    assert all(m["trend"] == [] for m in data["metrics"]), "no snapshot is kept yet"
    assert data["title"] == f"{kind.title()} report" and data["filters"]["by"] == "department"
    assert all(m["definition"] for m in data["metrics"])
    page = render.render(data, "html").decode()
    for metric in data["metrics"]:
        cell = re.search(
            rf'data-metric="{re.escape(metric["id"])}">.*?data-value="([^"]*)"', page, re.S
        )
        assert cell, metric["id"]
        assert cell.group(1) == ("" if metric["value"] is None else str(metric["value"]))
        if metric["unsupported"]:
            assert f"not supported: {metric['unsupported']}" in page
    assert "<script" not in page
    rows = list(csv.DictReader(io.StringIO(render.render(data, "csv").decode())))
    assert {r["metric"] for r in rows} == {m["id"] for m in data["metrics"]}
    assert json.loads(render.render(data, "json"))["metrics"] == json.loads(
        json.dumps(data["metrics"])
    )
    markdown = render.render(data, "md").decode()
    assert markdown.startswith(f"# {kind.title()} report")
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render.render(data, "xlsx")))
    assert book.sheetnames == ["Metrics", "Breakdown"]
    assert book["Metrics"].max_row == len(data["metrics"]) + 1


def test_report_portfolio_and_service_commands(store: Any, tmp_path: Path) -> None:
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{store.url}"\n')
    cli = make_cli(make_registry(entry_points_group=None))
    result = CliRunner().invoke(
        cli, ["--config", str(config), "report", "portfolio", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {m["id"] for m in data["metrics"]} >= {"ppm.health_mix", "ppm.budget_variance"}
    out = tmp_path / "service.html"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "report", "service", "--by", "priority", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "itsm.mttr_hours" in out.read_text()
    bad = CliRunner().invoke(cli, ["--config", str(config), "report", "service", "--by", "colour"])
    assert bad.exit_code == 2 and "no dimension 'colour'" in bad.stderr
