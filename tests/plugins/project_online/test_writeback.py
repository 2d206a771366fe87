"""Write-back through ProjectServer: a project from a standard template, idempotent, synced back."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.adapter import WriteResult
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import ConfigError, PlatformError
from itcrosswalk.core.sync import SyncEngine, build_adapter

from .conftest import NTLM_AUTH, Instance

FIELDS: dict[str, Any] = {
    "name": "Smart streetlight pilot",
    "description": "From the City standard template",
    "planned_start": datetime(2027, 1, 4, 8, tzinfo=UTC),
    "planned_finish": datetime(2027, 9, 30, 17, tzinfo=UTC),
    "department": "Transportation",
    "state": "proposed",
    "strategic_goals": ["Climate Action", "Digital Services"],
    "priority": 2,
    "custom_fields": {"Année fiscale": "FY2027"},
}
CID = "itcrosswalk:project-charter:5f1d2c"


def write(config: Config, pm: Any, fields: dict[str, Any] = FIELDS, **kwargs: Any) -> WriteResult:
    adapter = build_adapter(config, "pwa", pm)
    kwargs.setdefault("correlation_id", CID)
    try:
        return adapter.writers["work_item:project"](fields, **kwargs)
    finally:
        adapter.close()


def posts(instance: Instance) -> list[str]:
    return [r.split("/_api/", 1)[1] for r in instance.app.requests_seen if r.startswith("POST")]


def test_a_round_trip_creates_a_project_and_syncs_it_back_the_same(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, auth=NTLM_AUTH, extra='streams = ["Projects", "Tasks"]')
    result = write(config, pm)
    assert result.action == "created" and result.entity == "work_item"
    project = f"ProjectServer/Projects('{result.source_id}')"
    sent = posts(instance)
    assert sent[:3] == ["contextinfo", "ProjectServer/Projects/Add", f"{project}/checkOut"]
    assert sent.count(f"{project}/Draft/SetCustomFieldValue") == 5
    assert f"{project}/Draft/Tasks/Add" in sent
    assert sent[-2:] == [f"{project}/Draft/Update", f"{project}/Draft/Publish(true)"]
    assert instance.app.server_projects[result.source_id].checked_out_by is None
    store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("pwa")
    rows = {r["source_id"]: r for r in store.export("work_item", source="pwa")}
    row = rows[result.source_id]
    assert row["name"] == FIELDS["name"] and row["url"] == result.url
    assert row["state"] == "proposed" and row["priority"] == 2
    assert row["department"] == "Transportation"
    assert row["strategic_goals"] == FIELDS["strategic_goals"]
    assert row["planned_start"] == FIELDS["planned_start"]
    assert row["planned_finish"] == FIELDS["planned_finish"]
    assert row["extra"]["Annéefiscale"] == "FY2027"  # a non-ASCII custom field, intact
    assert row["extra"]["enterprise_project_type"] == "Enterprise Project"  # the PWA's default
    # A new project is empty: nothing spent, one milestone, and that is no error.
    assert row["percent_complete"] == 0 and row["actual_cost"] == 0
    (finish,) = [r for r in rows.values() if r["parent_id"] == result.source_id]
    assert finish["kind"] == "milestone" and finish["planned_start"] == FIELDS["planned_finish"]


def test_a_second_write_with_the_same_correlation_id_sends_nothing(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    first = write(config, pm)
    before = len(posts(instance))
    again = write(config, pm)
    assert again.action == "exists" and again.source_id == first.source_id
    assert again.requests == [] and len(posts(instance)) == before


def test_dry_run_lists_the_requests_and_sends_no_write(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance, extra='project_type = "City Standard Project"')
    result = write(config, pm, dry_run=True)
    assert result.action == "dry_run" and posts(instance) == []
    urls = [r["url"].split("/_api/", 1)[1] for r in result.requests]
    assert urls[:2] == ["contextinfo", "ProjectServer/Projects/Add"]
    add = result.requests[1]["body"]["parameters"]
    assert add["Name"] == FIELDS["name"] and add["Start"] == "2027-01-04T08:00:00Z"
    assert add["EnterpriseProjectTypeId"] == "3b7a1b9c-6a50-4d4a-9d6c-0d2c6a0e5f11"
    assert urls[-1].endswith("/Draft/Publish(true)")
    names = [r["body"]["FieldName"] for r in result.requests if "FieldName" in (r["body"] or {})]
    assert len(names) == 5 and all(n.startswith("Custom_") for n in names)
    assert all(r["headers"]["X-RequestDigest"] == "<form digest>" for r in result.requests)


def test_a_project_checked_out_by_someone_else_gives_the_servers_message_and_writes_nothing(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    first = write(config, pm, {"name": FIELDS["name"], "state": "proposed"})
    instance.app.check_out_as(first.source_id, "CITY\\jsmith")
    held = instance.app.server_projects[first.source_id]
    published = dict(held.custom)
    before = len(posts(instance))
    with pytest.raises(PlatformError, match="CICOCheckedOutToOtherUser.*CITY.jsmith"):
        write(config, pm)  # more values now: completing them needs a checkout
    assert held.checked_out_by == "CITY\\jsmith" and held.custom == published
    assert [p for p in posts(instance)[before:] if "/Draft/" in p] == []


def test_a_failure_after_creating_removes_the_half_made_project(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    instance.app.fail_actions["SetCustomFieldValue"] = "CustomFieldRequiredValueNotProvided"
    with pytest.raises(PlatformError, match="CustomFieldRequiredValueNotProvided"):
        write(config, pm)
    sent = posts(instance)
    assert any(p.endswith("/Draft/CheckIn(true)") for p in sent)
    assert sent[-1].endswith("/deleteObject")
    assert all(p.name != FIELDS["name"] for p in instance.app.server_projects.values())
    assert all(r["ProjectName"] != FIELDS["name"] for r in instance.app.sets["Projects"])


def test_a_same_named_project_made_elsewhere_is_left_alone(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    existing = instance.app.sets["Projects"][0]["ProjectName"]
    with pytest.raises(PlatformError, match="already exists.*left alone"):
        write(config, pm, {**FIELDS, "name": existing})
    assert posts(instance) == []


def test_fields_with_nowhere_to_go_and_unknown_names_fail_before_any_write(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance, custom={})
    with pytest.raises(ConfigError, match=r"keeps state, strategic_goals, priority.*custom_fields"):
        write(config, pm)
    config = make_config(instance)
    with pytest.raises(ConfigError, match="no enterprise project type 'Road Diet'"):
        write(config, pm, {**FIELDS, "enterprise_project_type": "Road Diet"})
    with pytest.raises(ConfigError, match="no project custom field named 'Ward'"):
        write(config, pm, {**FIELDS, "custom_fields": {"Ward": "3"}})
    assert posts(instance) == []


def test_the_standard_project_charter_applies_through_the_template_command(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance, auth=NTLM_AUTH)
    args = [
        "--config",
        str(config.path),
        "template",
        "apply",
        "project-charter",
        "--to",
        "pwa",
        "--set",
        "name=Library Wi-Fi refresh",
        "--set",
        "department=Library",
        "--set",
        "manager=Ana Nguyen",
        "--set",
        "description=Replace the branch access points",
        "--set",
        "planned_start=2027-02-01",
        "--set",
        "planned_finish=2027-06-30",
        "--format",
        "json",
    ]
    planned = CliRunner().invoke(make_cli(pm), [*args, "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.output)["action"] == "dry_run" and posts(instance) == []
    applied = CliRunner().invoke(make_cli(pm), args)
    assert applied.exit_code == 0, applied.output
    body = json.loads(applied.output)
    assert body["action"] == "created" and body["writer"] == "work_item:project"
    held = instance.app.server_projects[body["source_id"]]
    assert "Ana Nguyen" in held.custom.values() and "Initiate" in held.custom.values()
    again = CliRunner().invoke(make_cli(pm), args)
    assert json.loads(again.output)["action"] == "exists"


def test_create_project_through_the_plugins_own_command(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    args = [
        "--config",
        str(config.path),
        "project-online",
        "create-project",
        "pwa",
        "--name",
        "Fire station alerting, phase 2",
        "--type",
        "Capital Improvement Project",
        "--start",
        "2027-03-01",
        "--field",
        "Project State=Proposed",
    ]
    planned = CliRunner().invoke(make_cli(pm), [*args, "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert planned.output.startswith("dry_run: ") and "POST " in planned.output
    assert posts(instance) == []
    created = CliRunner().invoke(make_cli(pm), [*args, "--format", "json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["action"] == "created"
