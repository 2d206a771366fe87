"""``crosswalk portfolio`` on the demo city: four platforms' emulators over loopback HTTPS,
synced once, then economics, rank and select through CliRunner, and approvals sent back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import add_investments, generate

PLATFORMS = ["clarity", "jira_align", "project_online", "servicenow"]
PORTFOLIO = """
[portfolio]
budget_year = "FY2028"

[portfolio.scenarios.lean]
budget = 2000000

[portfolio.scenarios.generous]
budget = 4000000
objective = "npv"

[portfolio.scenarios.staffed]
budget = 4000000
capacity_from_store = true
capacity = { "Network Engineer" = 300 }
"""


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pm = make_registry(entry_points_group=None)
    world = generate(7, "small")
    add_investments(world)
    folder = tmp_path_factory.mktemp("portfolio")
    with runner.start(world, pm=pm, platforms=PLATFORMS) as box:
        path = runner.write_config(box, folder, store_url=f"sqlite:///{folder / 'cw.db'}")
        path.write_text(path.read_text() + PORTFOLIO)
        config = load_config(path)
        store = Store(config.store.url)
        engine = SyncEngine(config, store, pm=pm)
        for name in config.sources:
            engine.sync(name)
        store.close()
        yield {"pm": pm, "path": path, "box": box, "folder": folder, "world": world}


def _run(city: dict[str, Any], *args: str) -> Any:
    result = CliRunner().invoke(make_cli(city["pm"]), ["--config", str(city["path"]), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_select_funds_across_platforms_and_says_why_the_rest_were_left_out(
    city: dict[str, Any],
) -> None:
    out = city["folder"] / "report"
    lp = city["folder"] / "model.lp"
    result = _run(city, "portfolio", "select", "--budget", "3000000", "--format", "json",
                  "--lp", str(lp), "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (selection,) = data["selections"]
    assert selection["status"] == "optimal"
    platforms = {r["platform"] for r in selection["funded"]}
    assert len(platforms) >= 3, platforms
    assert selection["unfunded"], "a 3 M budget cannot fund every candidate"
    for row in selection["unfunded"]:
        assert row["reason"] and row["binding"], row
    spend = {y["constraint"]: y["used"] for y in selection["years"]}
    assert all(used <= 3_000_000 + 1e-6 for used in spend.values())
    # The frontier never falls as the budget grows, and at 100% it is the selection's value.
    values = [p["value"] for p in selection["frontier"] if p["value"] is not None]
    assert values == sorted(values)
    at_budget = next(p for p in selection["frontier"] if p["budget_factor"] == 1.0)
    assert at_budget["value"] == pytest.approx(selection["value"], abs=1e-3)
    # The review board's files: every unfunded item with its reason, the chart, the workbook.
    html = (out / "portfolio.html").read_text()
    assert "Not funded, and why" in html and "<svg" in html
    for row in selection["unfunded"]:
        assert row["candidate"] in html
    from openpyxl import load_workbook

    book = load_workbook(out / "portfolio.xlsx")
    assert {"Scenarios", "Funded default", "Unfunded default", "Frontier default"} <= set(
        book.sheetnames
    )
    assert book["Unfunded default"].max_row == len(selection["unfunded"]) + 1
    text = lp.read_text()
    assert text.count("\\ x") == len(selection["funded"]) + len(selection["unfunded"])
    assert "budget_FY2028:" in text and "Binary" in text
    kinds = {row["reason_kind"] for row in data["excluded"]}
    assert "duplicate" in kinds and "no cost" in kinds


def test_scenarios_side_by_side(city: dict[str, Any]) -> None:
    out = city["folder"] / "scenarios"
    result = _run(city, "portfolio", "select", "--scenario", "lean", "--scenario", "generous",
                  "--format", "json", "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    lean, generous = json.loads(result.stdout)["selections"]
    assert (lean["scenario"], generous["scenario"]) == ("lean", "generous")
    assert generous["objective"] == "npv"
    html = (out / "portfolio.html").read_text()
    assert "Scenarios side by side" in html


def test_capacity_comes_from_the_capacity_model(city: dict[str, Any]) -> None:
    """Role hours per fiscal year are the capacity model's available hours (capacity less
    what is booked), except a role the scenario names, which keeps the hours given."""
    from datetime import date

    from itcrosswalk.core.capacity import capacity_by_role

    result = _run(city, "portfolio", "select", "--scenario", "staffed", "--format", "json")
    assert result.exit_code == 0, result.output
    (selection,) = json.loads(result.stdout)["selections"]
    rows = {r["constraint"]: r for r in selection["capacity"]}
    assert rows, "the ServiceNow labor cost plans need roles"
    config = load_config(city["path"])
    store = Store(config.store.url)
    try:
        model = capacity_by_role(store, config, start=date(2026, 7, 1), end=date(2034, 7, 1))
    finally:
        store.close()
    for name, row in rows.items():
        role, fy = name.rsplit(" hours FY", 1)
        if role == "Network Engineer":
            assert row["limit"] == 300
            continue
        months = [f"{int(fy) - 1}-{m:02d}" for m in range(7, 13)] + [
            f"{fy}-{m:02d}" for m in range(1, 7)
        ]
        available = sum(model.get(role, {}).get(m, {}).get("available", 0.0) for m in months)
        assert row["limit"] == pytest.approx(max(available, 0.0), abs=0.05), name
        assert row["used"] <= row["limit"] + 1e-6


def test_economics_explain_and_by_platform(city: dict[str, Any]) -> None:
    result = _run(city, "portfolio", "economics", "--format", "json")
    rows = json.loads(result.stdout)
    from_plans = [
        r
        for r in rows
        if r["platform"] == "servicenow" and r["money_from"].startswith("plan_lines")
    ]
    assert from_plans, "ServiceNow demands carry SPM cost and benefit plans"
    explained = json.loads(
        _run(city, "portfolio", "economics", "--explain", "--format", "json").stdout
    )
    one = from_plans[0]["candidate"]
    years = [r for r in explained if r["candidate"] == one]
    assert years[0]["discount_factor"] == 1 and years[0]["t"] == 0
    assert sum(r["present_value"] for r in years) == pytest.approx(from_plans[0]["npv"], abs=0.05)
    world = city["world"]
    demand = next(d for d in world.demands if d.number == one.split(":")[1])
    expected = sum(
        line.amount
        for line in world.investments
        if line.work_id == demand.id and line.plan != "benefit"
    )
    assert from_plans[0]["cost"] == pytest.approx(
        expected, abs=0.05
    )  # the task roll-up rows are not counted
    grouped = json.loads(
        _run(city, "portfolio", "economics", "--by", "platform", "--format", "json").stdout
    )
    assert {g["platform"] for g in grouped} == {
        "clarity",
        "jira_align",
        "project_online",
        "servicenow",
    }


def test_rank_lists_every_platform_with_the_parts(city: dict[str, Any]) -> None:
    rows = json.loads(_run(city, "portfolio", "rank", "--format", "json").stdout)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {"alignment", "value", "priority", "cost"} <= set(rows[0])
    assert {r["platform"] for r in rows} >= {"servicenow", "jira_align", "project_online"}


def test_apply_is_a_dry_run_first_then_approves_once(city: dict[str, Any]) -> None:
    app = city["box"].apps["servicenow"]
    result = _run(city, "portfolio", "select", "--budget", "3000000", "--format", "json")
    funded = [r for r in json.loads(result.stdout)["selections"][0]["funded"]
              if r["platform"] == "servicenow" and r["entity"] == "demand"]  # fmt: skip
    assert funded
    ids = {r["source_id"] for r in funded}
    before = {sid: app._index["dmn_demand"][sid]["state"] for sid in ids}
    dry = _run(city, "portfolio", "select", "--budget", "3000000", "--apply")
    assert "dry run: nothing was sent" in dry.output
    assert {sid: app._index["dmn_demand"][sid]["state"] for sid in ids} == before
    args = ("portfolio", "select", "--budget", "3000000", "--apply", "--yes", "--format", "json")
    done = json.loads(_run(city, *args).stdout)["apply"]
    assert {r["action"] for r in done if r["platform"] == "servicenow"} == {"approved"}
    assert {app._index["dmn_demand"][sid]["state"] for sid in ids} == {"8"}
    assert {r["action"] for r in done if r["platform"] != "servicenow"} <= {"no_writer", "skipped"}
    again = json.loads(_run(city, *args).stdout)["apply"]
    assert {r["action"] for r in again if r["platform"] == "servicenow"} == {"already_approved"}


def test_bad_scenario_names_are_errors(city: dict[str, Any], tmp_path: Path) -> None:
    result = _run(city, "portfolio", "select", "--scenario", "nope")
    assert result.exit_code == 1 and "no scenario 'nope'" in result.output
    result = _run(city, "portfolio", "select", "--fiscal-year", "next", "--budget", "1")
    assert result.exit_code == 2 and "not a fiscal year" in result.output
