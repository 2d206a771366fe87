"""The plugin through the CLI and the demo: hooks registered, the sandbox source syncs over NTLM."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import World

from .conftest import project_rows


def test_the_hooks_register_the_platform_its_sandbox_and_its_commands(pm: Any) -> None:
    assert "project_online" in pm.platforms()  # register_platforms
    sandbox = pm.sandboxes()["project_online"]  # register_sandboxes
    keys = sandbox.source("crosswalk", "file:/tmp/secret")
    assert keys["auth"] == {
        "type": "ntlm",
        "user": "CITY\\crosswalk",
        "password": "file:/tmp/secret",
    }
    help_text = CliRunner().invoke(make_cli(pm), ["project-online", "--help"])  # register_commands
    assert help_text.exit_code == 0 and "create-project" in help_text.output
    shown = CliRunner().invoke(make_cli(pm), ["plugins", "show", "project_online"])
    assert shown.exit_code == 0, shown.output
    tables = json.loads(shown.output)["mapping"]
    assert tables["health"]["at risk"] == "amber"


def test_the_demo_config_syncs_the_city_projects_over_ntlm_with_costs_and_baselines(
    world: World, pm: Any, tmp_path: Path
) -> None:
    with runner.start(world, pm=pm, platforms=["project_online"]) as box:
        path = runner.write_config(box, tmp_path, store_url=f"sqlite:///{tmp_path / 'demo.db'}")
        table = tomllib.loads(path.read_text())["sources"]["sandbox-project-online"]
        assert table["auth"]["type"] == "ntlm" and table["auth"]["password"].startswith("file:")
        config = load_config(path)
        store = Store(config.store.url)
        try:
            result = SyncEngine(config, store, pm=pm).sync("sandbox-project-online")
            assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
            exported = CliRunner().invoke(
                make_cli(pm),
                ["--config", str(path), "export", "work-items", "--format", "json"],
            )
        finally:
            store.close()
    assert exported.exit_code == 0, exported.output
    rows = json.loads(exported.output)
    projects = [r for r in rows if r["kind"] == "project"]
    assert len(projects) == len(project_rows(world))
    for row in projects:
        assert row["platform"] == "project_online"
        assert row["budget"] and row["forecast_cost"] and row["baseline_finish"]
        assert row["state"] != "unknown" and row["number"].startswith("MSP")
    assert box.secret not in exported.output
