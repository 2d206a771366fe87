"""Through the CLI: check, template apply with --dry-run, and the crosswalk tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config

from .conftest import TOKEN, Site


def run(pm: Any, config: Config, *args: str) -> Any:
    return CliRunner().invoke(make_cli(pm), ["--config", str(config.path), *args])


def test_template_apply_prints_the_request_on_dry_run_then_creates_the_epic_once(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(site)
    initiative = next(i for i in site.app.issues.values() if i.type_id == "10201")
    args = ["template", "apply", "agile-epic", "--to", "jsm", "--format", "json"]
    args += ["--set", "name=Library Wi-Fi refresh", "--set", f"parent_id={initiative.key}"]
    args += ["--set", "planned_finish=2027-03-31"]
    planned = run(pm, config, *args, "--dry-run")
    assert planned.exit_code == 0, planned.output
    outcome = json.loads(planned.output)
    assert outcome["action"] == "dry_run"
    create = outcome["requests"][-1]
    assert create["method"] == "POST" and create["url"].endswith("/rest/api/3/issue")
    fields = create["body"]["fields"]
    assert fields["summary"] == "Library Wi-Fi refresh" and fields["duedate"] == "2027-03-31"
    assert fields["labels"] == [outcome["correlation_id"]]
    assert not [p for m, p, _b in site.app.bodies if m == "POST" and p.endswith("/issue")]
    created = json.loads(run(pm, config, *args).output)
    assert created["action"] == "created"
    again = json.loads(run(pm, config, *args).output)
    assert again["action"] == "exists" and again["source_id"] == created["source_id"]
    assert TOKEN not in planned.output + json.dumps(created)


def test_check_through_the_cli_names_every_stream(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    result = run(pm, make_config(site), "check", "jsm", "--format", "json")
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    shown = json.dumps(json.loads(result.output))
    assert {r["stream"] for r in json.loads(result.output)} == {
        "requests",
        "slas",
        "epics",
        "users",
    }
    assert "profile time zone America/Los_Angeles" in shown and "Jira Cloud" in shown


def test_plugins_show_prints_the_crosswalk_tables(pm: Any) -> None:
    result = CliRunner().invoke(make_cli(pm), ["plugins", "show", "jira"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["mapping"]["ticket_kinds"]["[System] Incident"] == "incident"
