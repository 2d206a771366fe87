"""Bad input and faults, one test each (issue: Planner premium plugin), against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AccessDenied, ConfigError, PlatformError
from itcrosswalk.core.sync import build_adapter
from itcrosswalk.plugins.planner_premium.sandbox import Principal, hex_guid

from .conftest import Env, token_for
from .test_sync_planner_premium import rows, sync


def outcomes(result: Any) -> dict[str, Any]:
    return {s.stream: s for s in result.streams}


def gets(env: Env, fragment: str) -> list[str]:
    return [unquote_plus(q) for m, q in env.app.requests if m == "GET" and fragment in unquote(q)]


def test_an_app_that_is_not_an_application_user_gets_the_real_403_named(
    env: Env, make_config: Callable[..., Config], open_store: Any, pm: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv(
        "OTHER_APP", token_for(env, "stray-app")
    )  # Entra signs it in; nobody added it
    config = make_config(env, auth='{ type = "bearer", token = "env:OTHER_APP" }')
    adapter = build_adapter(config, "planner", pm)
    try:
        items = adapter.check()
    finally:
        adapter.close()
    # Every line says it: no read can work for an app the environment does not know.
    assert items and all((i.ok, i.status) == (False, "no_access") for i in items)
    assert "0x80072560" in items[0].detail
    assert "The user is not a member of the organization." in items[0].detail
    assert "not an application user" in items[0].detail and "Application users" in items[0].detail
    with pytest.raises(AccessDenied, match="not an application user"):
        sync(config, open_store(config), pm)


def test_an_expired_delta_token_falls_back_to_one_full_read_that_reconciles_deletions(
    env_factory: Callable[..., Env], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    env = env_factory()
    config = make_config(env)
    store = open_store(config)
    sync(config, store, pm)
    tasks = env.app.tables["msdyn_projecttask"]
    gone = next(i for i, r in tasks.rows.items() if not r["msdyn_summary"])
    env.app.delete("msdyn_projecttask", gone)
    env.app.expire_change_tokens()
    before = len(env.app.requests)
    result = outcomes(sync(config, store, pm, streams=["msdyn_projecttask"]))["msdyn_projecttask"]
    assert result.status == "ok" and result.full
    assert result.tombstoned == 1
    asked = [unquote(q) for _m, q in env.app.requests[before:] if "msdyn_projecttasks" in q]
    assert "$deltatoken=" in asked[0]  # the stored token was tried first
    assert "$deltatoken=" not in asked[1]  # then one full read, with a fresh token at its end
    assert rows(store, "work_item", include_deleted=True)[gone]["deleted"] is True
    live = {i for i, r in rows(store, "work_item").items() if r["kind"] != "project"}
    assert live == set(tasks.rows)
    # The full read left a new token: the next sync is incremental again, one request.
    again = outcomes(sync(config, store, pm, streams=["msdyn_projecttask"]))["msdyn_projecttask"]
    assert not again.full and again.requests == 1


def test_a_column_the_org_lacks_is_never_selected_and_reported_absent_not_zero(
    env_factory: Callable[..., Env], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    pure = env_factory()
    config = make_config(pure)
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    selects = gets(pure, "msdyn_projects?")
    assert selects and all("msdyn_totalplannedcost" not in q for q in selects)
    plans = [r for r in rows(store, "work_item").values() if r["kind"] == "project"]
    assert plans and all(p["budget"] is None and p["health"] == "unknown" for p in plans)
    for plan in plans:
        assert "msdyn_totalplannedcost" in plan["extra"]["absent_columns"]
        assert "msdyn_overallprojectstatus" in plan["extra"]["absent_columns"]
    # A Project Operations org has them, with labels (and status values) of its own.
    psa = env_factory(org="project_operations")
    config2 = make_config(psa, store_url=f"sqlite:///{config.path.parent / 'psa.db'}")
    store2 = open_store(config2)
    assert sync(config2, store2, pm).exit_code == 0
    by_id = {hex_guid(p.id): p for p in psa.world.work if p.platform == "planner_premium"}
    psa_plans = [r for r in rows(store2, "work_item").values() if r["kind"] == "project"]
    for plan in psa_plans:
        twin = by_id[plan["source_id"]]
        assert plan["budget"] == pytest.approx(twin.budget)
        assert plan["health"] == twin.health
        assert "absent_columns" not in plan["extra"]
        if twin.state in ("done", "cancelled", "on_hold"):
            assert plan["state"] == twin.state  # "Closed" there, "Completed" here: both done


def test_a_429_storm_is_ridden_out_and_an_endless_one_is_a_clear_error(
    env: Env, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(env)
    env.faults.retry_after = 1
    env.faults.throttle_every = 3
    result = sync(config, open_store(config), pm)
    env.faults.reset()
    assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
    throttled = result.counts()
    assert sum(s.read for s in result.streams) > 0 and throttled
    assert len(rows(open_store(config), "work_item")) == len(
        [w for w in env.world.work if w.platform == "planner_premium"]
    )
    endless = make_config(
        env,
        extra="max_wait = 2\nmax_retries = 2",
        store_url=f"sqlite:///{config.path.parent / 'b.db'}",
    )
    env.faults.throttle_every = 1
    try:
        with pytest.raises(Exception) as caught:
            sync(endless, open_store(endless), pm)
    finally:
        env.faults.reset()
    message = str(caught.value)
    assert "429" in message and "\n" not in message
    assert "0x80072322" in message or "Number of requests exceeded" in message


def test_a_plan_deleted_between_two_syncs_is_tombstoned_with_its_tasks(
    env_factory: Callable[..., Env],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    tmp_path: Any,
) -> None:
    for tracked in (True, False):
        env = env_factory(change_tracking=tracked)
        config = make_config(env, store_url=f"sqlite:///{tmp_path / f'tracked-{tracked}.db'}")
        store = open_store(config)
        sync(config, store, pm)
        plans = env.app.tables["msdyn_project"].rows
        plan = next(iter(plans))
        tasks = {
            i
            for i, r in env.app.tables["msdyn_projecttask"].rows.items()
            if r["_msdyn_project_value"] == plan
        }
        env.app.delete("msdyn_project", plan)
        result = outcomes(sync(config, store, pm))
        stored = rows(store, "work_item", include_deleted=True)
        assert stored[plan]["deleted"] is True
        assert all(stored[t]["deleted"] for t in tasks)
        assert result["msdyn_project"].tombstoned == 1
        assert result["msdyn_projecttask"].tombstoned == len(tasks)
        if tracked:
            assert result["msdyn_project"].sweep_requests == 0  # $deletedEntity said so
        else:
            assert result["msdyn_project"].sweep_requests >= 1  # an id sweep found it
            assert any("modifiedon ge" in q for q in gets(env, "msdyn_projects?"))


def test_a_write_with_an_application_user_is_refused_before_anything_is_sent(
    env: Env, make_config: Callable[..., Config], pm: Any, monkeypatch: Any
) -> None:
    config = make_config(env)  # the sandbox app, by client credentials
    adapter = build_adapter(config, "planner", pm)
    before = len(env.app.requests)
    try:
        with pytest.raises(ConfigError) as caught:
            adapter.writers["work_item:project"](
                {"name": "Fire station alerting", "planned_start": datetime(2027, 1, 4, tzinfo=UTC),
                 "planned_finish": datetime(2027, 6, 30, tzinfo=UTC)},
                correlation_id="cw-test-1",
            )  # fmt: skip
    finally:
        adapter.close()
    assert len(env.app.requests) == before  # nothing was sent
    message = str(caught.value)
    assert "application user" in message and "Microsoft Project License" in message
    assert "crosswalk planner-premium login" in message
    # A bearer token that is not a user's (no delegated scope) is refused the same way.
    monkeypatch.setenv("APP_TOKEN", token_for(env, "some-app"))
    plain = build_adapter(
        make_config(env, auth='{ type = "bearer", token = "env:APP_TOKEN" }'), "planner", pm
    )
    try:
        with pytest.raises(ConfigError, match="not a user's"):
            plain.writers["work_item:project"]({"name": "x"}, correlation_id="cw-test-2")
    finally:
        plain.close()
    assert len(env.app.requests) == before


def writer_config(env: Env, make_config: Callable[..., Config]) -> Config:
    return make_config(env, extra='schedule_token = "env:DATAVERSE_USER_TOKEN"')


def test_an_operation_set_that_fails_shows_its_error_and_leaves_nothing_half_created(
    env: Env, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter = build_adapter(writer_config(env, make_config), "planner", pm)
    env.app.fail_next_execution = (
        "ScheduleAPI-AV-0006: Referenced row of msdyn_parenttask with id 1f0c does not exist."
    )
    plans_before = set(env.app.tables["msdyn_project"].rows)
    tasks_before = set(env.app.tables["msdyn_projecttask"].rows)
    try:
        with pytest.raises(PlatformError) as caught:
            adapter.writers["work_item:project"](
                {"name": "Parks irrigation controllers", "planned_start": datetime(2027, 2, 1, tzinfo=UTC),
                 "planned_finish": datetime(2027, 9, 30, tzinfo=UTC)},
                correlation_id="cw-failing-set",
            )  # fmt: skip
    finally:
        adapter.close()
    message = str(caught.value)
    assert "ScheduleAPI-AV-0006" in message and "Failed" in message
    assert "nothing is left half-created" in message
    assert set(env.app.tables["msdyn_project"].rows) == plans_before
    assert set(env.app.tables["msdyn_projecttask"].rows) == tasks_before
    assert all(not b["_msdyn_project_value"] or b["_msdyn_project_value"] in plans_before
               for b in env.app.tables["msdyn_projectbucket"].rows.values())  # fmt: skip
    assert not [
        s for s in env.app.operation_sets.values() if s.status == 192350000
    ]  # none left open


def test_a_plan_is_created_from_the_standard_template_once_and_dry_run_prints_the_set(
    env: Env, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter = build_adapter(writer_config(env, make_config), "planner", pm)
    fields = {
        "name": "Library RFID refresh", "description": "Tags and gates at four branches.",
        "planned_start": datetime(2027, 3, 1, tzinfo=UTC), "planned_finish": datetime(2027, 12, 17, tzinfo=UTC),
    }  # fmt: skip
    writer = adapter.writers["work_item:project"]
    try:
        before = dict(env.app.tables["msdyn_project"].rows)
        dry = writer(fields, correlation_id="cw-rfid", dry_run=True)
        assert dry.action == "dry_run" and set(env.app.tables["msdyn_project"].rows) == set(before)
        urls = [r["url"].rsplit("/", 1)[-1] for r in dry.requests]
        assert urls[-7:] == ["msdyn_CreateProjectV1", "msdyn_CreateOperationSetV1", *["msdyn_PssCreateV1"] * 5,
                             "msdyn_ExecuteOperationSetV1"][-7:]  # fmt: skip
        staged = [
            r["body"]["Entity"]["msdyn_subject"]
            for r in dry.requests
            if r["url"].endswith("PssCreateV1")
        ]
        assert staged == ["Initiate", "Plan", "Execute", "Go-live", "Close"]
        assert all(
            "msdyn_progress" not in r["body"].get("Entity", {}) for r in dry.requests if r["body"]
        )
        made = writer(fields, correlation_id="cw-rfid")
        assert made.action == "created"
        assert dry.source_id == made.source_id  # the ids derive from the correlation id
        plan = env.app.tables["msdyn_project"].rows[made.source_id]
        assert plan["msdyn_subject"] == "Library RFID refresh"
        tasks = [r["msdyn_subject"] for r in env.app.tables["msdyn_projecttask"].rows.values()
                 if r["_msdyn_project_value"] == made.source_id]  # fmt: skip
        assert sorted(tasks) == sorted(staged)
        again = writer(fields, correlation_id="cw-rfid")
        assert again.action == "exists" and again.source_id == made.source_id
        assert len(again.requests) == 1  # one lookup, nothing created
    finally:
        adapter.close()


def test_check_names_a_missing_table_privilege_and_the_organization_read_change_tracking_needs(
    env: Env, make_config: Callable[..., Config], pm: Any, monkeypatch: Any
) -> None:
    env.app.add_principal(
        Principal("thin-role-app", denied={"msdyn_resourceassignment", "organization"})
    )
    monkeypatch.setenv("THIN_APP", token_for(env, "thin-role-app"))
    adapter = build_adapter(
        make_config(env, auth='{ type = "bearer", token = "env:THIN_APP" }'), "planner", pm
    )
    try:
        items = {i.name: i for i in adapter.check()}
    finally:
        adapter.close()
    assert set(items) == {
        "msdyn_project",
        "msdyn_projecttask",
        "bookableresource",
        "msdyn_resourceassignment",
    }  # the streams a sync reads, by name
    assert (
        items["msdyn_projecttask"].ok and "change tracking on" in items["msdyn_projecttask"].detail
    )
    assert "signed in as application user" in items["msdyn_project"].detail
    denied = items["msdyn_resourceassignment"]
    assert (denied.ok, denied.status) == (False, "no_access")
    assert "prvReadmsdyn_resourceassignment" in denied.detail
    plans = items["msdyn_project"]
    assert (plans.ok, plans.status) == (False, "no_access") and "Organization read" in plans.detail
    assert "msdyn_overallprojectstatus" in plans.detail and "never 0" in plans.detail
