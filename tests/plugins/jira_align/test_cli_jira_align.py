"""Through the CLI: template apply onto Jira Align, the crosswalk tables, check, and the demo sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config, load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate

from .conftest import TOKEN, Site


def run(pm: Any, config: Config, *args: str) -> Any:
    return CliRunner().invoke(make_cli(pm), ["--config", str(config.path), *args])


def test_the_agile_epic_template_applies_through_the_cli_once(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(site)
    theme = site.app.data["themes"][0]["title"]
    args = ["template", "apply", "agile-epic", "--to", "align", "--format", "json"]
    args += ["--set", "name=Library Wi-Fi refresh", "--set", "parent_id=program-11"]
    args += ["--set", f"strategic_goals={theme}", "--set", "planned_finish=2027-03-31"]
    planned = run(pm, config, *args, "--dry-run")
    assert planned.exit_code == 0, planned.output
    outcome = json.loads(planned.output)
    assert outcome["action"] == "dry_run"
    body = outcome["requests"][-1]["body"]
    assert body["title"] == "Library Wi-Fi refresh" and body["primaryProgramId"] == 11
    assert body["targetCompletionDate"] == "2027-03-31T00:00:00.000Z"
    assert body["themeId"] == site.app.data["themes"][0]["id"]
    assert body["externalId"] == outcome["correlation_id"]
    assert body["description"].startswith("For <customers> who <need>")  # the template's outline
    assert "POST" not in {m for m, _q in site.app.requests}
    created = json.loads(run(pm, config, *args).output)
    assert created["action"] == "created" and created["source_id"].startswith("epic-")
    again = json.loads(run(pm, config, *args).output)
    assert again["action"] == "exists" and again["source_id"] == created["source_id"]
    assert TOKEN not in planned.output + json.dumps(created)


def test_a_refused_create_prints_the_sites_message_and_exits_1(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(site)
    site.app.delete("Programs", 11)  # the epic's program went away after the lookup data was read
    result = run(
        pm, config, "template", "apply", "agile-feature", "--to", "align",
        "--set", "name=Orphan", "--set", "parent_id=epic-1200",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Program with id 11 does not exist" in result.output
    assert "nothing was created" in result.output and "Traceback" not in result.output


def test_plugins_show_prints_the_crosswalk_tables(pm: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(make_cli(pm), ["plugins", "show", "jira_align"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["mapping"]["states"]["Epics"]["3"]["normalized"] == "done"


def test_the_demo_sandbox_syncs_jira_align_beside_servicenow(tmp_path: Path, pm: Any) -> None:
    world = generate(7, "tiny")
    with runner.start(world, pm=pm, platforms=["servicenow", "jira_align"]) as box:
        path = runner.write_config(box, tmp_path, store_url=f"sqlite:///{tmp_path / 'demo.db'}")
        config = load_config(path)
        assert config.sources["sandbox-jira-align"].auth.type == "bearer"  # type: ignore[union-attr]
        assert config.sources["sandbox-jira-align"].full_sweep_every_days == 7
        store = Store(config.store.url)
        try:
            engine = SyncEngine(config, store, pm=pm)
            for name in config.sources:
                assert engine.sync(name).exit_code == 0, name
        finally:
            store.close()
    result = CliRunner().invoke(
        make_cli(pm), ["--config", str(path), "export", "work-items", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    by_platform: dict[str, set[str]] = {}
    for row in rows:
        by_platform.setdefault(row["platform"], set()).add(row["state"])
    assert {"servicenow", "jira_align"} <= set(by_platform)
    normalized = {"proposed", "approved", "in_progress", "on_hold", "done", "cancelled"}
    assert by_platform["jira_align"] <= normalized
    assert by_platform["jira_align"] & by_platform["servicenow"]  # one vocabulary, side by side
    agile = [w for w in world.work if w.platform == "jira_align"]
    assert sum(
        1 for r in rows if r["platform"] == "jira_align" and r["kind"] not in ("portfolio", "theme")
    ) == sum(1 for w in agile if w.kind != "portfolio")


def test_check_tests_every_resource_and_sync_never_prints_the_token(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    site.app.unfilterable.add("themes")
    config = make_config(site)
    result = run(pm, config, "check", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["stream"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"portfolios", "programs", "themes", "epics", "capabilities", "features"}
    assert all(row["ok"] and row["status"] == "ok" for row in rows.values())
    assert "refuses $filter" in rows["themes"]["detail"]
    assert "refuses" not in rows["epics"]["detail"]
    synced = run(pm, config, "--debug", "sync", "--format", "json")
    assert synced.exit_code == 0, synced.output
    assert TOKEN not in synced.output
    site.app.regenerate_tokens()
    refused = run(pm, config, "check", "--format", "json")
    assert refused.exit_code == 1  # a sync would fail the same way
    (row,) = json.loads(refused.stdout)
    assert row["status"] == "auth" and "env:JA_TOKEN" in row["detail"]
