"""Through the CLI: check, the crosswalk tables, and the demo sandbox with Clarity as the fourth
PPM candidate in the evaluation."""

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

from .conftest import KEY, Tenant


def run(pm: Any, config: Config, *args: str) -> Any:
    return CliRunner().invoke(make_cli(pm), ["--config", str(config.path), *args])


def test_check_tests_every_stream_and_sync_never_prints_the_key(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(tenant)
    result = run(pm, config, "check", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["stream"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {
        "projects", "tasks", "ideas", "resources", "costPlans", "benefitPlans", "teams",
        "teamAllocations",
    }  # fmt: skip
    assert "signed in as svc_crosswalk" in rows["projects"]["detail"]
    assert rows["projects"]["first_sync_requests"] == 1
    synced = run(pm, config, "--debug", "sync", "--format", "json")
    assert synced.exit_code == 0, synced.output
    assert KEY not in synced.output + result.output


def test_plugins_show_prints_the_crosswalk_tables(pm: Any) -> None:
    result = CliRunner().invoke(make_cli(pm), ["plugins", "show", "clarity"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["mapping"]["progress"]["2"] == "completed"
    assert "status 2 (Rejected) -> cancelled" in shown["mapping"]["state_rules"]


def test_the_demo_sandbox_syncs_clarity_and_the_evaluation_scores_it_beside_the_others(
    tmp_path: Path, pm: Any
) -> None:
    world = generate(7, "tiny")
    with runner.start(world, pm=pm, platforms=["servicenow", "project_online", "clarity"]) as box:
        path = runner.write_config(box, tmp_path, store_url=f"sqlite:///{tmp_path / 'demo.db'}")
        config = load_config(path)
        source = config.sources["sandbox-clarity"]
        assert source.auth.type == "bearer" and source.platform_options()["client_id"]  # type: ignore[union-attr]
        store = Store(config.store.url)
        try:
            engine = SyncEngine(config, store, pm=pm)
            for name in config.sources:
                assert engine.sync(name).exit_code == 0, name
        finally:
            store.close()
    result = CliRunner().invoke(
        make_cli(pm), ["--config", str(path), "evaluate", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    scored = {row["platform"]: row for row in json.loads(result.output)["sources"]}
    assert {"servicenow", "project_online", "clarity"} <= set(scored)
    clarity = scored["clarity"]
    assert clarity["status"] == "ok" and clarity["total"] is not None
    assert clarity["coverage"]["plan_line"]["records"] > 0
    assert clarity["coverage"]["plan_line"]["fields"]["amount"] == 100.0
    assert scored["project_online"]["coverage"]["plan_line"]["fields"]["amount"] is None
    # The same City portfolio on both: projects Clarity mirrors carry the same names.
    exported = CliRunner().invoke(
        make_cli(pm), ["--config", str(path), "export", "work-items", "--format", "json"]
    )
    rows = json.loads(exported.output)
    names = {
        p: {r["name"] for r in rows if r["platform"] == p and r["kind"] == "project"}
        for p in scored
    }
    assert names["clarity"] & (names["servicenow"] | names["project_online"])
