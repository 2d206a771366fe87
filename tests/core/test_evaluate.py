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
    # No criterion names a role: each is weighed within every role ServiceNow fills.
    expected = round((3 * 95 + 1 * 0 + 2 * 55) / 6, 1)
    assert {r: v["total"] for r, v in ev.roles.items()} == dict.fromkeys(
        ("ppm", "itsm", "endpoint"), expected
    )
    evidence = {e["measure"]: e for e in ev.scores["endpoints"]["evidence"]}
    assert evidence["device.compliance"]["why"] == (
        "compliance: the platform keeps no devices it could come from"
    )
    assert evidence["endpoint.compliance_rate"]["why"] == (
        "endpoint.compliance_rate cannot be computed: no managed devices"
    )


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
            if info["score"] is not None:
                assert f"{info['score']:g}" in html
        assert f"## {result.source}" in markdown
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert html.count('<section class="candidate"') == 3
    # ServiceNow fills all three roles: one section, one ranking and one chart per role.
    assert html.count('<section class="role"') == 3 and html.count("data-chart=") == 3


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
        (criterion, role, source): text
        for criterion, role, source, text in re.findall(
            r'data-criterion="(\w+)" data-role="(\w+)" data-source="([^"]+)">([^<]*)<', dom
        )
    }
    for result in results:
        for role, info in result.roles.items():
            for name, criterion in result.scores.items():
                if criterion["role"] in (None, role):
                    assert cells[(name, role, result.source)] == f"{criterion['score']:g}"
            total = "-" if info["total"] is None else f"{info['total']:g}"
            assert cells[("total", role, result.source)] == total
    assert dom.count("<svg") == len(results[0].roles)


def _scored(platform: str, criteria: dict[str, Criterion]) -> SourceEvaluation:
    ev = SourceEvaluation(source=f"{platform}-1", platform=platform, status="ok")
    ev.coverage = {
        "work_item": {
            "provided": True,
            "records": 10,
            "fields": {"budget": 60.0},
            "filled": {"budget": 6},
        },
        "device": {
            "provided": True,
            "records": 4,
            "fields": {"compliance": 100.0},
            "filled": {"compliance": 4},
        },
    }
    ev.kind_coverage = {
        "work_item:project": {
            "kinds": ["project"],
            "records": 6,
            "fields": {"budget": 100.0},
            "filled": {"budget": 6},
        },
    }
    score(ev, criteria)
    return ev


def test_criteria_outside_a_platforms_roles_are_na_and_denominators_are_the_kinds_concerned() -> (
    None
):
    criteria = {
        "money": Criterion(
            title="Money",
            weight=3,
            role="ppm",
            fields=["work_item.budget"],
            kinds={"work_item": ["project"]},
        ),
        "fleet": Criterion(title="Fleet", weight=3, role="endpoint", fields=["device.compliance"]),
        "loose": Criterion(
            title="Budget anywhere", weight=1, role="ppm", fields=["work_item.budget"]
        ),
    }
    clarity = _scored("clarity", criteria)
    # all 6 projects carry a budget; 4 tasks and portfolios do not, and are no denominator
    assert clarity.scores["money"]["score"] == 100.0
    assert clarity.scores["money"]["evidence"][0]["why"] == "budget filled on 6 of 6 projects"
    assert clarity.scores["loose"]["evidence"][0]["why"] == "budget filled on 6 of 10 work items"
    assert clarity.scores["fleet"]["score"] is None and not clarity.scores["fleet"]["applies"]
    assert "n/a" in clarity.scores["fleet"]["evidence"][0]["why"]
    assert set(clarity.roles) == {"ppm"}
    assert clarity.roles["ppm"]["total"] == round((3 * 100 + 1 * 60) / 4, 1)
    intune = _scored("intune", criteria)
    assert set(intune.roles) == {"endpoint"} and intune.roles["endpoint"]["total"] == 100.0
    assert intune.scores["money"]["score"] is None


def test_the_ranking_is_within_each_role_only() -> None:
    from itcrosswalk.core.evaluate import rank_roles

    criteria = load_criteria(None)
    results = [_scored(p, criteria) for p in ("clarity", "intune", "servicenow", "jira")]
    rank_roles(results)
    by = {ev.platform: ev for ev in results}
    assert set(by["intune"].roles) == {"endpoint"}
    assert set(by["jira"].roles) == {"itsm"}
    assert set(by["servicenow"].roles) == {"ppm", "itsm", "endpoint"}
    ranks = sorted((role, ev.roles[role]["rank"]) for ev in results for role in ev.roles)
    assert ranks == [
        ("endpoint", 1),
        ("endpoint", 2),
        ("itsm", 1),
        ("itsm", 2),
        ("ppm", 1),
        ("ppm", 2),
    ]


def test_the_sensitivity_names_the_exact_weight_that_flips_the_leader() -> None:
    from itcrosswalk.core.fitgap import sensitivity

    criteria = {
        "a": Criterion(title="A", weight=2, role="ppm"),
        "b": Criterion(title="B", weight=1, role="ppm"),
    }
    one = SourceEvaluation(source="one", platform="clarity", status="ok")
    two = SourceEvaluation(source="two", platform="project_online", status="ok")
    for ev, (a, b) in ((one, (90.0, 30.0)), (two, (60.0, 80.0))):
        ev.scores = {
            "a": {"score": a, "title": "A", "role": "ppm"},
            "b": {"score": b, "title": "B", "role": "ppm"},
        }
    view = sensitivity([one, two], criteria)["ppm"]
    # totals (2*90 + 30) / 3 = 70 and (2*60 + 80) / 3 = 66.7: one leads
    assert view["ranking"] == ["one", "two"]
    flips = {f["criterion"]: f for f in view["flips"]}
    # a's weight w with 90w + 30 = 60w + 80: w = 5/3; b's weight w with 180 + 30w = 120 + 80w: 1.2
    assert flips["a"]["flip_at"] == 1.67 and flips["a"]["challenger"] == "two"
    assert flips["b"]["flip_at"] == 1.2
    assert "raising the weight of B from 1 past 1.2 puts two above one" == flips["b"]["words"]


