"""The Planner premium adapter end to end: requests over real TLS against the Dataverse emulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.testing import AdapterConformance, ConformanceSetup

from .conftest import Env

ALL_STREAMS = {"msdyn_project", "msdyn_projecttask", "bookableresource", "msdyn_resourceassignment"}
SETUP_REQUESTS = 6
"""Each sync signs in (the tenant's OpenID configuration, then the token) and reads the tables'
metadata (one request) and three tables' option sets."""


def sync(config: Config, store: Store, pm: Any, **kwargs: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("planner", **kwargs)


def rows(store: Store, entity: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
    return {r["source_id"]: r for r in store.export(entity, source="planner", **kwargs)}


class TestConformance(AdapterConformance):
    @pytest.fixture
    def conformance(
        self, env: Env, make_config: Callable[..., Config], open_store: Any, pm: Any, store_url: str
    ) -> ConformanceSetup:
        config = make_config(env, store_url=store_url)
        return ConformanceSetup(
            config=config,
            source="planner",
            store=open_store(config),
            pm=pm,
            expected_streams=ALL_STREAMS,
            setup_requests=SETUP_REQUESTS,
        )


def test_a_first_sync_lands_plans_tasks_and_people(
    env: Env, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(env)
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.status, s.message) for s in result.streams]
    work = rows(store, "work_item")
    plans = [w for w in env.world.work if w.platform == "planner_premium"]
    assert len(work) == len(plans)
    people = rows(store, "person")
    assert len(people) == 32
    booked = rows(store, "assignment")
    assert len(booked) == len(env.app.tables["msdyn_resourceassignment"].rows) > 0
    one = next(iter(booked.values()))
    assert one["person_upn"] and one["planned_hours"] and one["work_item_id"] in work
    assert one["extra"]["planned_work"][0]["hours"] == 8


def test_national_clouds_sign_in_at_their_own_authority_for_the_environment(
    tmp_path: Any, pm: Any
) -> None:
    from itcrosswalk.core.config import load_config
    from itcrosswalk.core.sync import build_adapter

    for cloud, url, authority in (
        ("global", "https://city.crm.dynamics.com", "https://login.microsoftonline.com"),
        ("usgov", "https://city.crm9.dynamics.com", "https://login.microsoftonline.us"),
        ("dod", "https://city.crm.appsplatform.us", "https://login.microsoftonline.us"),
        ("china", "https://city.crm.dynamics.cn", "https://login.chinacloudapi.cn"),
    ):
        path = tmp_path / f"{cloud}.toml"
        path.write_text(
            f'[sources.planner]\nplatform = "planner_premium"\nurl = "{url}/api/data/v9.2"\n'
            f'tenant_id = "city.example.gov"\ncloud = "{cloud}"\n'
            'auth = { type = "oauth_client_credentials", client_id = "app", client_secret = "env:X" }\n'
        )
        adapter = build_adapter(load_config(path), "planner", pm)
        assert adapter.authority == authority
        assert adapter.scope == f"{url}/.default"
        assert adapter.api == f"{url}/api/data/v9.2"  # the API path pasted into url is not doubled


def test_a_task_with_progress_sent_as_a_percent_is_quarantined_by_name_and_nothing_else_lost(
    env: Env, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(env)
    store = open_store(config)
    sync(config, store, pm)
    task = next(iter(env.app.tables["msdyn_projecttask"].rows))
    env.app.touch("msdyn_projecttask", task, msdyn_progress=40)
    result = {s.stream: s for s in sync(config, store, pm).streams}["msdyn_projecttask"]
    assert result.quarantined == 1 and result.status == "ok"
    [row] = store.quarantine_rows("planner", "msdyn_projecttask")
    assert row["source_id"] == task and "msdyn_progress 40" in row["error"]
    assert len(rows(store, "work_item")) == len(
        [w for w in env.world.work if w.platform == "planner_premium"]
    )
