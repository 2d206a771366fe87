"""The platform evaluation: scoring arithmetic worked by hand, absent versus empty fields, a
source whose sync failed, and the criteria file's errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import parse_config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.evaluate import (
    Criterion,
    SourceEvaluation,
    evaluate,
    load_criteria,
    score,
)
from itcrosswalk.core.model import Demand, Ticket
from itcrosswalk.core.reports.evaluation import render_html, render_markdown
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry


def test_scores_are_the_mean_of_their_components_and_the_total_is_weighted() -> None:
    ev = SourceEvaluation(source="a", platform="servicenow", status="ok")
    ev.coverage = {
        "ticket": {
            "provided": True,
            "records": 10,
            "fields": {"priority": 80.0, "opened_at": 100.0},
        },
        "device": {"provided": False, "records": 0, "fields": {"compliance": None}},
    }
    ev.metrics = {
        "itsm.mttr_hours": {"supported": True, "why": None},
        "endpoint.compliance_rate": {"supported": False, "why": "no managed devices"},
    }
    ev.integration = {"writes": ["ticket:incident"], "auth_types": ["basic"]}
    ev.api = {
        "runs": 2,
        "throttled": 3,
        "failed_runs": 0,
        "server_errors": 0,
        "failures": 0,
        "latency_p95_ms": 2750.0,
    }
    criteria = {
        # (80 + 100 + 100 + 100) / 4 = 95
        "service": Criterion(
            title="Service",
            weight=3,
            fields=["ticket.priority", "ticket.opened_at"],
            metrics=["itsm.mttr_hours"],
            writes=["ticket:incident"],
        ),
        # (0 absent + 0 unsupported) / 2 = 0
        "endpoints": Criterion(
            title="Endpoints",
            weight=1,
            fields=["device.compliance"],
            metrics=["endpoint.compliance_rate"],
        ),
        # writes 1 of 4 = 25; auth 1 kind = 50; throttled = 50; no errors = 100; latency:
        # (5000 - 2750) / 4500 = 50  ->  (25 + 50 + 50 + 100 + 50) / 5 = 55
        "api": Criterion(
            title="API",
            weight=2,
            api=["writes", "auth_choices", "no_throttling", "no_errors", "latency"],
        ),
    }
    score(ev, criteria)
    assert ev.scores["service"]["score"] == 95.0
    assert ev.scores["endpoints"]["score"] == 0.0
    assert ev.scores["api"]["score"] == 55.0
    assert ev.total == pytest.approx((3 * 95 + 1 * 0 + 2 * 55) / 6)
    evidence = {e["measure"]: e for e in ev.scores["endpoints"]["evidence"]}
    assert evidence["device.compliance"]["why"] == "absent: the platform does not provide it"
    assert evidence["endpoint.compliance_rate"]["why"] == "no managed devices"


def test_the_default_criteria_load_and_a_bad_file_names_the_key(tmp_path: Path) -> None:
    criteria = load_criteria(None)
    assert {"project_intake", "financial_tracking", "service_desk_slas", "api_openness"} <= set(
        criteria
    )
    bad = tmp_path / "criteria.toml"
    bad.write_text('[criteria.x]\ntitle = "X"\nweight = 1\nfields = ["ticket.colour"]\n')
    with pytest.raises(ConfigError, match=r"criteria.x.fields: 'ticket.colour' is not a field"):
        load_criteria(bad)
    bad.write_text('[criteria.x]\ntitle = "X"\nwieght = 1\n')
    with pytest.raises(ConfigError, match="criteria.x.wieght"):
        load_criteria(bad)
    bad.write_text('[criteria.x]\ntitle = "X"\nweight = 1\napi = ["speed"]\n')
    with pytest.raises(ConfigError, match="unknown \\['speed'\\]"):
        load_criteria(bad)


@pytest.fixture
def two_sources(tmp_path: Path, store_url: str) -> Iterator[tuple[Any, Store]]:
    text = f"""
[store]
url = "{store_url}"

[sources.snow-good]
platform = "servicenow"
url = "https://good.service-now.example"
auth = {{ type = "basic", user = "svc", password = "env:SNOW_PASSWORD" }}

[sources.snow-down]
platform = "servicenow"
url = "https://down.service-now.example"
auth = {{ type = "basic", user = "svc", password = "env:SNOW_PASSWORD" }}

