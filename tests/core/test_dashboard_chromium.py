"""The executive dashboards, the metric reports and the committee's evaluation as a CIO would see
them: headless Chromium opens each page with the network off; its screenshot is kept as a test
artefact (``$TEST_ARTEFACTS``, default ``test-artefacts/``), no table is wider than its column,
and every chart on the page draws exactly the numbers of the page's JSON."""

from __future__ import annotations

import html
import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.config import Config
from itcrosswalk.core.evaluate import ROLES
from itcrosswalk.core.history import record_snapshot
from itcrosswalk.core.reports import dashboard, evaluation, metrics_report, render
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import NOW, city_store
from tests.core.test_reports_chromium import _browse, _chromium

ARTEFACTS = Path(os.environ.get("TEST_ARTEFACTS", "test-artefacts"))

MEASURE = """<script>
(() => {
  const wide = [];
  for (const table of document.querySelectorAll("table")) {
    const room = table.parentElement.clientWidth;
    if (table.scrollWidth > room + 1) wide.push(`table ${table.id || table.className} ${table.scrollWidth} > ${room}`);
    for (const cell of table.querySelectorAll("td, th")) {
      if (cell.scrollWidth > cell.clientWidth + 1) wide.push(`cell "${cell.textContent.trim().slice(0, 40)}" ${cell.scrollWidth} > ${cell.clientWidth}`);
    }
  }
  const out = document.createElement("pre");
  out.id = "overflow";
  out.textContent = JSON.stringify(wide);
  document.body.appendChild(out);
})();
</script>"""


def _city(url: str) -> tuple[Store, Any]:
    """The hand-worked city with a compliance run and two snapshots a week apart (a trend)."""
    store = city_store(url)
    pm = make_registry(entry_points_group=None)
    run_controls(store, list(load_controls().values()), benchmark="city", now=NOW)
    record_snapshot(store, Config(), pm=pm, origin="job nightly", now=NOW - timedelta(days=7))
    record_snapshot(store, Config(), pm=pm, origin="job nightly", now=NOW)
    return store, pm


def _charts(page: str) -> dict[str, list[dict[str, Any]]]:
    """Every chart on the page: its declared values, checked against the marks it draws."""
    found: dict[str, list[dict[str, Any]]] = {}
    for match in re.finditer(r"<svg class=\"chart\"(.*?)</svg>", page, re.S):
        head = match.group(1)
        chart = re.search(r'data-chart="([^"]+)"', head)
        values = re.search(r"""data-values=(?:"([^"]*)"|'([^']*)')""", head)
        assert chart and values, head[:200]
        declared = json.loads(html.unescape(values.group(1) or values.group(2)))
        marks = re.findall(r'class="mark" data-label="([^"]*)" data-value="([^"]*)"', head)
        drawn = [(html.unescape(label), float(v) if v else None) for label, v in marks]
        # a value the data could not support is drawn as "n/a" or not at all, never as 0
        assert [m for m in drawn if m[1] is not None] == [
            (d["label"], d["value"]) for d in declared if d["value"] is not None
        ], chart.group(1)
        found[html.unescape(chart.group(1))] = declared
    return found


