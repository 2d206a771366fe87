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

ALL_STREAMS = {"msdyn_project", "msdyn_projecttask", "bookableresource"}
SETUP_REQUESTS = 4
"""Each sync reads the tables' metadata (one request) and three tables' option sets."""


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
