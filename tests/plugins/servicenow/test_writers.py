"""Write-back to ServiceNow: demands, projects, incidents and problems created through the
Table API with PySNC's session against the HTTPS emulator, idempotent by correlation id."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AccessDenied, PlatformError
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.servicenow.sandbox import create_app

from .conftest import Instance


def posts(instance: Instance, table: str) -> list[str]:
    return [p for m, p in instance.app.requests if m == "POST" and f"/table/{table}" in p]


def rows_with(instance: Instance, table: str, cid: str) -> list[dict[str, str]]:
    return [r for r in instance.app.tables.get(table, []) if r.get("correlation_id") == cid]


@pytest.fixture
def snow(instance: Instance, make_config: Callable[..., Config], pm: Any) -> Any:
    adapter = build_adapter(make_config(instance), "snow", pm)
    yield adapter
    adapter.close()


def test_writers_are_offered_and_listed_in_the_capabilities(snow: Any) -> None:
    assert {"demand", "work_item:project", "ticket:incident", "ticket:problem"} <= set(snow.writers)
    assert snow.capabilities().writes == sorted(snow.writers)


def test_a_demand_is_created_once_however_often_it_is_applied(
    snow: Any, instance: Instance
) -> None:
    world = instance.world
    dept, person = world.departments[0], world.people[0]
    fields = {
        "name": "Online permit portal",
        "description": "Residents apply for permits online",
        "department": dept.name,
        "requester": person.upn,
        "priority": 2,
        "estimated_cost": 90000.5,
    }
    first = snow.writers["demand"](fields, correlation_id="cw:intake:1")
    assert first.action == "created" and first.entity == "demand"
    assert first.url and first.source_id in first.url
    again = snow.writers["demand"](fields, correlation_id="cw:intake:1")
    assert again.action == "exists" and again.source_id == first.source_id
    assert len(posts(instance, "dmn_demand")) == 1
    [row] = rows_with(instance, "dmn_demand", "cw:intake:1")
    assert row["short_description"] == "Online permit portal"
    assert row["department"] == next(
        r["sys_id"] for r in instance.app.tables["cmn_department"] if r["name"] == dept.name
    )
    assert row["submitter"] == person.id  # resolved by e-mail to the user's sys_id
    assert row["financial_estimated_cost"] == "90000.50"
    assert row["correlation_display"] == "itcrosswalk"
    assert row["number"].startswith("DMND") and row["state"] == "1"  # the platform's default
    post = first.requests[-1]
    assert post["method"] == "POST" and post["body"]["priority"] == "2"


def test_a_dry_run_sends_no_post_and_returns_the_exact_payload(
    snow: Any, instance: Instance
) -> None:
    dept = instance.world.departments[1]
    result = snow.writers["work_item:project"](
        {
            "name": "Fleet yard",
            "department": dept.name,
            "planned_start": datetime(2026, 3, 1, tzinfo=UTC),
            "budget": 150000.0,
            "phase": "initiating",
            "state": "proposed",
        },
        correlation_id="cw:charter:dry",
        dry_run=True,
    )
    assert result.action == "dry_run" and result.source_id is None
    assert posts(instance, "pm_project") == []
    assert all(r["method"] == "GET" for r in result.requests[:-1])
    post = result.requests[-1]
    assert post["method"] == "POST" and post["url"].endswith("/api/now/table/pm_project")
    assert post["body"] == {
        "short_description": "Fleet yard",
        "department": next(
            r["sys_id"] for r in instance.app.tables["cmn_department"] if r["name"] == dept.name
        ),
        "start_date": "2026-03-01 00:00:00",
        "budget_cost": "150000",
        "phase": "initiating",
        "state": "-5",
        "correlation_id": "cw:charter:dry",
        "correlation_display": "itcrosswalk",
    }


def test_a_reference_that_matches_nothing_is_named_and_nothing_is_created(
    snow: Any, instance: Instance
) -> None:
    with pytest.raises(PlatformError, match="no cmn_department record matches 'Waterr'"):
        snow.writers["demand"]({"name": "x", "department": "Waterr"}, correlation_id="cw:typo")
    with pytest.raises(PlatformError, match="cannot set colour"):
        snow.writers["demand"]({"name": "x", "colour": "red"}, correlation_id="cw:typo")
    assert posts(instance, "dmn_demand") == []


def test_the_servers_refusal_is_shown_in_its_own_words(
    instance_factory: Callable[..., Instance], make_config: Callable[..., Config], pm: Any
) -> None:
    instance = instance_factory(mandatory={"incident": ["assignment_group"]})
    adapter = build_adapter(make_config(instance), "snow", pm)
    try:
        with pytest.raises(AccessDenied) as caught:
            adapter.writers["ticket:incident"]({"title": "Disk full"}, correlation_id="cw:alarm:1")
    finally:
        adapter.close()
    message = str(caught.value)
    assert "HTTP 403" in message
    assert "Data Policy Exception" in message and "mandatory: Assignment group" in message
    assert rows_with(instance, "incident", "cw:alarm:1") == []


def test_an_incident_per_alarm_syncs_back_as_the_same_ticket(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance)
    world = instance.world
    device = next(d for d in world.devices if d.in_cmdb)
    group = world.groups[0]
    adapter = build_adapter(config, "snow", pm)
    try:
        created = adapter.writers["ticket:incident"](
            {
                "title": "Device not encrypted",
                "description": "Compliance alarm",
                "priority": 2,
                "assignment_group": group,
                "device_name": device.name,
                "category": "Security",
            },
            correlation_id="cw:alarm:enc:1",
        )
    finally:
        adapter.close()
    row = instance.app.row("incident", created.source_id)
    assert row is not None
    assert (row["impact"], row["urgency"], row["priority"]) == ("1", "2", "2")
    assert row["cmdb_ci"] == device.id
    store: Store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("snow", streams=["incident"])
    [ticket] = [
        t for t in store.export("ticket", source="snow") if t["source_id"] == created.source_id
    ]
    assert ticket["title"] == "Device not encrypted"
    assert ticket["priority"] == 2 and ticket["state"] == "new" and ticket["kind"] == "incident"
    assert ticket["assignment_group"] == group
    assert ticket["device_name"] == device.name
    assert ticket["number"].startswith("INC")
    assert ticket["extra"]["correlation_id"] == "cw:alarm:enc:1"


def test_a_created_project_syncs_back_as_the_same_work_item(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(instance)
    dept, person = instance.world.departments[2], instance.world.people[3]
    program = instance.app.tables["pm_program"][0]
    adapter = build_adapter(config, "snow", pm)
    try:
        with caplog.at_level(logging.WARNING, logger="itcrosswalk.servicenow"):
            created = adapter.writers["work_item:project"](
                {
                    "name": "Water main renewal",
                    "description": "Replace 4 miles of main",
                    "department": dept.name,
                    "manager": person.name,
                    "sponsor": person.upn,
                    "planned_start": datetime(2026, 4, 1, tzinfo=UTC),
                    "planned_finish": datetime(2027, 3, 31, 17, 0, tzinfo=UTC),
                    "budget": 2500000.0,
                    "priority": 2,
                    "phase": "planning",
                    "health": "amber",
                    "parent_id": program["number"],
                },
                correlation_id="cw:charter:water",
            )
    finally:
        adapter.close()
    # This instance's pm_project has no sponsor column: the Table API drops it silently,
    # so the writer says so.
    assert "has no column sponsor" in caplog.text
    store: Store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("snow", streams=["pm_project"])
    [item] = [
        w for w in store.export("work_item", source="snow") if w["source_id"] == created.source_id
    ]
    assert item["name"] == "Water main renewal" and item["kind"] == "project"
    assert item["department"] == dept.name and item["manager"] == person.name
    assert item["planned_start"] == datetime(2026, 4, 1, tzinfo=UTC)
    assert item["planned_finish"] == datetime(2027, 3, 31, 17, 0, tzinfo=UTC)
    assert item["budget"] == 2500000.0 and item["priority"] == 2
    assert item["phase"] == "planning" and item["health"] == "amber"
    assert item["state"] == "proposed"  # Pending, the platform's default for a new project
    assert item["url"] == created.url
    assert item["parent_id"] == program["sys_id"]  # the program, resolved by its number


def test_a_created_demand_syncs_back_as_the_same_demand(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance)
    dept, person = instance.world.departments[0], instance.world.people[1]
    adapter = build_adapter(config, "snow", pm)
    try:
        created = adapter.writers["demand"](
            {
                "name": "Body cameras",
                "department": dept.name,
                "requester": person.upn,
                "estimated_cost": 120000.0,
                "business_case_approved": False,
            },
            correlation_id="cw:intake:cams",
        )
    finally:
        adapter.close()
    store: Store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("snow", streams=["dmn_demand"])
    [demand] = [
        d for d in store.export("demand", source="snow") if d["source_id"] == created.source_id
    ]
    assert demand["name"] == "Body cameras" and demand["department"] == dept.name
    assert demand["requester"] == person.name
    assert demand["estimated_cost"] == 120000.0
    assert demand["business_case_approved"] is False
    assert demand["state"] == "draft"


def test_a_correlation_filter_the_instance_ignores_does_not_pass_for_a_match(
    snow: Any, instance: Instance
) -> None:
    # Strip the column from the emulator's dictionary: the query condition is then ignored
    # and every row comes back, as the real Table API does with an unknown field.
    instance.app.drop_column("problem", "correlation_id")
    result = snow.writers["ticket:problem"](
        {"title": "Recurring mail outages"}, correlation_id="cw:rca:1", dry_run=True
    )
    assert result.action == "dry_run"


# -- the emulator's side of a create, called in-process -------------------------------------------


def post(
    app: Any, table: str, body: Any, raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/api/now/table/{table}",
        "QUERY_STRING": "",
        "HTTP_HOST": "snow.example",
        "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"admin:admin").decode(),
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    payload = json.loads(b"".join(app(environ, start_response)))
    return seen["status"], seen["headers"], payload


def test_the_emulator_creates_as_the_table_api_does(world: Any) -> None:
    app = create_app(world, mandatory={"dmn_demand": ["short_description"]})
    status, headers, body = post(
        app,
        "incident",
        {
            "short_description": "Printer on fire",
            "impact": "2",
            "urgency": "1",
            "u_no_such_column": "dropped",
            "number": "INC9999999",
        },
    )
    assert status == 201
    created = body["result"]
    assert headers["Location"].endswith(f"/api/now/table/incident/{created['sys_id']}")
    assert all(isinstance(v, (str, dict)) for v in created.values())  # every value a string
    assert created["priority"] == "2"  # impact 2 x urgency 1, by the business rule
    assert created["state"] == "1" and created["active"] == "true"
    assert created["number"].startswith("INC") and created["number"] != "INC9999999"
    assert "u_no_such_column" not in created  # a column the table lacks is dropped silently
    assert created["correlation_id"] == ""
    status, _headers, body = post(app, "dmn_demand", {"description": "no title"})
    assert status == 403
    assert body == {
        "error": {
            "message": "Operation Failed",
            "detail": "Data Policy Exception: \n\tThe following fields are mandatory: Short description\n",
        },
        "status": "failure",
    }
    status, _headers, body = post(app, "incident", None, raw=b"{not json")
    assert status == 400 and body["status"] == "failure"


def test_a_throttled_create_waits_as_told_and_creates_once(snow: Any, instance: Instance) -> None:
    instance.faults.retry_after = 0
    instance.faults.throttle_every = 2  # the lookup passes, the POST is refused once with 429
    result = snow.writers["demand"]({"name": "Throttled"}, correlation_id="cw:throttled")
    instance.faults.throttle_every = 0
    assert result.action == "created"
    assert len(posts(instance, "dmn_demand")) == 2  # refused before any work, so sent again
    assert len(rows_with(instance, "dmn_demand", "cw:throttled")) == 1


def test_an_incident_it_opened_is_resolved_once_with_its_note(
    snow: Any, instance: Instance
) -> None:
    resolve = snow.resolvers["ticket:incident"]
    assert resolve("cw:none", note="n").action == "missing"
    opened = snow.writers["ticket:incident"](
        {"title": "Disk not encrypted: WTR-LT-0007", "priority": 3}, correlation_id="cw:alarm:7"
    )
    dry = resolve("cw:alarm:7", note="The disk is encrypted now.", dry_run=True)
    assert dry.action == "dry_run" and dry.source_id == opened.source_id
    assert dry.requests[-1]["method"] == "PATCH"
    assert dry.requests[-1]["body"]["state"] == "6"
    assert not [m for m, _p in instance.app.requests if m == "PATCH"], "a dry run sends no PATCH"
    done = resolve("cw:alarm:7", note="The disk is encrypted now.")
    assert done.action == "resolved"
    [row] = rows_with(instance, "incident", "cw:alarm:7")
    assert row["state"] == "6" and row["close_notes"] == "The disk is encrypted now."
    assert resolve("cw:alarm:7", note="again").action == "already_resolved"
    assert len([m for m, _p in instance.app.requests if m == "PATCH"]) == 1
