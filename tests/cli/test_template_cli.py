"""``crosswalk template``: list, show, check, render and apply through CliRunner, with apply
going to the ServiceNow emulator over HTTPS."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.model import WorkItem
from itcrosswalk.core.store import Store
from itcrosswalk.plugins.servicenow.sandbox import create_app
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.server import SandboxServer
from itcrosswalk.sandbox.world import World, generate

PASSWORD = "cli-template-secret"


@pytest.fixture(scope="module")
def world() -> World:
    return generate(11, "tiny")


@pytest.fixture
def cli() -> Any:
    return make_cli(make_registry(entry_points_group=None))


@pytest.fixture
def emulator(world: World, tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    app = create_app(world, Faults(), users={"svc": PASSWORD})
    server = SandboxServer({"servicenow": app})
    urls = server.start()
    ca = server.write_ca(tmp_path / "ca.pem")
    try:
        yield app, urls["servicenow"], ca
    finally:
        server.stop()


@pytest.fixture
def config(
    tmp_path: Path, emulator: tuple[Any, str, Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    _app, url, ca = emulator
    monkeypatch.setenv("SNOW_PASSWORD", PASSWORD)
    path = tmp_path / "crosswalk.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n'
        f'[sources.snow]\nplatform = "servicenow"\nurl = "{url}"\nca_bundle = "{ca}"\n'
        'auth = { type = "basic", user = "svc", password = "env:SNOW_PASSWORD" }\n'
    )
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.write_page(
            source="snow",
            stream="pm_project",
            entity="work_item",
            records=[
                WorkItem(
                    source="snow",
                    platform="servicenow",
                    source_id="ok1",
                    number="PRJ1",
                    kind="project",
                    name="Complete",
                    phase="planning",
                    state="approved",
                    department="Water",
                    manager="M",
                    planned_start=datetime(2026, 1, 1, tzinfo=UTC),
                    planned_finish=datetime(2026, 9, 1, tzinfo=UTC),
                ),
                WorkItem(
                    source="snow",
                    platform="servicenow",
                    source_id="bad1",
                    number="PRJ2",
                    kind="project",
                    name="=cmd|' /C calc'!A0",
                    phase="executing",
                    state="in_progress",
                    department="Fire",
                    health="red",
                    percent_complete=10,
                ),
            ],
        )
    finally:
        store.close()
    return path


def run(cli: Any, config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), "template", *args])


def test_list_and_show_work_without_a_config(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROSSWALK_CONFIG", raising=False)
    listing = CliRunner().invoke(cli, ["template", "list", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows["project-intake"]["target"] == "demand"
    assert rows["stage-gates"]["checks"] == "work_item"
    shown = CliRunner().invoke(cli, ["template", "show", "stage-gates"])
    assert shown.exit_code == 0, shown.output
    assert "Execution" in shown.output and "business case (approval)" in shown.output
    as_json = CliRunner().invoke(cli, ["template", "show", "project-charter", "--format", "json"])
    assert json.loads(as_json.stdout)["target"] == "work_item:project"
    missing = CliRunner().invoke(cli, ["template", "show", "nope"])
    assert missing.exit_code == 2 and "no template 'nope'" in missing.output


def test_check_reports_per_item_in_every_format_and_exits_3(cli: Any, config: Path) -> None:
    result = run(cli, config, "check", "stage-gates", "--format", "json")
    assert result.exit_code == 3, result.output
    found = {row["source_id"]: row for row in json.loads(result.stdout)}
    assert found["ok1"]["ok"] is True
    assert found["bad1"]["ok"] is False
    assert set(found["bad1"]["missing"]) == {
        "manager",
        "planned_start",
        "planned_finish",
        "budget",
        "business_case_approved",
    }
    as_csv = run(cli, config, "check", "stage-gates", "--format", "csv", "--failing")
    assert as_csv.exit_code == 3
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["number"] for r in rows] == ["PRJ2"]
    assert rows[0]["name"].startswith("'=")  # a formula in a platform's text is neutralized
    table = run(cli, config, "check")
    assert table.exit_code == 3
    assert "miss what their stage requires" in table.output
    passing = run(cli, config, "check", "closure-report", "--format", "json")
    assert passing.exit_code == 0 and json.loads(passing.stdout) == []
    nothing = run(cli, config, "check", "knowledge-article")
    assert nothing.exit_code == 2 and "checks nothing" in nothing.output


def test_render_a_status_report_to_md_and_html(cli: Any, config: Path, tmp_path: Path) -> None:
    md = run(cli, config, "render", "status-report", "--item", "snow:PRJ2")
    assert md.exit_code == 0, md.output
    assert "| red | in\\_progress | executing | 10% |" in md.output
    out = tmp_path / "report.html"
    html = run(
        cli,
        config,
        "render",
        "status-report",
        "--item",
        "snow:bad1",
        "--format",
        "html",
        "-o",
        str(out),
    )
    assert html.exit_code == 0, html.output
    assert "=cmd|&#39; /C calc&#39;!A0" in out.read_text()
    neither = run(cli, config, "render", "status-report")
    assert neither.exit_code == 1 and "--item" in neither.output


def test_apply_dry_run_then_apply_twice_creates_once(
    cli: Any, config: Path, emulator: Any, world: World
) -> None:
    app, _url, _ca = emulator
    dept, person = world.departments[0].name, world.people[0].upn
    args = [
        "apply",
        "project-intake",
        "--to",
        "snow",
        "--set",
        "name=Permit portal",
        "--set",
        f"department={dept}",
        "--set",
        f"requester={person}",
        "--set",
        "description=Apply online",
    ]
    dry = run(cli, config, *args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was created" in dry.output
    assert "POST https://" in dry.output and '"short_description": "Permit portal"' in dry.output
    assert not [p for m, p in app.requests if m == "POST"]
    first = run(cli, config, *args, "--format", "json")
    assert first.exit_code == 0, first.output
    made = json.loads(first.stdout)
    assert made["action"] == "created" and made["correlation_id"].startswith(
        "itcrosswalk:project-intake:"
    )
    second = run(cli, config, *args)
    assert second.exit_code == 0, second.output
    assert "already there" in second.output and made["source_id"] in second.output
    assert len([p for m, p in app.requests if m == "POST"]) == 1
    assert PASSWORD not in first.output + second.output + dry.output


def test_apply_names_missing_fields_and_shows_the_servers_message(
    cli: Any, config: Path, emulator: Any
) -> None:
    app, _url, _ca = emulator
    missing = run(cli, config, "apply", "project-charter", "--to", "snow", "--set", "name=Yard")
    assert missing.exit_code == 2
    assert "needs department, manager, description, planned_start, planned_finish" in missing.output
    app.mandatory["problem"] = ["assignment_group"]
    refused = run(
        cli,
        config,
        "apply",
        "problem-rca",
        "--to",
        "snow",
        "--set",
        "title=Mail outages",
        "--set",
        "description=Weekly",
        "--set",
        "assignment_group=",  # empty: the template's own check catches it first
    )
    assert refused.exit_code == 2 and "needs assignment_group" in refused.output
    group = app.tables["sys_user_group"][0]["name"]
    app.mandatory["problem"] = ["assignment_group", "u_root_cause_owner"]
    server = run(
        cli,
        config,
        "apply",
        "problem-rca",
        "--to",
        "snow",
        "--correlation-id",
        "rca-77",
        "--set",
        "title=Mail outages",
        "--set",
        "description=Weekly",
        "--set",
        f"assignment_group={group}",
    )
    assert server.exit_code == 1
    assert "HTTP 403" in server.output and "mandatory: U root cause owner" in server.output
    unknown = run(cli, config, "apply", "project-intake", "--to", "nowhere", "--set", "name=x")
    assert unknown.exit_code == 2 and "no source 'nowhere'" in unknown.output


def test_the_configs_folders_extend_and_override_the_standard_set(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "ours"
    folder.mkdir()
    (folder / "status.yaml").write_text(
        "id: status-report\ntitle: City weekly status\nkind: report\nrender: status-report\n"
    )
    (folder / "bad.yaml").write_text("id: bad\n")  # no title
    config = tmp_path / "crosswalk.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[templates]\nfolders = ["ours"]\n'
    )
    listing = run(cli, config, "list", "--format", "json")
    assert listing.exit_code == 0
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows["status-report"]["title"] == "City weekly status"
    assert rows["status-report"]["origin"].endswith("status.yaml")
    assert "warning: template not loaded:" in listing.stderr and "bad.yaml" in listing.stderr
    shown = run(cli, config, "show", "status-report")
    assert "(replaces built-in)" in shown.output
