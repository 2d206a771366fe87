"""Tickets are built without pydantic's validation (it cost as much as the rest of the mapping):
what the mapping builds must be what validation would have built, and a bad record must
still be quarantined with its payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from itcrosswalk.core.adapter import Window, paginate
from itcrosswalk.core.config import Config
from itcrosswalk.core.model import Ticket
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.servicenow import mapping

from ..built import mapped_as_validated
from .conftest import Instance, count_kind

TICKET_TABLES = ("incident", "sc_req_item", "problem", "change_request")


def test_every_mapped_ticket_is_the_model_validation_would_build(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance)
    adapter = build_adapter(config, "snow", pm)
    seen = 0
    try:
        for stream in adapter.streams():
            if stream.name not in TICKET_TABLES:
                continue
            for page, _used, _after in paginate(stream, Window(None, None, True)):
                for raw in page.records:
                    ticket = stream.map(raw)
                    validated = Ticket.model_validate(ticket.model_dump())
                    assert ticket == validated, raw
                    assert list(ticket.__dict__) == list(Ticket.model_fields)
                    assert type(ticket.state) is str and type(ticket.kind) is str
                    for name in ("updated_at", "created_at", "opened_at", "resolved_at"):
                        moment = getattr(ticket, name)
                        assert moment is None or moment.utcoffset().total_seconds() == 0
                    seen += 1
    finally:
        adapter.close()
    assert seen == sum(count_kind(instance.world, k) for k in ("incident", "request", "problem", "change"))  # fmt: skip


def test_a_ticket_built_without_validation_behaves_as_a_model() -> None:
    raw = {
        "sys_id": {"value": "abc", "display_value": "abc"},
        "sys_updated_on": {"value": "2026-01-02 03:04:05", "display_value": "x"},
        "number": {"value": "INC1", "display_value": "INC1"},
        "state": {"value": "2", "display_value": "In Progress"},
        "priority": {"value": "9", "display_value": "9 - Odd"},
    }
    ticket = mapping.map_ticket(raw, source="s", table="incident", base="https://x")
    assert ticket.priority is None and ticket.extra["native_priority"]["value"] == "9"
    ticket.title = "changed"  # assignable, as a validated model is
    assert ticket.model_fields_set >= {"title", "source_id"}
    assert ticket.model_copy(update={"number": "INC2"}).number == "INC2"
    assert Ticket.model_validate_json(ticket.model_dump_json()) == ticket


def _synced_with(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    table: str,
    bad: dict[str, dict[str, str]],
) -> tuple[Any, Any, dict[str, Any]]:
    """Sync ``table`` after giving some of its rows bad values: the store, the result and the
    quarantined rows by id, which must be those rows and no other."""
    for sys_id, change in bad.items():
        instance.app.touch(table, sys_id, **change)
    config = make_config(instance, extra=f'streams = ["{table}"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("snow")
    assert result.exit_code == 3
    quarantined = {r["source_id"]: r for r in store.quarantine_rows("snow")}
    assert set(quarantined) == set(bad)
    return store, result, quarantined


def test_bad_values_are_still_caught_and_each_bad_record_quarantined_with_its_payload(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    rows = instance.app.tables["incident"]
    bad = {
        rows[1]["sys_id"]: {"opened_at": "31/12/2025 25:61"},
        rows[2]["sys_id"]: {"resolved_at": "2026-02-30 10:00:00"},
        rows[3]["sys_id"]: {"reassignment_count": "lots"},
        rows[4]["sys_id"]: {"closed_at": "yesterday"},
        rows[5]["sys_id"]: {"reopen_count": "1e999x"},
    }
    store, result, quarantined = _synced_with(
        instance, make_config, open_store, pm, "incident", bad
    )
    for sys_id, change in bad.items():
        ((field, text),) = change.items()
        assert text in str(quarantined[sys_id]["payload"][field])
        assert quarantined[sys_id]["error"].startswith("ValueError")
    assert store.count("ticket", source="snow") == count_kind(instance.world, "incident") - len(bad)  # fmt: skip
    assert result.streams[0].quarantined == len(bad)


WORK_TABLES = ("pm_portfolio", "pm_program", "pm_project", "pm_project_task")


def test_every_mapped_work_item_is_the_model_validation_would_build(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    seen = mapped_as_validated(build_adapter(make_config(instance), "snow", pm), WORK_TABLES)
    assert set(seen) == set(WORK_TABLES)
    assert sum(seen.values()) == sum(len(instance.app.tables[t]) for t in WORK_TABLES)


def test_bad_work_item_values_are_still_caught_and_quarantined(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    rows = instance.app.tables["pm_project_task"]
    assert len(rows) >= 3
    bad = {
        rows[0]["sys_id"]: {"start_date": "31/12/2025"},
        rows[1]["sys_id"]: {"budget_cost": "a lot"},
        rows[2]["sys_id"]: {"percent_complete": "nan"},
    }
    store, _result, _quarantined = _synced_with(
        instance, make_config, open_store, pm, "pm_project_task", bad
    )
    assert store.count("work_item", source="snow") == len(rows) - len(bad)
