"""``crosswalk report compliance``, through CliRunner against a CLI built from a fresh plugin
manager, on the hand-worked store of tests/core/test_compliance_controls.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import city_store


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Path]:
    db = tmp_path / "store.db"
    city_store(f"sqlite:///{db}").close()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    return make_cli(make_registry(entry_points_group=None)), config


def _invoke(cli: Any, config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_report_compliance_json_exits_3_with_alarms(setup: tuple[Any, Path]) -> None:
    cli, config = setup
    result = _invoke(cli, config, "report", "compliance", "--format", "json")
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["report"] == "compliance" and data["benchmark"] == "city"
    assert data["summary"]["controls"] >= 15
    alarms = {(f["control_id"], f["resource"]) for f in data["findings"] if f["status"] == "alarm"}
    assert ("endpoint.disk_encryption", "intune/i2") in alarms
    assert ("endpoint.intune_in_cmdb", "intune/i3") in alarms
    assert ("portfolio.business_case", "snow/w2") in alarms
    assert f"{data['summary']['controls']} controls" in result.stderr


def test_report_compliance_only_some_controls_then_as_of(
    setup: tuple[Any, Path], tmp_path: Path
) -> None:
    cli, config = setup
    out = tmp_path / "reports" / "c.md"
    result = _invoke(
        cli,
        config,
        "report",
        "compliance",
        "--control",
        "endpoint.primary_user",
        "--format",
        "md",
        "--output",
        str(out),
    )
    assert result.exit_code == 3, result.output
    text = out.read_text()
    assert "endpoint.primary\\_user" in text and "POL-LT-0002" in text
    assert f"wrote {out}" in result.stderr
    again = _invoke(
        cli, config, "report", "compliance", "--as-of", "2999-01-01", "--format", "json"
    )
    assert again.exit_code == 3, again.output
    assert [c["id"] for c in json.loads(again.stdout)["controls"]] == ["endpoint.primary_user"]
    early = _invoke(cli, config, "report", "compliance", "--as-of", "2001-01-01")
    assert early.exit_code == 1
    assert "no compliance run was recorded on or before 2001-01-01" in early.stderr


def test_report_compliance_all_clear_exits_0(setup: tuple[Any, Path]) -> None:
    cli, config = setup
    # Every source synced completely; the quarantined incident is for information only.
    result = _invoke(
        cli, config, "report", "compliance", "--control", "data.source_sync", "--format", "csv"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("control_id,title,severity,status")
    unknown = _invoke(cli, config, "report", "compliance", "--benchmark", "nothing")
    assert unknown.exit_code == 2 and "no benchmark 'nothing'" in unknown.stderr
    for command in ("compliance", "controls"):
        typo = _invoke(cli, config, "report", command, "--benchmark", "cis-v9")
        assert typo.exit_code == 2, typo.output
        assert "no benchmark 'cis-v9'; did you mean 'cis-v8'?" in typo.stderr
        assert "'--benchmark'" in typo.stderr


def test_report_compliance_usage_errors(setup: tuple[Any, Path]) -> None:
    cli, config = setup
    xlsx = _invoke(cli, config, "report", "compliance", "--format", "xlsx")
    assert xlsx.exit_code == 2 and "--output" in xlsx.output
    unknown = _invoke(cli, config, "report", "compliance", "--control", "nope")
    assert unknown.exit_code == 2 and "no control 'nope'" in unknown.stderr
    mixed = _invoke(cli, config, "report", "compliance", "--as-of", "2026-01-01", "--control", "x")
    assert mixed.exit_code == 2
    bad_date = _invoke(cli, config, "report", "compliance", "--as-of", "last monday")
    assert bad_date.exit_code == 2


def test_report_compliance_xlsx_and_html_files(setup: tuple[Any, Path], tmp_path: Path) -> None:
    cli, config = setup
    from openpyxl import load_workbook

    book = tmp_path / "c.xlsx"
    assert (
        _invoke(cli, config, "report", "compliance", "-o", str(book), "--format", "xlsx").exit_code
        == 3
    )
    assert "Findings" in load_workbook(book).sheetnames
    page = tmp_path / "c.html"
    assert _invoke(cli, config, "report", "compliance", "-o", str(page)).exit_code == 3
    assert page.read_text().startswith("<!DOCTYPE html>")


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jobs.toml"


def test_schedule_prints_crontab_lines_and_systemd_units(setup: tuple[Any, Path]) -> None:
    cli, config = setup
    cron = _invoke(cli, config, "schedule", str(EXAMPLE), "--cron")
    assert cron.exit_code == 0, cron.output
    lines = [line for line in cron.stdout.splitlines() if not line.startswith("#")]
    assert [" ".join(line.split()[:5]) for line in lines] == ["0 7 * * 1", "30 1 * * *"]
    assert all(f"--config {config.resolve()} run {EXAMPLE}" in line for line in lines)
    units = _invoke(cli, config, "schedule", str(EXAMPLE), "--systemd", "--job", "nightly-sync")
    assert units.exit_code == 0
    assert "OnCalendar=*-*-* 01:30:00" in units.stdout
    assert "crosswalk-job-monday-compliance" not in units.stdout
    assert _invoke(cli, config, "schedule", str(EXAMPLE)).exit_code == 2


def test_run_reports_a_bad_jobs_file_in_one_line(setup: tuple[Any, Path], tmp_path: Path) -> None:
    cli, config = setup
    bad = tmp_path / "jobs.toml"
    bad.write_text("[jobs.monday]\nsync = true\nreprots = []\n")
    result = _invoke(cli, config, "run", str(bad))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {bad}: jobs.monday.reprots: unknown key"


def test_run_a_job_through_the_cli(setup: tuple[Any, Path], tmp_path: Path) -> None:
    cli, config = setup
    jobs_file = tmp_path / "jobs.toml"
    jobs_file.write_text(
        '[jobs.weekly]\nsync = false\nreports = [{ formats = ["md"] }]\n'
        '[jobs.weekly.folder]\npath = "out"\n'
        "[jobs.quiet]\nsync = false\nreports = []\n"
    )
    result = _invoke(cli, config, "run", str(jobs_file), "--format", "json")
    assert result.exit_code == 3, result.output
    rows = {r["job"]: r for r in json.loads(result.stdout)}
    assert rows["weekly"]["outcome"] == "attention" and rows["weekly"]["delivered"] == ["folder"]
    assert rows["quiet"]["outcome"] == "ok"
    [report] = (tmp_path / "out").iterdir()
    assert report.name.startswith("weekly-compliance-") and report.suffix == ".md"
    only = _invoke(cli, config, "run", str(jobs_file), "--job", "quiet")
    assert only.exit_code == 0


def test_report_controls_lists_the_benchmark(setup: tuple[Any, Path]) -> None:
    cli, config = setup
    result = _invoke(cli, config, "report", "controls", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert len(rows) >= 15
    encryption = rows["endpoint.disk_encryption"]
    assert encryption["severity"] == "high" and encryption["benchmarks"] == ["city"]
    assert encryption["references"] == "cis 3.6, 3.11; nist SC-28, MP-5; city ISP-7.2"
    assert encryption["query"].lstrip().startswith("SELECT")
    cis = _invoke(cli, config, "report", "controls", "--benchmark", "cis-v8", "--format", "csv")
    assert cis.exit_code == 0
    assert "portfolio.business_case" not in cis.stdout and "endpoint.checkin" in cis.stdout


def test_report_compliance_on_an_empty_store_exits_3_and_records_nothing(tmp_path: Path) -> None:
    # Before any sync every control returned no row: "21 controls, 0 failed", exit 0.
    db = tmp_path / "empty.db"
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    cli = make_cli(make_registry(entry_points_group=None))
    result = _invoke(cli, config, "report", "compliance", "--format", "json")
    assert result.exit_code == 3, result.output
    assert "the store holds no synced data" in result.stderr and result.stdout == ""
    later = _invoke(cli, config, "report", "compliance", "--as-of", "2999-01-01")
    assert later.exit_code == 1 and "no compliance run was recorded" in later.stderr
    run = _invoke(cli, config, "report", "compliance", "--run", "1")
    assert run.exit_code == 2 and "no compliance run 1; none is recorded yet" in run.stderr


def test_a_scheduled_compliance_job_on_an_empty_store_exits_3_as_the_report_does(
    tmp_path: Path,
) -> None:
    # The job said "the compliance report could not be made" and exited 1, a failure.
    db = tmp_path / "empty.db"
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    jobs_file = tmp_path / "jobs.toml"
    jobs_file.write_text(
        '[jobs.weekly]\nsync = false\nreports = [{ formats = ["md"] }]\n'
        '[jobs.weekly.folder]\npath = "out"\n'
    )
    cli = make_cli(make_registry(entry_points_group=None))
    report = _invoke(cli, config, "report", "compliance")
    result = _invoke(cli, config, "run", str(jobs_file), "--format", "json")
    assert (report.exit_code, result.exit_code) == (3, 3), result.output
    [row] = json.loads(result.stdout)
    assert (row["outcome"], row["exit_code"], row["reports"]) == ("attention", 3, [])
    [problem] = row["problems"]
    said = report.stderr.strip().removeprefix("error: ")
    assert "the store holds no synced data" in said
    assert problem == f"the compliance report was not made: {said}"
    assert list((tmp_path / "out").iterdir()) == [], "no report of nothing is delivered"


def test_a_control_that_checked_nothing_is_unverified_not_passed(tmp_path: Path) -> None:
    from itcrosswalk.core.model import Ticket
    from itcrosswalk.core.store import Store

    # One P3 incident: the critical P1 control has nothing to check, which is not a pass.
    db = tmp_path / "p3.db"
    store = Store(f"sqlite:///{db}")
    incident = Ticket(
        source="snow", platform="servicenow", source_id="t1", kind="incident", priority=3
    )
    store.write_page(source="snow", stream="incident", entity="ticket", records=[incident])
    store.close()
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    cli = make_cli(make_registry(entry_points_group=None))
    result = _invoke(
        cli,
        config,
        "report",
        "compliance",
        "--control",
        "service.p1_within_sla",
        "--format",
        "json",
    )
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    [control] = data["controls"]
    assert (control["verdict"], control["checked"]) == ("unverified", 0)
    assert control["verdict_reason"] == (
        "checked no record: the store holds nothing this control judges"
    )
    assert data["summary"]["controls_passed"] == 0
    assert data["summary"]["controls_unverified"] == 1
    assert "1 controls, 0 failed" in result.stderr


def test_one_run_renders_in_every_format_and_a_recorded_run_renders_again(
    setup: tuple[Any, Path], tmp_path: Path
) -> None:
    # Rendering HTML, then Markdown, then JSON used to record three runs: the trend filled with
    # identical bars and "new since the last run" dropped to 0.
    cli, config = setup
    out = tmp_path / "out"
    paths = [out / "c.html", out / "c.md", out / "c.json", out / "c.xlsx"]
    args = [item for path in paths for item in ("-o", str(path))]
    result = _invoke(cli, config, "report", "compliance", *args)
    assert result.exit_code == 3, result.output
    assert all(path.exists() for path in paths)
    assert paths[0].read_text().startswith("<!DOCTYPE html>")
    first = json.loads(paths[2].read_text())
    assert len(first["trend"]) == 1 and first["summary"]["new_alarms"] > 0
    again = _invoke(
        cli, config, "report", "compliance", "--run", str(first["run_id"]), "--format", "json"
    )
    assert again.exit_code == 3, again.output
    rendered = json.loads(again.stdout)
    assert rendered["run_id"] == first["run_id"] and len(rendered["trend"]) == 1
    assert rendered["summary"] == first["summary"]
    second = _invoke(cli, config, "report", "compliance", "--format", "json")
    data = json.loads(second.stdout)
    assert data["run_id"] == first["run_id"] + 1 and len(data["trend"]) == 2
    missing = _invoke(cli, config, "report", "compliance", "--run", "999")
    assert missing.exit_code == 2 and "no compliance run 999" in missing.stderr
    latest = data["run_id"]
    assert f"recorded runs are {first['run_id']} to {latest} (latest {latest})" in missing.stderr
    both = _invoke(cli, config, "report", "compliance", "--run", "1", "--as-of", "2026-01-01")
    assert both.exit_code == 2


def test_a_metrics_report_renders_once_into_several_files(
    setup: tuple[Any, Path], tmp_path: Path
) -> None:
    cli, config = setup
    page, data = tmp_path / "s.html", tmp_path / "s.json"
    result = _invoke(cli, config, "report", "service", "-o", str(page), "-o", str(data))
    assert result.exit_code == 0, result.output
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert json.loads(data.read_text())["report"] == "service"