REQUIREMENTS = """
[[requirements]]
id = "PPM-01"
text = "Every project carries its budget"
role = "ppm"
priority = "should"
fields = ["work_item.budget"]
kinds = { work_item = ["project"] }

[[requirements]]
id = "PPM-02"
text = "Demands are decided in the tool"
role = "ppm"
priority = "must"
writes = ["demand"]
manual = { project_online = { verdict = "not met", note = "no demand intake in Project Online" } }

[[requirements]]
id = "EP-01"
text = "Devices report compliance"
role = "endpoint"
priority = "must"
fields = ["device.compliance"]
"""


def test_a_requirements_file_gives_a_fit_gap_whose_every_cell_names_its_evidence(
    tmp_path: Path,
) -> None:
    from itcrosswalk.core.fitgap import fit_gap, load_requirements

    path = tmp_path / "requirements.toml"
    path.write_text(REQUIREMENTS)
    requirements = load_requirements(path)
    criteria = load_criteria(None)
    clarity = _scored("clarity", criteria)
    clarity.integration = {"writes": ["demand"]}
    project = _scored("project_online", criteria)
    project.source = "pwa"
    intune = _scored("intune", criteria)
    matrix = fit_gap(requirements, [clarity, project, intune])
    ppm = matrix["ppm"]
    assert ppm["candidates"] == ["clarity-1", "pwa"], "intune is no PPM candidate"
    assert [r["id"] for r in ppm["rows"]] == ["PPM-02", "PPM-01"], "a must-have missed comes first"
    must = ppm["rows"][0]["cells"]
    assert must["clarity-1"] == {
        "verdict": "met",
        "evidence": [
            {"kind": "write", "verdict": "met", "why": "can create a demand through its API"}
        ],
    }
    assert must["pwa"]["verdict"] == "not met"
    assert must["pwa"]["evidence"][0]["why"] == "judged by hand: no demand intake in Project Online"
    assert ppm["musts_missed"] == {"clarity-1": [], "pwa": ["PPM-02"]}
    assert ppm["fit"] == {"clarity-1": 100.0, "pwa": 40.0}  # should 2 of 2 + must 0 of 3
    for role in matrix.values():
        for row in role["rows"]:
            for cell in row["cells"].values():
                assert cell["evidence"] and all(e["why"] for e in cell["evidence"])
    assert matrix["endpoint"]["candidates"] == ["intune-1"]


def test_requirements_from_xlsx_read_like_toml_and_bad_rows_are_named(tmp_path: Path) -> None:
    from openpyxl import Workbook

    from itcrosswalk.core.fitgap import load_requirements

    book = Workbook()
    sheet = book.active
    sheet.append(["id", "text", "role", "priority", "fields", "kinds", "manual"])
    sheet.append(
        [
            "PPM-01",
            "Every project carries its budget",
            "ppm",
            "Should",
            "work_item.budget",
            "work_item=project",
            None,
        ]
    )
    sheet.append(
        [
            "PPM-02",
            "Demands are decided in the tool",
            "ppm",
            "must",
            None,
            None,
            "project_online=not met: no demand intake in Project Online",
        ]
    )
    path = tmp_path / "requirements.xlsx"
    book.save(path)
    toml = tmp_path / "requirements.toml"
    toml.write_text(REQUIREMENTS)
    from_xlsx = load_requirements(path)
    from_toml = [r for r in load_requirements(toml) if r.id != "EP-01"]
    assert [r.model_dump() for r in from_xlsx] == [
        {**r.model_dump(), "writes": []} if r.id == "PPM-02" else r.model_dump() for r in from_toml
    ]

    sheet.append(["PPM-03", "Bad", "ppm", "nice to have", "work_item.budget", None, None])
    book.save(path)
    with pytest.raises(ConfigError, match=r"row 4 \(PPM-03\): priority"):
        load_requirements(path)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            '[[requirements]]\nid = "X"\ntext = "t"\nrole = "ppm"\npriority = "must"\n',
            "requirement X: names no evidence",
        ),
        (
            '[[requirements]]\nid = "X"\ntext = "t"\nrole = "hr"\npriority = "must"\nwrites = ["demand"]\n',
            "unknown role 'hr'",
        ),
        (
            '[[requirements]]\nid = "X"\ntext = "t"\nrole = "ppm"\npriority = "must"\nfields = ["work_item.colour"]\n',
            "'work_item.colour' is not a field",
        ),
        (
            '[[requirements]]\nid = "X"\ntext = "t"\nrole = "ppm"\npriority = "must"\nmanual = { clarity = { verdict = "met" } }\n',
            "note",
        ),
    ],
)
def test_a_bad_requirement_is_named(tmp_path: Path, text: str, said: str) -> None:
    from itcrosswalk.core.fitgap import load_requirements

    path = tmp_path / "requirements.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_requirements(path)
