"""``crosswalk migrate``: the seeded city's move off Project Online, checked against what the
world planted; plan and apply create the missing plans through the Schedule API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import load_config
from itcrosswalk.core.migrate import verify
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import PLANNER_DRIFT_DAYS, World

FROM, TO = "sandbox-project-online", "sandbox-planner-premium"


@pytest.fixture
def city(world: World, pm: Any, tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    """Project Online and Planner premium emulators serving the city, both synced."""
    with runner.start(world, pm=pm, platforms=["project_online", "planner_premium"]) as box:
        url = box.urls["planner_premium"]
        user = box.apps["planner_premium"].entra.issue_token(
            "pm@city.example.gov", app_only=False, scope=f"{url}/user_impersonation"
        )
        path = runner.write_config(box, tmp_path)
        token = tmp_path / "user-token"
        token.write_text(user)
        token.chmod(0o600)
        text = path.read_text().replace(
            'platform = "planner_premium"',
            f'platform = "planner_premium"\nschedule_token = "file:{token}"',
        )
        path.write_text(text)
        config = load_config(path)
        store = Store(config.store.url)
        try:
            for name in (FROM, TO):
                assert SyncEngine(config, store, pm=pm).sync(name).exit_code == 0
        finally:
            store.close()
        yield path, box


def test_the_migration_check_finds_exactly_what_the_world_planted(
    city: tuple[Path, Any], world: World
) -> None:
    path, _box = city
    planted = world.planted["planner_migration"]
    assert planted["missing"] and planted["drifted"]
    config = load_config(path)
    store = Store(config.store.url)
    try:
        report = verify(store, FROM, TO)
    finally:
        store.close()
    assert sorted(m["name"] for m in report.missing) == sorted(planted["missing"])
    assert {(d.project, d.field) for d in report.differences} == {
        (name, "planned_finish") for name in planted["drifted"]
    }
    for d in report.differences:
        days = (
            __import__("datetime").date.fromisoformat(d.target_value)
            - __import__("datetime").date.fromisoformat(d.source_value)
        ).days
        assert days == PLANNER_DRIFT_DAYS
    held = {c["field"] for c in report.cannot_hold}
    assert {"budget", "actual_cost", "baseline_finish", "health"} <= held
    assert report.exit_code == 3


def test_verify_prints_a_table_json_and_html_and_exits_3_when_projects_are_missing(
    city: tuple[Path, Any], world: World, pm: Any, tmp_path: Path
) -> None:
    path, _box = city
    cli = make_cli(pm)
    runner_ = CliRunner()
    table = runner_.invoke(cli, ["--config", str(path), "migrate", "verify", FROM, TO])
    assert table.exit_code == 3, table.output
    assert "missing" in table.output and "no field" in table.output
    as_json = runner_.invoke(
        cli, ["--config", str(path), "migrate", "verify", FROM, TO, "--format", "json"]
    )
    body = json.loads(as_json.output)
    assert len(body["missing"]) == len(world.planted["planner_migration"]["missing"])
    page = tmp_path / "migration.html"
    html = runner_.invoke(cli, ["--config", str(path), "migrate", "verify", FROM, TO,
                                "--format", "html", "-o", str(page)])  # fmt: skip
    assert html.exit_code == 3 and "<h2>Missing</h2>" in page.read_text()
    typo = runner_.invoke(cli, ["--config", str(path), "migrate", "verify", FROM, "sandbox-planer"])
    assert typo.exit_code == 2 and "sandbox-planner-premium" in typo.output


def test_plan_prints_the_operation_sets_and_apply_creates_the_missing_plans_once(
    city: tuple[Path, Any], world: World, pm: Any
) -> None:
    path, box = city
    cli = make_cli(pm)
    runner_ = CliRunner()
    app = box.apps["planner_premium"]
    plans_before = set(app.tables["msdyn_project"].rows)
    planned = runner_.invoke(cli, ["--config", str(path), "migrate", "plan", FROM, TO])
    assert planned.exit_code == 0, planned.output
    assert planned.output.count("msdyn_CreateProjectV1") == len(
        world.planted["planner_migration"]["missing"]
    )
    assert (
        "msdyn_PssCreateV1" in planned.output
        and set(app.tables["msdyn_project"].rows) == plans_before
    )
    applied = runner_.invoke(cli, ["--config", str(path), "migrate", "apply", FROM, TO])
    assert applied.exit_code == 0, applied.output
    assert applied.output.count("created:") == len(world.planted["planner_migration"]["missing"])
    again = runner_.invoke(cli, ["--config", str(path), "migrate", "apply", FROM, TO])
    assert again.output.count("exists:") == len(world.planted["planner_migration"]["missing"])
    config = load_config(path)
    store = Store(config.store.url)
    try:
        assert SyncEngine(config, store, pm=pm).sync(TO).exit_code == 0
        report = verify(store, FROM, TO)
    finally:
        store.close()
    assert report.missing == []
    # Progress cannot be set on create (ScheduleAPI-AV-0001): the new plans say so as differences.
    fields = {d.field for d in report.differences}
    assert fields <= {"planned_finish", "percent_complete"} | {
        f for f in fields if f.startswith("task ")
    }
    assert os.environ.get("NOTHING") is None


def test_the_demo_shows_the_migration_check(pm: Any, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(make_cli(pm), ["demo", "--dir", str(folder), "--size", "tiny"])
    assert result.exit_code in (0, 3), result.output
    assert "move off Project Online: " in result.output
    assert "projects in Planner premium" in result.output
    assert "<h1>Migration check" in (folder / "migration.html").read_text()


def test_the_sandbox_manager_signs_in_on_the_device_page_and_apply_writes_as_her(
    world: World, pm: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    import re

    import keyring
    import requests

    from itcrosswalk.core.sync import build_adapter
    from itcrosswalk.plugins.planner_premium.writer import login

    from .test_auth_planner_premium import MemoryKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        with runner.start(world, pm=pm, platforms=["project_online", "planner_premium"]) as box:
            path = runner.write_config(box, tmp_path)  # schedule_user comes with the sandbox
            config = load_config(path)
            adapter = build_adapter(config, TO, pm)

            def at_the_browser(message: str) -> None:
                page, code = re.search(r"page (\S+) and enter the code (\S+)", message).groups()
                answer = requests.post(
                    page,
                    data={"user_code": code, "user": "pm@city.example.gov", "password": box.secret},
                    verify=str(tmp_path / runner.CA_FILE),
                    timeout=10,
                )
                assert answer.status_code == 200

            try:
                done = login(adapter, at_the_browser)
            finally:
                adapter.close()
            assert done["keyring"] == f"itcrosswalk-planner-premium/{TO}"
            store = Store(config.store.url)
            try:
                for name in (FROM, TO):
                    SyncEngine(config, store, pm=pm).sync(name)
            finally:
                store.close()
            applied = CliRunner().invoke(
                make_cli(pm), ["--config", str(path), "migrate", "apply", FROM, TO]
            )
            assert applied.exit_code == 0, applied.output
            assert applied.output.count("created:") == len(
                world.planted["planner_migration"]["missing"]
            )
    finally:
        keyring.set_keyring(previous)
