"""The CLI through CliRunner, against a CLI built from a fresh plugin manager."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.registry import make_registry

TICKET_KEYS = {
    "source",
    "platform",
    "source_id",
    "url",
    "updated_at",
    "kind",
    "number",
    "title",
    "priority",
    "state",
    "opened_at",
    "resolved_at",
    "closed_at",
    "assignment_group",
    "assignee",
}


@pytest.fixture
def cli() -> Any:
    return make_cli(make_registry(entry_points_group=None))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("demo") / "crosswalk-demo"
    result = CliRunner().invoke(
        make_cli(make_registry(entry_points_group=None)),
        ["demo", "--dir", str(directory), "--size", "tiny"],
    )
    return directory, result.output + (repr(result.exception) if result.exception else "")


def test_demo_writes_config_store_and_says_what_landed(demo: tuple[Path, str]) -> None:
    directory, output = demo
    assert (directory / "crosswalk.toml").exists(), output
    assert "what landed" in output
    assert "synced sandbox-servicenow" in output
    assert (directory / "crosswalk.db").exists()
    assert (directory / "sandbox-secret").stat().st_mode & 0o077 == 0


def test_export_tickets_json_after_the_demo_with_the_emulators_stopped(
    demo: tuple[Path, str], cli: Any
) -> None:
    directory, _ = demo
    result = CliRunner().invoke(
        cli,
        ["--config", str(directory / "crosswalk.toml"), "export", "tickets", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) > 20
    # The city's two service desks: ServiceNow and, for some departments, JSM.
    assert {row["platform"] for row in rows} == {"servicenow", "jira"}
    for row in rows:
        assert TICKET_KEYS <= set(row)
        assert row["state"] in {
            "new",
            "in_progress",
            "on_hold",
            "resolved",
            "closed",
            "cancelled",
            "unknown",
        }
        assert row["priority"] is None or 1 <= row["priority"] <= 5
        assert row["opened_at"] is None or row["opened_at"].endswith("+00:00")


def test_export_csv_neutralizes_formulas(demo: tuple[Path, str], cli: Any, tmp_path: Path) -> None:
    directory, _ = demo
    result = CliRunner().invoke(
        cli, ["--config", str(directory / "crosswalk.toml"), "export", "people", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows and {"source", "upn", "name"} <= set(rows[0])
    for row in rows:
        for cell in row.values():
            assert not cell or cell[0] not in "=+-@"


def test_status_json_has_watermarks_counts_and_the_last_run(
    demo: tuple[Path, str], cli: Any
) -> None:
    directory, _ = demo
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(directory / "crosswalk.toml"),
            "status",
            "sandbox-servicenow",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    incident = next(r for r in rows if r["stream"] == "incident")
    assert incident["watermark"] and incident["records"] > 0
    assert incident["quarantined"] == 0
    assert incident["last_run_outcome"] == "ok"
    assert incident["last_run_started"] and incident["last_run_ended"]


def test_a_typo_in_the_config_is_one_line_naming_the_key(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "crosswalk.toml"
    path.write_text(
        '[sources.snow]\nplatform = "servicenow"\nurl = "https://x.service-now.com"\n'
        'auth = { type = "basic", user = "u", pasword = "env:X" }\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "sync"])
    assert result.exit_code == 1
    assert "sources.snow.auth" in result.output and "pasword" in result.output
    assert "Traceback" not in result.output


def test_a_literal_secret_is_rejected_without_echoing_it(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "crosswalk.toml"
    path.write_text(
        '[sources.snow]\nplatform = "servicenow"\nurl = "https://x.service-now.com"\n'
        'auth = { type = "basic", user = "u", password = "hunter2-literal" }\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 1
    assert "sources.snow.auth.password" in result.output
    assert "hunter2-literal" not in result.output


def test_init_writes_a_starter_that_loads(cli: Any, tmp_path: Path) -> None:
    from itcrosswalk.core.config import load_config

    target = tmp_path / "crosswalk.toml"
    result = CliRunner().invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    config = load_config(target)
    assert config.sources
    again = CliRunner().invoke(cli, ["init", str(target)])
    assert again.exit_code == 2


def test_plugins_lists_servicenow_and_show_prints_its_tables(cli: Any) -> None:
    result = CliRunner().invoke(cli, ["plugins", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    servicenow = next(r for r in rows if r["name"] == "servicenow")
    assert servicenow["platforms"] == ["servicenow"]
    assert (
        "register_platforms" in servicenow["hooks"] and "register_sandboxes" in servicenow["hooks"]
    )
    shown = CliRunner().invoke(cli, ["plugins", "show", "servicenow"])
    tables = json.loads(shown.output)["mapping"]
    assert tables["ticket_states"]["incident"]["6"] == "resolved"


def test_unknown_source_is_a_clear_error(cli: Any, demo: tuple[Path, str]) -> None:
    directory, _ = demo
    result = CliRunner().invoke(
        cli, ["--config", str(directory / "crosswalk.toml"), "sync", "nope"]
    )
    assert result.exit_code == 2
    assert "no source 'nope'" in result.output


def test_metrics_side_by_side_by_platform_after_the_demo(demo: tuple[Path, str], cli: Any) -> None:
    directory, _output = demo
    config = str(directory / "crosswalk.toml")
    result = CliRunner().invoke(
        cli, ["--config", config, "metrics", "--by", "platform", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    metrics = {m["id"]: m for m in json.loads(result.output)}
    assert set(metrics["itsm.volume"]) >= {
        "id",
        "title",
        "unit",
        "value",
        "n",
        "breakdown",
        "unsupported",
    }
    volume = metrics["itsm.volume"]
    # Two service desks side by side: ServiceNow's and JSM's tickets add up to the city's.
    desks = volume["breakdown"]["platform"]
    assert desks["servicenow"] > 0 and desks["jira"] > 0
    assert desks["servicenow"] + desks["jira"] == volume["value"]
    for metric in ("itsm.mttr_hours", "itsm.reopen_rate", "itsm.platform_sla_attainment"):
        assert set(metrics[metric]["breakdown"]["platform"]) == {"servicenow", "jira"}, metric
    for metric in metrics.values():
        assert (metric["value"] is None) == (
            metric["unsupported"] is not None or metric["n"] == 0
        ), metric
    table = CliRunner().invoke(cli, ["--config", config, "metrics", "--by", "platform"])
    assert table.exit_code == 0 and "servicenow" in table.output


def test_metrics_show_explains_record_by_record(demo: tuple[Path, str], cli: Any) -> None:
    directory, _output = demo
    config = str(directory / "crosswalk.toml")
    shown = CliRunner().invoke(cli, ["--config", config, "metrics", "show", "itsm.mttr_hours"])
    assert shown.exit_code == 0 and "definition:" in shown.output
    result = CliRunner().invoke(
        cli,
        ["--config", config, "metrics", "show", "itsm.mttr_hours", "--explain", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    summary = CliRunner().invoke(
        cli, ["--config", config, "metrics", "--metric", "itsm.mttr_hours", "--format", "json"]
    )
    [mttr] = json.loads(summary.output)
    assert sum(1 for r in rows if r["counted"]) == mttr["n"]
    assert {r["reason"] for r in rows if not r["counted"]} <= {
        "cancelled",
        "resolved, no resolution time",
        "still open",
        "no opened time",
        "resolved before opened (bad timestamps)",
    }
    counted = [r for r in rows if r["counted"]]
    assert counted and all(r["detail"]["clock_seconds"] >= 0 for r in counted)
    for metric_id in ("itsm.sla_attainment", "ppm.count_by_state", "ppm.eac"):
        explained = CliRunner().invoke(
            cli, ["--config", config, "metrics", "show", metric_id, "--explain", "--format", "json"]
        )
        assert explained.exit_code == 0, explained.output
        records = json.loads(explained.output)
        assert records and all(r["record"] for r in records), f"{metric_id}: every record named"
        if metric_id == "itsm.sla_attainment":
            assert all("comparison" in r["detail"] for r in records if r["counted"])


def test_metrics_usage_errors_are_one_line(demo: tuple[Path, str], cli: Any) -> None:
    directory, _output = demo
    config = str(directory / "crosswalk.toml")
    unknown = CliRunner().invoke(cli, ["--config", config, "metrics", "show", "itsm.nope"])
    assert unknown.exit_code == 2 and "no metric 'itsm.nope'" in unknown.output
    bad = CliRunner().invoke(cli, ["--config", config, "metrics", "--by", "colour"])
    assert bad.exit_code == 2
    listed = CliRunner().invoke(cli, ["--config", config, "metrics", "list", "--format", "csv"])
    assert listed.exit_code == 0 and "itsm.sla_attainment" in listed.output


def test_the_demo_ends_with_an_evaluation_of_every_sandbox_platform(
    demo: tuple[Path, str], cli: Any
) -> None:
    directory, output = demo
    for made in ("evaluation.html", "metrics.json", "compliance.html", "compliance.json"):
        assert (directory / made).exists(), made
    config = str(directory / "crosswalk.toml")
    result = CliRunner().invoke(cli, ["--config", config, "evaluate", "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)["sources"]
    sources = {e["source"] for e in entries}
    assert sources == set(json.loads((directory / "evaluation.json").read_text()) and sources)
    assert "sandbox-servicenow" in sources
    for entry in entries:
        assert entry["status"] == "ok", entry["status"]
        assert set(entry) >= {"coverage", "metrics", "quality", "api", "integration", "scores"}
        assert entry["api"]["requests"] > 0 and entry["api"]["latency_p95_ms"] is not None
        # A platform that lacks an entity shows it absent, never as 0 % filled.
        for coverage in entry["coverage"].values():
            if not coverage["provided"]:
                assert set(coverage["fields"].values()) == {None}
        # Ranked within each role it fills, never across roles.
        assert entry["roles"], entry["source"]
        for role in entry["roles"].values():
            assert f"{role['rank']}. {entry['source']}" in output


def test_the_commands_the_demo_suggests_give_the_numbers_it_printed(
    demo: tuple[Path, str], cli: Any
) -> None:
    directory, _output = demo
    printed = {m["id"]: m["value"] for m in json.loads((directory / "metrics.json").read_text())}
    result = CliRunner().invoke(
        cli, ["--config", str(directory / "crosswalk.toml"), "metrics", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    later = {m["id"]: m["value"] for m in json.loads(result.stdout)}
    for metric in ("endpoint.stale_devices", "itsm.backlog", "endpoint.compliance_rate"):
        assert later[metric] == printed[metric], metric
    report = json.loads((directory / "compliance.json").read_text())
    again = CliRunner().invoke(
        cli,
        ["--config", str(directory / "crosswalk.toml"), "report", "compliance", "--format", "json"],
    )
    assert json.loads(again.stdout)["summary"]["alarm"] == report["summary"]["alarm"]


def test_a_second_demo_with_another_seed_starts_a_fresh_store(tmp_path: Path, cli: Any) -> None:
    from itcrosswalk.sandbox.world import generate

    directory = tmp_path / "demo"
    for seed in ("7", "8"):
        result = CliRunner().invoke(
            cli, ["demo", "--dir", str(directory), "--size", "tiny", "--seed", seed]
        )
        assert result.exit_code in (0, 3), result.output
    assert "replacing the previous demo's store" in result.output
    exported = CliRunner().invoke(
        cli,
        ["--config", str(directory / "crosswalk.toml"), "export", "tickets", "--format", "json"],
    )
    assert len(json.loads(exported.stdout)) == len(generate(8, "tiny").tickets)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "crosswalk.toml").write_text('[store]\nurl = "sqlite:///crosswalk.db"\n')
    refused = CliRunner().invoke(cli, ["demo", "--dir", str(foreign), "--size", "tiny"])
    assert refused.exit_code == 2 and "did not write" in refused.output


def test_the_demo_s_tickets_and_devices_carry_their_people_s_departments(
    demo: tuple[Path, str], cli: Any
) -> None:
    directory, _output = demo
    config = str(directory / "crosswalk.toml")
    for entity in ("tickets", "devices"):
        rows = json.loads(
            CliRunner()
            .invoke(cli, ["--config", config, "export", entity, "--format", "json"])
            .stdout
        )
        filled = [r for r in rows if r["department"]]
        assert len(filled) > 0.75 * len(rows), entity
        derived = [r for r in filled if r["extra"].get("department_derived")]
        assert derived and {r["extra"]["department_derived"] for r in derived} <= {
            "requester",
            "primary_user",
        }


def test_metrics_explain_says_where_each_department_came_from(tmp_path: Path, cli: Any) -> None:
    from itcrosswalk.core.store import Store
    from tests.cli.test_admin_cli import assert_fits, table_body
    from tests.core.test_metrics_exact import fill_departments

    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    fill_departments(store)
    store.close()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    show = ["--config", str(config), "metrics", "show"]
    result = CliRunner().invoke(cli, [*show, "itsm.volume", "--explain", "--format", "json"])
    assert result.exit_code == 0, result.output
    origins = {
        r["source_id"]: (r["department"], r["department_from"], r["department_person"])
        for r in json.loads(result.stdout)
    }
    assert origins == {
        "t01": ("Parks", "platform", None),
        "t02": ("Police", "requester", "Ana Moore"),
        "t03": (None, None, None),
    }
    devices = CliRunner().invoke(
        cli, [*show, "endpoint.os_currency", "--explain", "--format", "json"]
    )
    assert {r["source_id"]: r["department_from"] for r in json.loads(devices.stdout)} == {
        "d1": "platform",
        "d2": "primary_user",
    }
    # A table names the person in one cell, and fits the terminal it is given.
    for width in (80, 120):
        table = CliRunner().invoke(
            cli, [*show, "itsm.volume", "--explain"], env={"COLUMNS": f"{width}"}
        )
        assert table.exit_code == 0, table.output
        *rows, summary = table_body(assert_fits(table.stdout, width))
    assert summary == "3 counted, 0 excluded" and len(rows) == 3
    assert "Police" in rows[1] and "requester Ana Moore" in rows[1]
    assert "Parks" in rows[0] and "platform" in rows[0]
