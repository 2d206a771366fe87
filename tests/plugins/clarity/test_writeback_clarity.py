"""Write-back: ideas from the intake template, projects from the charter, idempotent through the
correlation attribute; bulk creates report each record's outcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.sync import build_adapter

from .conftest import KEY, Tenant


def run(pm: Any, config: Config, *args: str) -> Any:
    return CliRunner().invoke(make_cli(pm), ["--config", str(config.path), *args])


def posts(tenant: Tenant) -> list[str]:
    return [q for m, q in tenant.app.requests if m == "POST"]


def test_the_intake_template_creates_one_idea_and_a_dry_run_prints_the_request(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(tenant)
    requester = tenant.world.people[3].upn
    args = ["template", "apply", "project-intake", "--to", "ppm", "--format", "json"]
    args += ["--set", "name=Library Wi-Fi refresh", "--set", "department=Library"]
    args += ["--set", f"requester={requester}", "--set", "description=Patrons cannot connect."]
    args += ["--set", "estimated_cost=120000", "--set", "priority=2"]
    planned = run(pm, config, *args, "--dry-run")
    assert planned.exit_code == 0, planned.output
    outcome = json.loads(planned.output)
    assert outcome["action"] == "dry_run" and not posts(tenant)
    post = outcome["requests"][-1]
    assert post["method"] == "POST" and post["url"].endswith("/ppm/rest/v1/ideas")
    (body,) = post["body"]["d"]
    assert body["name"] == "Library Wi-Fi refresh" and body["c_department"] == "Library"
    assert body["c_crosswalkRef"] == outcome["correlation_id"]
    assert body["estimatedCost"] == {"amount": "120000.00", "currency": "USD"}
    assert body["originatingRequestor"] == str(5_100_003) and body["priority"] == 10
    created = json.loads(run(pm, config, *args).output)
    assert created["action"] == "created" and created["source_id"].startswith("idea-")
    again = json.loads(run(pm, config, *args).output)
    assert again["action"] == "exists" and again["source_id"] == created["source_id"]
    assert len(posts(tenant)) == 1
    assert KEY not in planned.output + json.dumps(created)


def test_the_charter_creates_a_project_with_its_schedule_in_the_servers_zone(
    tenant_factory: Callable[..., Tenant], make_config: Callable[..., Config], pm: Any
) -> None:
    tenant = tenant_factory(timezone="America/Phoenix")
    config = make_config(tenant, extra='server_timezone = "America/Phoenix"')
    manager = tenant.world.people[0].upn
    args = ["template", "apply", "project-charter", "--to", "ppm", "--format", "json"]
    args += ["--set", "name=Fire station alerting", "--set", "department=Fire"]
    args += ["--set", f"manager={manager}", "--set", "sponsor=Chief Ortiz"]
    args += ["--set", "planned_start=2027-01-04T15:00:00Z", "--set", "budget=450000"]
    args += ["--set", "planned_finish=2027-09-30", "--set", "description=Alerting for stations."]
    result = run(pm, config, *args)
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["action"] == "created" and created["source_id"].startswith("project-")
    row = tenant.app.find("projects", int(created["source_id"].split("-")[1]))
    assert row is not None and row["scheduleStart"] == "2027-01-04T08:00:00"  # Phoenix time
    assert row["manager"] == "5100000" and row["isTemplate"] is False
    assert "Sponsor: Chief Ortiz" in row["description"] and "Budget: 450000" in row["description"]


def test_a_bulk_create_reports_each_record_and_nothing_created_that_was_not(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter = build_adapter(make_config(tenant), "ppm", pm)
    writer = adapter.writers["work_item:project"]
    taken = next(p["code"] for p in tenant.app.data["projects"] if not p["isTemplate"])
    items = [
        ({"name": "Council chamber AV"}, "itcrosswalk:test:av"),
        ({"name": "Duplicate code", "number": taken}, "itcrosswalk:test:dup"),
        ({"name": "Street light sensors"}, "itcrosswalk:test:lights"),
    ]
    outcomes = writer.create_many(items)  # type: ignore[attr-defined]
    assert [o.result.action if o.result else None for o in outcomes] == ["created", None, "created"]
    failed = outcomes[1]
    assert failed.error_code == "validation.duplicateCode" and taken in (failed.error or "")
    assert len(posts(tenant)) == 1  # one bulk request
    again = writer.create_many(items)  # type: ignore[attr-defined]
    assert [o.result.action if o.result else None for o in again] == ["exists", None, "exists"]
    assert {o.result.source_id for o in again if o.result} == {
        o.result.source_id for o in outcomes if o.result
    }
    adapter.close()


def test_a_refused_create_prints_clarity_s_error_code_and_exits_1(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(tenant)
    taken = next(p["code"] for p in tenant.app.data["ideas"])
    adapter = build_adapter(config, "ppm", pm)
    with pytest.raises(Exception) as caught:
        adapter.writers["demand"]({"name": "Again", "number": taken}, correlation_id="cw:again")
    assert "validation.duplicateCode" in str(caught.value)
    assert "nothing was created" in str(caught.value)
    adapter.close()


def test_write_back_refuses_without_an_api_enabled_correlation_attribute(
    tenant_factory: Callable[..., Tenant], make_config: Callable[..., Config], pm: Any
) -> None:
    tenant = tenant_factory(api_enabled=["c_department"])
    adapter = build_adapter(make_config(tenant), "ppm", pm)
    with pytest.raises(ConfigError, match="c_crosswalkRef is not API-enabled"):
        adapter.writers["demand"]({"name": "Anything"}, correlation_id="cw:x")
    assert not posts(tenant)
    adapter.close()