def _look(binary: str, tmp_path: Path, name: str, page: str) -> str:
    """Screenshot the page (kept as an artefact), check no table overflows; the rendered DOM."""
    path = tmp_path / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"{name}.png"
    result = _browse(
        binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", path.resolve().as_uri()
    )
    assert shot.exists(), result.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        histogram = image.convert("L").histogram()
    assert sum(histogram[:200]) / sum(histogram) > 0.01, f"{name}: the page is blank"
    # The measuring copy runs a script, so it goes without the page's no-script policy.
    probe = tmp_path / f"{name}-probe.html"
    measured = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    probe.write_text(measured.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    for width in (1200, 900):
        dom = _browse(
            binary,
            tmp_path,
            f"--window-size={width},2400",
            "--virtual-time-budget=3000",
            "--dump-dom",
            probe.resolve().as_uri(),
        ).stdout
        report = re.search(r'<pre id="overflow">(.*?)</pre>', dom, re.S)
        assert report, f"{name}: the measuring script did not run"
        assert json.loads(html.unescape(report.group(1))) == [], f"{name} at {width} px"
    return _browse(binary, tmp_path, "--dump-dom", path.resolve().as_uri()).stdout


@pytest.mark.parametrize("audience", list(dashboard.AUDIENCES))
def test_each_dashboard_renders_without_overflow_and_draws_its_json(
    audience: str, tmp_path: Path
) -> None:
    binary = _chromium()
    store, pm = _city(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        data = json.loads(
            render.render(dashboard.build(store, Config(), audience, pm=pm, now=NOW), "json")
        )
        page = render.render(
            dashboard.build(store, Config(), audience, pm=pm, now=NOW), "html"
        ).decode()
    finally:
        store.close()
    dom = _look(binary, tmp_path, f"dashboard-{audience}", page)
    charts = _charts(dom)
    for kpi in data["kpis"]:
        tile = re.search(
            rf'data-kpi="{re.escape(kpi["id"])}" data-value="([^"]*)" data-rag="([^"]*)"', dom
        )
        assert tile, kpi["id"]
        assert (float(tile.group(1)) if tile.group(1) else None) == kpi["value"], kpi["id"]
        assert tile.group(2) == (kpi["rag"] or "")
        if any(p["value"] is not None for p in kpi["trend"]):
            assert [p["value"] for p in charts[f"trend-{kpi['id']}"]] == [
                p["value"] for p in kpi["trend"]
            ]
            assert len(kpi["trend"]) == 2, "one point per snapshot, oldest first"
    health = data["projects"]["health"]
    assert {p["label"]: p["value"] for p in charts["project-health"]} == {
        k: float(v) for k, v in health.items()
    }
    for item in data["comparison"]:
        assert {p["label"]: p["value"] for p in charts[f"compare-{item['id']}"]} == item["values"]
    assert dom.count('class="project"') == data["projects"]["count"]
    sources = re.findall(r'class="source" data-source="([^"]+)" data-verified="(yes|no)"', dom)
    assert {s: v == "yes" for s, v in sources} == {
        s["source"]: s["verified"] for s in data["sources"]
    }
    assert "http://" not in page.replace("http://www.w3.org", "")


def test_the_cio_dashboard_says_what_it_cannot_know(tmp_path: Path) -> None:
    store, pm = _city(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        data = dashboard.build(store, Config(), "cio", pm=pm, now=NOW)
    finally:
        store.close()
    kpis = {k["id"]: k for k in data["kpis"]}
    # No capacity metric is installed in this build: the tile says so, with no colour.
    capacity = kpis["capacity.over_allocated_people"]
    assert (capacity["value"], capacity["rag"], capacity["shown"]) == (None, None, "not available")
    assert data["risks"]["over_allocated_people"]["count"] is None
    # The ServiceNow sync quarantined a record: its data is flagged, not shown as verified.
    snow = next(s for s in data["sources"] if s["source"] == "snow")
    assert not snow["verified"] and "1 records quarantined" in snow["problems"]
    # Cancelled projects are in no total, and the page says how many were left out.
    listed = data["projects"]
    assert all(p["state"] != "cancelled" for p in listed["list"])
    assert listed["count"] == len(listed["list"])
    assert listed["budget_total"] == sum(p["budget"] for p in listed["list"] if p["budget"])


def test_the_thresholds_in_the_config_set_the_colours(tmp_path: Path) -> None:
    from itcrosswalk.core.config import parse_config

    store, pm = _city(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        strict = parse_config(
            '[dashboard.thresholds."compliance.pass_rate"]\ngreen = 100\namber = 99.9\n',
            tmp_path / "crosswalk.toml",
        )
        lax = parse_config(
            '[dashboard.thresholds."compliance.pass_rate"]\ngreen = 1\namber = 0\n',
            tmp_path / "crosswalk.toml",
        )
        rag = {
            name: next(
                k
                for k in dashboard.build(store, config, "endpoints", pm=pm, now=NOW)["kpis"]
                if k["id"] == "compliance.pass_rate"
            )
            for name, config in (("strict", strict), ("lax", lax))
        }
    finally:
        store.close()
    assert rag["strict"]["rag"] == "red" and "the City's" in rag["strict"]["threshold"]
    assert rag["lax"]["rag"] == "green"


def test_a_threshold_the_wrong_way_round_is_named(tmp_path: Path) -> None:
    from itcrosswalk.core.config import parse_config
    from itcrosswalk.core.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"dashboard.thresholds.\"ppm.spi\": green 0.8 must be at or above amber 0.9",
    ):
        parse_config(
            '[dashboard.thresholds."ppm.spi"]\ngreen = 0.8\namber = 0.9\n', tmp_path / "c.toml"
        )


@pytest.mark.parametrize("kind", ["portfolio", "service"])
def test_the_metric_reports_render_without_overflow_and_draw_their_json(
    kind: str, tmp_path: Path
) -> None:
    binary = _chromium()
    store, pm = _city(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        data = metrics_report.build(store, Config(), kind, pm=pm, now=NOW)
    finally:
        store.close()
    page = render.render(data, "html").decode()
    dom = _look(binary, tmp_path, f"report-{kind}", page)
    charts = _charts(dom)
    assert charts, "a report with no chart"
    for metric in data["metrics"]:
        if metric["unsupported"]:
            continue
        for dimension, values in metric["breakdown"].items():
            drawn = charts.get(f"m-{metric['id']}-{dimension}")
            if drawn is None:
                continue
            numeric = {k: round(float(v), 4) for k, v in values.items() if v is not None}
            assert {p["label"]: round(p["value"], 4) for p in drawn if p["value"] is not None} == (
                {k: numeric[k] for k in list(numeric)[:20]} if dimension != "month" else numeric
            ), (metric["id"], dimension)
            if dimension == "month":
                labels = [p["label"] for p in drawn]
                assert labels == sorted(labels), "time runs left to right"
        if any(p["value"] is not None for p in metric["trend"]):
            assert [p["value"] for p in charts[f"trend-{metric['id']}"]] == [
                p["value"] for p in metric["trend"]
            ]
    assert "--explain" not in page and "--since" not in page, "no command-line flags in notes"
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", page), "no microsecond timestamps"
    if kind == "portfolio":
        assert dom.count('class="project"') == data["projects"]["count"]


def test_the_evaluation_renders_without_overflow_and_draws_its_json(tmp_path: Path) -> None:
    from itcrosswalk.core.config import parse_config
    from itcrosswalk.core.evaluate import evaluate
    from itcrosswalk.core.fitgap import load_requirements

    binary = _chromium()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store, pm = _city(url)
    config = parse_config(
        f"""
[store]
url = "{url}"
[sources.snow]
platform = "servicenow"
url = "https://snow.service-now.example"
auth = {{ type = "basic", user = "svc", password = "env:SNOW_PASSWORD" }}
[sources.intune]
platform = "intune"
tenant_id = "00000000-0000-0000-0000-000000000000"
auth = {{ type = "oauth_client_credentials", client_id = "x", client_secret = "env:GRAPH_SECRET" }}
[sources.ja]
platform = "jira_align"
url = "https://city.jiraalign.example"
auth = {{ type = "bearer", token = "env:JA_TOKEN" }}
""",
        tmp_path / "crosswalk.toml",
    )
    requirements = load_requirements(Path(__file__).parents[2] / "examples" / "requirements.toml")
    try:
        results = evaluate(config, store, pm=pm, now=NOW)
    finally:
        store.close()
    data = evaluation.pack(results, None, requirements)
    page = evaluation.render_html(results, None, requirements)
    dom = _look(binary, tmp_path, "evaluation", page)
    charts = _charts(dom)
    for role, info in data["roles"].items():
        assert role in ROLES
        assert [(p["label"], p["value"]) for p in charts[f"total-{role}"]] == [
            (row["source"], row["total"]) for row in info["ranking"]
        ]
    # Every cell of the fit-gap names its evidence, and a must-have missed comes first.
    cells = re.findall(
        r'class="cell v-[\w-]+" data-source="[^"]+" data-verdict="([^"]+)">(.*?)</td>', dom, re.S
    )
    assert cells and all("<li>" in body for _verdict, body in cells)
    # The committee's workbook holds the same fit-gap, one row per requirement and candidate.
    import io

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(evaluation.render_xlsx(results, None, requirements)))
    assert book.sheetnames == ["Ranking", "Fit-gap", "Sensitivity", "Evidence"]
    expected = sum(len(fg["rows"]) * len(fg["candidates"]) for fg in data["fit_gap"].values())
    assert book["Fit-gap"].max_row == 1 + expected
    assert all(row[6] for row in book["Fit-gap"].iter_rows(min_row=2, values_only=True))
    assert "jira_align" in {r["platform"] for r in data["roles"]["ppm"]["ranking"]}
    assert "intune" not in {r["platform"] for r in data["roles"]["ppm"]["ranking"]}
