"""Planner premium's plans and tasks are built without pydantic's validation
(``core.model.built``): what the mapping builds must be what validation would have built, and a
bad row must still be quarantined with its payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from itcrosswalk.core.config import Config
from itcrosswalk.core.model import WorkItemKind, WorkState
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.planner_premium import mapping

from ..built import mapped_as_validated
from .conftest import Env


def test_every_mapped_plan_and_task_is_the_work_item_validation_would_build(
    env: Env, make_config: Callable[..., Config], pm: Any
) -> None:
    seen = mapped_as_validated(
        build_adapter(make_config(env), "planner", pm), ("msdyn_project", "msdyn_projecttask")
    )
    assert set(seen) == {"msdyn_project", "msdyn_projecttask"}


def test_the_word_tables_hold_only_the_model_s_values() -> None:
    states = {s.value for s in WorkState}
    assert set(mapping.INACTIVE_STATUS_WORDS.values()) <= states
    assert set(mapping.HEALTH_WORDS.values()) <= {"green", "amber", "red"}
    assert all(type(p) is int and 1 <= p <= 5 for p in mapping.PRIORITY_WORDS.values())
    assert {WorkItemKind.PROJECT.value, WorkItemKind.TASK.value} <= {k.value for k in WorkItemKind}


def test_bad_values_are_still_caught_and_each_bad_row_quarantined_with_its_payload(
    env: Env, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    tasks = list(env.app.tables["msdyn_projecttask"].rows)
    bad = {
        tasks[0]: ("msdyn_progress", 40),
        tasks[1]: ("msdyn_scheduledstart", 20260101),
        tasks[2]: ("msdyn_scheduledend", "31/12/2026"),
        tasks[3]: ("msdyn_subject", "   "),
    }
    for task, (column, value) in bad.items():
        env.app.touch("msdyn_projecttask", task, **{column: value})
    config = make_config(env)
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("planner")
    outcome = {s.stream: s for s in result.streams}["msdyn_projecttask"]
    assert outcome.quarantined == len(bad)
    quarantined = {r["source_id"]: r for r in store.quarantine_rows("planner", "msdyn_projecttask")}
    assert set(quarantined) == set(bad)
    for task, (column, value) in bad.items():
        assert quarantined[task]["payload"][column] == value
        assert quarantined[task]["error"].startswith("ValueError")
    stored = store.count("work_item", source="planner")
    plans = {s.stream: s for s in result.streams}["msdyn_project"].read
    assert stored == plans + outcome.read - len(bad)