[sources.snow-new]
platform = "servicenow"
url = "https://new.service-now.example"
auth = {{ type = "basic", user = "svc", password = "env:SNOW_PASSWORD" }}
"""
    config = parse_config(text, tmp_path / "crosswalk.toml")
    store = Store(store_url)
    opened = datetime(2026, 3, 2, 9, tzinfo=UTC)
    tickets = [
        Ticket(
            source="snow-good",
            platform="servicenow",
            source_id=f"t{i}",
            kind="incident",
            number=f"INC{i}",
            state="closed",
            priority=2,
            opened_at=opened,
            resolved_at=opened.replace(hour=12),
            assignment_group="Desk" if i % 2 else None,
        )
        for i in range(4)
    ]
    store.write_page(source="snow-good", stream="incident", entity="ticket", records=tickets)
    store.write_page(
        source="snow-good",
        stream="dmn_demand",
        entity="demand",
        records=[Demand(source="snow-good", platform="servicenow", source_id="d1", name="New CAD")],
    )
    good = store.start_run(source="snow-good", full=True, dry_run=False, holder="t", manifest={})
    store.finish_run(
        good,
        outcome="ok",
        counts={},
        error=None,
        manifest={
            "streams": {"incident": {"read": 4}, "dmn_demand": {"read": 1}},
            "telemetry": {
                "requests": 3,
                "throttled": 1,
                "latency_p50_ms": 80.0,
                "latency_p95_ms": 200.0,
            },
        },
    )
    down = store.start_run(source="snow-down", full=False, dry_run=False, holder="t", manifest={})
    store.finish_run(
        down,
        outcome="failed",
        counts={},
        error="authentication failed for source snow-down (HTTP 401)",
        manifest={},
    )
    yield config, store
    store.close()


def test_every_source_is_shown_a_failed_one_as_failed(two_sources: tuple[Any, Store]) -> None:
    config, store = two_sources
    pm = make_registry(entry_points_group=None)
    results = {r.source: r for r in evaluate(config, store, pm=pm)}
    assert set(results) == {"snow-good", "snow-down", "snow-new"}, "no source is dropped"
    assert results["snow-good"].status == "ok"
    assert results["snow-down"].status.startswith("failed: authentication failed")
    assert results["snow-new"].status == "never synced"
    assert results["snow-good"].rank == 1

    good = results["snow-good"]
    tickets = good.coverage["ticket"]
    assert tickets["records"] == 4
    assert tickets["fields"]["assignment_group"] == 50.0
    assert tickets["fields"]["responded_at"] is None, "ServiceNow's adapter does not provide it"
    assert good.coverage["device"]["fields"]["compliance"] is None, "absent, not 0 %"
    assert good.coverage["device"]["fields"]["serial_key"] == 0.0, "provided, nothing synced"
    assert good.quality["required_missing"] == {"demand.state": 1, "demand.submitted_at": 1}
    assert good.quality["unknown_values"] == {"demand.state": 1}
    assert good.api["throttled"] == 1 and good.api["latency_p95_ms"] == 200.0
    assert good.api["records"] == 5
    assert good.metrics["itsm.mttr_hours"]["supported"] is True
    assert good.metrics["itsm.mttr_hours"]["value"] == 3.0
    assert good.metrics["endpoint.compliance_rate"]["supported"] is False

    down = results["snow-down"]
    assert down.api["failed_runs"] == 1 and down.coverage["ticket"]["records"] == 0


def test_the_html_and_markdown_show_the_same_numbers_as_the_json(
    two_sources: tuple[Any, Store],
) -> None:
    config, store = two_sources
    results = evaluate(config, store, pm=make_registry(entry_points_group=None))
    html = render_html(results)
    markdown = render_markdown(results)
    for result in results:
        assert f'data-source="{result.source}"' in html
        for info in result.scores.values():
            assert f"{info['score']:g}" in html
        assert f"## {result.source}" in markdown
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert html.count("<section>") == 3


def test_text_from_a_platform_is_escaped_in_the_html(two_sources: tuple[Any, Store]) -> None:
    config, store = two_sources
    [good] = evaluate(config, store, ["snow-down"], pm=make_registry(entry_points_group=None))
    good.status = "failed: <script>alert(1)</script>"
    html = render_html([good])
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_the_html_renders_in_chromium_with_the_json_scores(
    two_sources: tuple[Any, Store], tmp_path: Path
) -> None:
    from tests.core.test_reports_chromium import _browse, _chromium

    binary = _chromium()
    config, store = two_sources
    results = evaluate(config, store, pm=make_registry(entry_points_group=None))
    page = tmp_path / "evaluation.html"
    page.write_text(render_html(results), encoding="utf-8")
    url = page.resolve().as_uri()
    shot = tmp_path / "shot.png"
    outcome = _browse(binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,1400", url)
    assert shot.exists(), outcome.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        histogram = image.convert("L").histogram()
    assert sum(histogram[:200]) / sum(histogram) > 0.01, "the page is blank"
    dom = _browse(binary, tmp_path, "--dump-dom", url).stdout
    cells = {
        (criterion, source): text
        for criterion, source, text in re.findall(
            r'data-criterion="(\w+)" data-source="([^"]+)">([^<]*)<', dom
        )
    }
    for result in results:
        for name, info in result.scores.items():
            assert cells[(name, result.source)] == f"{info['score']:g}"
        total = "-" if result.total is None else f"{round(result.total, 1):g}"
        assert cells[("total", result.source)] == total
    assert dom.count("<svg") == 1 + len(results[0].scores)
