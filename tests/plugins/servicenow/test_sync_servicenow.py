"""The ServiceNow adapter end to end: PySNC, unmodified, against the HTTPS emulator."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError, ConfigError, ConnectError
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.testing import AdapterConformance, ConformanceSetup

from .conftest import PASSWORD, Instance, count_kind

ALL_TABLES = {
    "incident",
    "sc_req_item",
    "problem",
    "change_request",
    "task_sla",
    "pm_portfolio",
    "pm_program",
    "pm_project",
    "pm_project_task",
    "dmn_demand",
    "cmdb_ci_computer",
    "sys_user",
}


def sync(config: Config, store: Store, pm: Any, **kwargs: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("snow", **kwargs)


def tickets(store: Store) -> dict[str, dict[str, Any]]:
    return {row["number"]: row for row in store.export("ticket", source="snow")}


class TestConformance(AdapterConformance):
    @pytest.fixture
    def conformance(
        self, instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
    ) -> ConformanceSetup:
        config = make_config(instance)
        return ConformanceSetup(
            config=config,
            source="snow",
            store=open_store(config),
            pm=pm,
            expected_streams=ALL_TABLES,
        )


def test_a_full_sync_lands_every_table_with_the_right_values(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra="page_size = 7")
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.status, s.message) for s in result.streams]
    world = instance.world
    assert store.count("ticket", source="snow", stream="incident") == count_kind(world, "incident")
    assert store.count("ticket", source="snow", stream="change_request") == count_kind(
        world, "change"
    )
    assert store.count("person", source="snow") == len(world.people)
    assert store.count("device", source="snow") == sum(1 for d in world.devices if d.in_cmdb)
    landed = tickets(store)
    for ticket in (t for t in world.tickets if t.platform == "servicenow"):
        row = landed[ticket.number]
        assert row["kind"] == ticket.kind
        assert row["priority"] == ticket.priority
        if ticket.kind == "incident":
            assert row["state"] == ticket.state, ticket.number
        else:  # other tables have no on-hold state; the world's states map onto theirs
            assert row["state"] != "unknown", ticket.number
        assert row["opened_at"] == ticket.opened.replace(microsecond=0)
        if ticket.kind in ("incident", "problem"):  # the other tables have no resolved_at
            assert (row["resolved_at"] is None) == (ticket.resolved is None)
        assert row["assignment_group"] == ticket.assignment_group
        assert row["url"].startswith(instance.url)
    for outcome in result.streams:
        assert outcome.remote_total == outcome.read, outcome.stream
    devices = list(store.export("device", source="snow"))
    expected = sum(1 for d in world.devices if d.in_cmdb and d.warranty_expiration)
    assert sum(1 for row in devices if row["warranty_expiration"]) == expected  # from alm_hardware


def test_many_records_sharing_one_timestamp_page_exactly_once(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    stamp = "2026-10-01 08:00:00"
    rows = instance.app.tables["incident"]
    for row in rows[:25]:
        row["sys_updated_on"] = stamp
    config = make_config(instance, extra='page_size = 4\nstreams = ["incident"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.streams[0].read == len(rows)
    assert store.count("ticket", source="snow") == len(rows)


def test_records_updated_between_pages_are_neither_skipped_nor_doubled(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    instance.faults.mutate_between_pages = 2
    config = make_config(instance, extra='page_size = 5\nstreams = ["incident"]')
    store = open_store(config)
    sync(config, store, pm)
    instance.faults.mutate_between_pages = 0
    sync(config, store, pm)
    platform = {row["sys_id"]: row["sys_updated_on"] for row in instance.app.tables["incident"]}
    stored = {row["source_id"]: row["updated_at"] for row in store.export("ticket", source="snow")}
    assert set(stored) == set(platform)
    for sys_id, updated in platform.items():
        assert stored[sys_id] == datetime.strptime(updated, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_rows_hidden_by_acls_neither_stop_the_read_nor_count_as_zero(
    instance_factory: Callable[..., Instance],
    world: Any,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    from itcrosswalk.plugins.servicenow.sandbox import create_app  # noqa: F401 - the emulator under test

    probe = instance_factory()
    order = sorted(probe.app.tables["incident"], key=lambda r: (r["sys_updated_on"], r["sys_id"]))
    hidden = {
        row["sys_id"] for row in order[3:15]
    }  # a run longer than a page: an empty page mid-read
    instance = instance_factory(acl_hidden={"incident": hidden})
    config = make_config(instance, extra='page_size = 5\nstreams = ["incident"]')
    store = open_store(config)
    result = sync(config, store, pm, full=True)
    visible = len(order) - len(hidden)
    assert store.count("ticket", source="snow") == visible
    outcome = result.streams[0]
    assert outcome.remote_total == len(order)
    assert "12 missing" in outcome.message and "ACL" in outcome.message
    status = {row["stream"]: row for row in store.status()}
    assert "ACL" in status["incident"]["message"]


def test_a_missing_and_a_forbidden_table_are_named_and_the_rest_syncs(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(
        missing_tables={"pm_project", "pm_program", "pm_portfolio", "pm_project_task"},
        forbidden_tables={"sys_user"},
    )
    config = make_config(instance)
    store = open_store(config)
    result = sync(config, store, pm)
    by_name = {s.stream: s for s in result.streams}
    assert by_name["pm_project"].status == "missing"
    assert "pm_project does not exist" in by_name["pm_project"].message
    assert by_name["sys_user"].status == "no_access"
    assert "may not read table sys_user" in by_name["sys_user"].message
    assert by_name["incident"].status == "ok" and by_name["incident"].read > 0
    assert result.exit_code == 3
    status = {row["stream"]: row for row in store.status()}
    assert status["sys_user"]["access"] == "no_access"
    assert status["sys_user"]["records"] == 0
    assert status["pm_project"]["access"] == "missing"


def test_429_waits_as_told_then_succeeds(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    instance.faults.throttle_next = 1
    instance.faults.retry_after = 1
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    started = time.monotonic()
    result = sync(config, store, pm)
    assert time.monotonic() - started >= 1.0
    assert result.exit_code == 0
    assert result.streams[0].requests == 2
    assert store.count("ticket", source="snow") == count_kind(instance.world, "incident")


def test_a_5xx_burst_is_retried_and_a_lasting_outage_fails_clearly(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra='streams = ["incident"]')
    config.sources["snow"].max_retries = 2
    config.sources["snow"].max_wait = 5
    store = open_store(config)
    instance.faults.server_errors_next = 2
    assert sync(config, store, pm).exit_code == 0
    instance.faults.server_errors_next = 100
    result = sync(config, store, pm)
    assert result.exit_code == 1
    assert result.streams[0].status == "error"
    assert "503" in result.streams[0].message


def test_a_malformed_body_is_retried_then_reported(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    instance.faults.malformed_next = 1
    assert sync(config, store, pm).exit_code == 0
    instance.faults.malformed_next = 10
    result = sync(config, store, pm, full=True)
    assert result.streams[0].status == "error"
    assert "not a Table API result" in result.streams[0].message


def test_unknown_native_values_are_kept_and_mapped_to_unknown(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory()
    incident = instance.app.tables["incident"][0]
    instance.app.touch(
        "incident", incident["sys_id"], state="42", priority="0", resolved_at="", closed_at=""
    )
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    row = tickets(store)[incident["number"]]
    assert row["state"] == "unknown"
    assert row["extra"]["native_state"]["value"] == "42"
    assert row["priority"] is None
    assert row["extra"]["native_priority"]["value"] == "0"
    assert row["resolved_at"] is None and row["closed_at"] is None


def test_a_record_that_cannot_be_mapped_is_quarantined(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    incident = instance.app.tables["incident"][1]
    instance.app.touch("incident", incident["sys_id"], opened_at="31/12/2025 25:61")
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 3
    rows = store.quarantine_rows("snow")
    assert [r["source_id"] for r in rows] == [incident["sys_id"]]
    assert "31/12/2025" in str(rows[0]["payload"])
    assert store.count("ticket", source="snow") == count_kind(instance.world, "incident") - 1


def test_a_wrong_password_says_authentication_failed_naming_the_source(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(instance)
    monkeypatch.setenv("SNOW_PASSWORD", "not-the-password")
    with pytest.raises(
        AuthError, match=r"authentication failed for source snow \(HTTP 401\).*env:SNOW_PASSWORD"
    ):
        sync(config, open_store(config), pm)


def test_oauth_grants_and_an_expired_token_is_refreshed(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    # Tokens die after 0.3 s on the server while advertising 30 minutes, as when an admin
    # shortens their lifetime: the 401s mid-read must be met with a refresh, not a failure.
    instance = instance_factory(token_ttl=0.3)
    instance.faults.latency = 0.05
    password_grant = (
        '{ type = "oauth_password", client_id = "crosswalk", client_secret = "env:SNOW_CLIENT_SECRET", '
        'user = "svc_crosswalk", password = "env:SNOW_PASSWORD" }'
    )
    config = make_config(
        instance, auth=password_grant, extra='streams = ["incident", "problem"]\npage_size = 5'
    )
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("snow")
    assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
    grants = [path for method, path in instance.app.requests if path == "/oauth_token.do"]
    assert len(grants) >= 2, "the token was refreshed during the read"
    expected = count_kind(instance.world, "incident") + count_kind(instance.world, "problem")
    assert store.count("ticket", source="snow") == expected
    client_grant = '{ type = "oauth_client_credentials", client_id = "crosswalk", client_secret = "env:SNOW_CLIENT_SECRET" }'
    config = make_config(instance, auth=client_grant, extra='streams = ["incident"]')
    assert SyncEngine(config, open_store(config), pm=pm).sync("snow", full=True).exit_code == 0


def test_an_unreachable_host_and_an_untrusted_certificate_are_named(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any, tmp_path: Path
) -> None:
    config = make_config(instance, ca=False)
    with pytest.raises(ConnectError, match="TLS verification failed for source snow.*ca_bundle"):
        sync(config, open_store(config), pm)
    config = make_config(instance)
    config.sources["snow"].url = "https://127.0.0.1:9"
    with pytest.raises(ConnectError, match="cannot reach source snow"):
        sync(config, open_store(config), pm)


def test_the_configured_ca_bundle_wins_over_the_environment(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trustme

    wrong = tmp_path / "wrong-ca.pem"
    wrong.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(wrong))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(wrong))
    config = make_config(instance, extra='streams = ["problem"]')
    assert sync(config, open_store(config), pm).exit_code == 0


def test_two_syncs_of_one_source_at_once_the_second_refuses(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    from itcrosswalk.core.errors import LockHeld

    config = make_config(instance, extra='streams = ["incident"]\npage_size = 5')
    store = open_store(config)
    seen: list[str] = []

    def second_sync(*_args: Any) -> None:
        if not seen:
            try:
                SyncEngine(config, open_store(config), pm=pm).sync("snow")
            except LockHeld as exc:
                seen.append(str(exc))

    SyncEngine(config, store, pm=pm, progress=second_sync).sync("snow")
    assert seen and f"pid {os.getpid()}" in seen[0]


def test_full_sync_tombstones_deleted_records_and_dry_run_writes_nothing(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    dry = sync(config, store, pm, dry_run=True)
    assert dry.streams[0].read == count_kind(instance.world, "incident")
    assert store.count("ticket", source="snow") == 0
    sync(config, store, pm)
    gone = instance.app.tables["incident"][2]["sys_id"]
    instance.app.delete("incident", gone)
    result = sync(config, store, pm, full=True)
    assert result.streams[0].tombstoned == 1
    deleted = [
        r["source_id"]
        for r in store.export("ticket", source="snow", include_deleted=True)
        if r["deleted"]
    ]
    assert deleted == [gone]


def test_check_names_each_table_and_estimates_requests(
    instance_factory: Callable[..., Instance], make_config: Callable[..., Config], pm: Any
) -> None:
    instance = instance_factory(forbidden_tables={"task_sla"}, missing_tables={"dmn_demand"})
    config = make_config(instance, extra="page_size = 10")
    adapter = build_adapter(config, "snow", pm)
    try:
        items = {item.name: item for item in adapter.check()}
    finally:
        adapter.close()
    assert items["incident"].ok
    assert items["incident"].estimate_requests == -(-count_kind(instance.world, "incident") // 10)
    assert (
        items["task_sla"].status == "no_access" and "itil or sla_admin" in items["task_sla"].detail
    )
    assert items["dmn_demand"].status == "missing"


def test_secrets_never_reach_the_store_the_logs_or_errors(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_config(instance)
    store = open_store(config)
    instance.faults.throttle_next = 1
    instance.faults.retry_after = 0
    sync(config, store, pm)
    dumped = "\n".join(str(r) for r in store.runs("snow")) + str(store.status())
    for entity in ("ticket", "person", "device"):
        dumped += "".join(str(row) for row in store.export(entity, source="snow"))
    assert PASSWORD not in dumped
    assert PASSWORD not in caplog.text
    if config.store.url.startswith("sqlite:///"):
        assert (
            PASSWORD.encode() not in Path(config.store.url.removeprefix("sqlite:///")).read_bytes()
        )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_sync_resumes_and_ends_with_every_record_exactly_once(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    tmp_path: Path,
    pm: Any,
) -> None:
    instance.faults.latency = 0.05
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 3')
    store = open_store(config)
    env = {**os.environ, "SNOW_PASSWORD": PASSWORD}
    child = subprocess.Popen(
        [sys.executable, "-m", "itcrosswalk.cli", "--config", str(config.path), "sync", "snow"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while (
        store.count("ticket", source="snow") < 6
        and time.monotonic() < deadline
        and child.poll() is None
    ):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    if child.stderr:
        child.stderr.close()
    partial = store.count("ticket", source="snow")
    total = count_kind(instance.world, "incident")
    assert 0 < partial < total, "the kill landed mid-sync"
    cursor = store.get_cursor("snow", "incident")
    assert cursor is not None and cursor.resume_token is not None
    instance.faults.latency = 0
    result = SyncEngine(config, store, pm=pm).sync("snow")  # takes over the dead process's lock
    assert result.exit_code == 0
    assert store.count("ticket", source="snow") == total
    assert result.streams[0].read == total - partial


def test_a_tie_group_larger_than_a_page_with_hidden_rows_and_changes_mid_read(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    probe = instance_factory()
    ids = [row["sys_id"] for row in probe.app.tables["incident"]]
    hidden = set(ids[5:11])
    instance = instance_factory(acl_hidden={"incident": hidden})
    for row in instance.app.tables["incident"][:30]:
        row["sys_updated_on"] = "2026-10-01 08:00:00"
    instance.faults.mutate_between_pages = 1
    config = make_config(instance, extra='page_size = 4\nstreams = ["incident"]')
    store = open_store(config)
    sync(config, store, pm)
    instance.faults.mutate_between_pages = 0
    sync(config, store, pm)
    visible = {row["sys_id"] for row in instance.app.tables["incident"]} - hidden
    stored = {row["source_id"] for row in store.export("ticket", source="snow")}
    assert stored == visible


def test_a_stream_that_fails_mid_read_resumes_from_its_committed_pages(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra='page_size = 5\nstreams = ["incident"]')
    config.sources["snow"].max_retries = 0
    store = open_store(config)
    pages: list[int] = []

    def outage_after_two_pages(*_args: Any) -> None:
        pages.append(1)
        if len(pages) == 2:
            instance.faults.server_errors_next = 1

    result = SyncEngine(config, store, pm=pm, progress=outage_after_two_pages).sync("snow")
    assert result.streams[0].status == "error"
    partial = store.count("ticket", source="snow")
    # What the stream committed before it failed is reported, not 0 (here and in the run).
    assert result.streams[0].inserted == partial and result.streams[0].read >= partial
    assert store.runs("snow")[0]["counts"]["incident"]["inserted"] == partial
    # 5, then 4 new per page behind the repeated boundary row (closed lower bound); the page
    # prefetched before the outage began may land too.
    assert partial in (9, 13)
    cursor = store.get_cursor("snow", "incident")
    assert cursor is not None and cursor.resume_token is not None and cursor.access == "error"
    before = len(instance.app.requests)
    resumed = sync(config, store, pm)
    total = count_kind(instance.world, "incident")
    assert resumed.streams[0].read == total - partial
    assert store.count("ticket", source="snow") == total
    assert len(instance.app.requests) - before <= -(-(total - partial) // 4) + 1


def test_a_misspelt_field_in_the_configured_query_or_columns_is_named_in_check_and_sync(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(
        instance, extra='streams = ["incident"]\nquery = { incident = "actve=true^priority=1" }'
    )
    adapter = build_adapter(config, "snow", pm)
    try:
        items = {item.name: item for item in adapter.check()}
    finally:
        adapter.close()
    assert not items["incident"].ok and "query.incident" in items["incident"].detail
    assert "'actve'" in items["incident"].detail
    store = open_store(config)
    with pytest.raises(ConfigError, match=r"sources\.snow\.query\.incident: .*'actve'"):
        sync(config, store, pm)
    assert store.count("ticket", source="snow") == 0  # not a silently widened read
    columns = make_config(
        instance,
        extra='streams = ["pm_project"]\ncolumns = { pm_project = { budget = "u_budgit" } }',
    )
    with pytest.raises(ConfigError, match=r"columns\.pm_project\.budget: .*'u_budgit'"):
        sync(columns, open_store(columns), pm)


def test_an_unknown_table_in_query_or_columns_is_refused_with_its_key(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance, extra='query = { incidnet = "active=true" }')
    with pytest.raises(ConfigError, match=r"sources\.snow\.query.*incidnet"):
        build_adapter(config, "snow", pm)


def test_a_configured_query_with_nq_groups_is_paged_by_its_window_in_every_group(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(
        instance,
        extra='streams = ["incident"]\npage_size = 3\nquery = { incident = "priority=2^NQpriority=3" }',
    )
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    wanted = {r["sys_id"] for r in instance.app.tables["incident"] if r["priority"] in ("2", "3")}
    assert wanted and {r["source_id"] for r in store.export("ticket", source="snow")} == wanted
    assert result.streams[0].read == len(wanted)  # every page moved on: nothing re-read
    touched = sorted(wanted)[0]
    instance.app.touch("incident", touched, short_description="edited")
    again = sync(config, store, pm)
    assert again.exit_code == 0 and again.streams[0].updated == 1


def test_a_project_deleted_on_the_instance_is_tombstoned_by_the_next_incremental_sync(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra='streams = ["pm_project", "incident"]')
    store = open_store(config)
    sync(config, store, pm)
    projects = instance.app.tables["pm_project"]
    assert len(projects) >= 2
    gone = projects[0]["sys_id"]
    instance.app.delete("pm_project", gone)
    deleted_incident = instance.app.tables["incident"][0]["sys_id"]
    instance.app.delete("incident", deleted_incident)
    second = sync(config, store, pm)
    outcome = {s.stream: s for s in second.streams}
    assert not outcome["pm_project"].full and outcome["pm_project"].tombstoned == 1
    live = {r["source_id"] for r in store.export("work_item", source="snow")}
    assert gone not in live and len(live) == len(projects)
    # Tickets are too many to list every sync: their deletions wait for a full sweep.
    assert outcome["incident"].tombstoned == 0
    assert sync(config, store, pm, full=True).exit_code == 0
    tickets = {r["source_id"] for r in store.export("ticket", source="snow")}
    assert deleted_incident not in tickets


def test_a_ticket_on_a_ci_is_linked_to_the_device_it_concerns(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance)
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    concerns = {
        (link["source_id"], link["target_ref"])
        for link in store.links_for("snow", "ticket")
        if link["relation"] == "concerns" and link["target_entity"] == "device"
    }
    landed = {row["source_id"]: row for row in store.export("ticket", source="snow")}
    on_a_ci = {sid for sid, row in landed.items() if row["device_name"]}
    assert on_a_ci and {sid for sid, _ci in concerns} == on_a_ci
    devices = {row["source_id"]: row["name"] for row in store.export("device", source="snow")}
    for ticket_id, ci in concerns:  # the link names the CI the ticket shows by name
        if ci in devices:
            assert devices[ci] == landed[ticket_id]["device_name"]
    assert sum(ci in devices for _t, ci in concerns) > 0
