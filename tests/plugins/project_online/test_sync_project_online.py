"""The Project Online adapter end to end: requests (and requests-ntlm) against the HTTPS emulator."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError, ConfigError
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.testing import AdapterConformance, ConformanceSetup

from .conftest import NTLM_AUTH, PASSWORD, Instance, project_rows

STREAMS = {"Projects", "Tasks", "Resources"}


def sync(config: Config, store: Store, pm: Any, **kwargs: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("pwa", **kwargs)


def work_items(store: Store) -> dict[str, dict[str, Any]]:
    return {row["source_id"]: row for row in store.export("work_item", source="pwa")}


class TestConformance(AdapterConformance):
    @pytest.fixture
    def conformance(
        self,
        instance: Instance,
        make_config: Callable[..., Config],
        open_store: Any,
        pm: Any,
        store_url: str,
    ) -> ConformanceSetup:
        config = make_config(instance, store_url=store_url)
        return ConformanceSetup(
            config=config,
            source="pwa",
            store=open_store(config),
            pm=pm,
            expected_streams=STREAMS,
            # Each sync's first request is refused twice on the way through NTLM's handshake.
            setup_requests=2,
        )


@pytest.mark.parametrize("fmt", ["verbose", "light"])
def test_a_full_sync_pages_every_set_and_lands_schedules_costs_and_baselines(
    fmt: str,
    instance_factory: Callable[..., Instance],
    small_world: Any,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    # Small, different row limits per entity set, as an admin's Set-SPProjectOdataConfiguration leaves them.
    instance = instance_factory(
        world=small_world,
        page_limits={"Projects": 2, "Tasks": 5, "Resources": 97, "Assignments": 3, "Risks": 2},
    )
    config = make_config(instance, fmt=fmt)
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.status, s.message) for s in result.streams]
    by_stream = {s.stream: s for s in result.streams}
    projects = project_rows(small_world)
    assert by_stream["Projects"].pages == -(-len(projects) // 2)
    assert by_stream["Resources"].pages == -(-(len(small_world.people) + 2) // 97)
    # A project's task baselines are read once even when its tasks span several pages.
    assert by_stream["Tasks"].requests <= by_stream["Tasks"].pages + len(project_rows(small_world))
    rows = work_items(store)
    children = [
        w for w in small_world.work if w.platform == "project_online" and w.kind != "project"
    ]
    assert len(rows) == len(projects) + len(children)  # leaf tasks and summary rows stay out
    for project in projects:
        row = rows[str(uuid.UUID(hex=project.id))]
        assert row["kind"] == "project"
        assert row["name"] == project.name
        assert row["number"] == project.number
        assert row["state"] == project.state and row["phase"] == project.phase
        assert row["health"] == project.health
        assert row["priority"] == project.priority
        assert row["strategic_goals"] == project.goals
        assert row["forecast_cost"] == pytest.approx(project.forecast_cost)
        assert row["actual_cost"] == pytest.approx(project.actual_cost)
        assert row["planned_value"] == pytest.approx(project.planned_value)
        assert row["earned_value"] == pytest.approx(project.earned_value)
        assert row["budget"] == pytest.approx(project.budget)  # baseline 0, not the re-baseline
        assert row["percent_complete"] == int(project.percent_complete)
        assert row["planned_start"] == project.planned_start.replace(microsecond=0)
        assert row["baseline_cost"] == pytest.approx(project.budget)
        assert row["baseline_finish"] == project.planned_finish.replace(microsecond=0)
        assert row["extra"]["enterprise_project_type"] == "City Standard Project"
        assert row["extra"]["remaining_cost"] == pytest.approx(
            max(project.forecast_cost - project.actual_cost, 0), abs=0.01
        )
        assert row["extra"]["risks"]["total"] >= 1
        assert row["extra"]["team"], "assignments of the leaf tasks make the team"
        assert row["extra"]["Annéefiscale"].startswith("FY")  # a non-ASCII custom field, intact
        assert "Tasks" not in row["extra"] and "__metadata" not in row["extra"]
    for child in children:
        row = rows[str(uuid.UUID(hex=child.id))]
        assert row["kind"] == child.kind
        assert row["parent_id"] == str(uuid.UUID(hex=child.parent_id))
        assert row["baseline_start"] is not None
    people = list(store.export("person", source="pwa"))
    assert len(people) == len(small_world.people)  # generic resources are roles, not people
    upns = {p["upn"] for p in people}
    assert {p.upn for p in small_world.people} == upns  # from the claims account when e-mail is ""


def test_ntlm_challenge_response_reads_the_feed_and_the_password_never_leaks(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_config(instance, auth=NTLM_AUTH, fmt="verbose")
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
    assert store.count("person", source="pwa") == len(instance.world.people)
    # The handshake happens once; SharePoint's FedAuth cookie carries the session after it.
    assert result.streams[2].requests == 1
    assert PASSWORD not in caplog.text


def test_a_wrong_ntlm_password_is_an_authentication_failure_naming_the_source(
    instance: Instance,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PWA_WRONG", "not-the-password")
    config = make_config(
        instance,
        auth='{ type = "ntlm", user = "CITY\\\\svc_crosswalk", password = "env:PWA_WRONG" }',
    )
    with pytest.raises(AuthError, match=r"source pwa \(HTTP 401\).*env:PWA_WRONG") as caught:
        sync(config, open_store(config), pm)
    assert "not-the-password" not in str(caught.value)


@pytest.mark.parametrize("trap", ["200", "302"])
def test_sharepoints_html_sign_in_page_is_an_auth_failure_not_a_parse_error(
    trap: str,
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance = instance_factory(signin_trap=trap, ntlm=False)
    monkeypatch.setenv("PWA_WRONG", "stale-token-value")
    config = make_config(instance, auth='{ type = "bearer", token = "env:PWA_WRONG" }')
    with pytest.raises(AuthError, match="authentication failed for source pwa") as caught:
        sync(config, open_store(config), pm)
    text = str(caught.value)
    assert ("sign-in page" in text) and "stale-token-value" not in text
    if trap == "302":
        assert "_layouts/15/Authenticate.aspx" in text  # where it was sent, never followed


def test_app_only_credentials_are_refused_before_any_request(
    instance: Instance, make_config: Callable[..., Config], pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PWA_SECRET", "client-secret-value")
    config = make_config(
        instance,
        auth='{ type = "oauth_client_credentials", client_id = "app", client_secret = "env:PWA_SECRET" }',
    )
    with pytest.raises(ConfigError, match="refuses app-only tokens.*project-online login pwa"):
        build_adapter(config, "pwa", pm)
    assert instance.app.requests_seen == []


def test_an_app_only_token_is_named_as_such(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    instance = instance_factory(apps={"app": "app-secret"})
    answer = requests.post(
        f"{instance.root}/city/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "app",
            "client_secret": "app-secret",
            "scope": f"{instance.root}/.default",
        },
        verify=str(instance.ca),
        timeout=10,
    ).json()
    monkeypatch.setenv("PWA_APP_TOKEN", answer["access_token"])
    config = make_config(instance, auth='{ type = "bearer", token = "env:PWA_APP_TOKEN" }')
    with pytest.raises(AuthError, match="refuses app-only tokens"):
        sync(config, open_store(config), pm)


def test_kerberos_without_its_extra_says_how_to_install_it(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    try:
        import requests_kerberos  # noqa: F401

        pytest.skip("requests-kerberos is installed here")
    except ImportError:
        pass
    config = make_config(instance, auth='{ type = "kerberos" }')
    with pytest.raises(ConfigError, match=r"pip install 'itcrosswalk\[kerberos\]'"):
        build_adapter(config, "pwa", pm)


def test_throttling_and_server_errors_are_waited_out(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    instance.faults.throttle_next = 2
    instance.faults.retry_after = 1
    config = make_config(instance, extra='streams = ["Projects"]')
    store = open_store(config)
    started = datetime.now(UTC)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    assert (datetime.now(UTC) - started).total_seconds() >= 2  # Retry-After: 1, twice
    instance.faults.server_errors_next = 2
    instance.faults.malformed_next = 1
    result = sync(config, store, pm, full=True)
    assert result.exit_code == 0, result.streams[0].message
    assert store.count("work_item", source="pwa") == len(project_rows(instance.world))


def test_rows_published_between_pages_are_neither_skipped_nor_doubled(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(page_limits={"Resources": 4})
    instance.faults.mutate_between_pages = 3
    config = make_config(instance, extra='streams = ["Resources"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.streams[0].read == len(instance.world.people)
    assert store.count("person", source="pwa") == len(instance.world.people)


def test_a_second_sync_reads_only_the_republished_project_and_full_tombstones_a_deleted_one(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(instance, extra='overlap_seconds = 0\nstreams = ["Projects", "Tasks"]')
    store = open_store(config)
    sync(config, store, pm)
    project = project_rows(instance.world)[0]
    row = instance.app.project_row(project.name)
    instance.app.touch("Projects", row, ProjectPercentCompleted=99, ProjectState="On Hold")
    second = sync(config, store, pm)
    outcome = {s.stream: s for s in second.streams}
    assert outcome["Projects"].read == 1 and outcome["Projects"].updated == 1
    assert outcome["Tasks"].inserted == outcome["Tasks"].updated == 0
    landed = work_items(store)[row["ProjectId"]]
    assert landed["percent_complete"] == 99 and landed["state"] == "on_hold"
    instance.app.delete_project(row["ProjectId"])
    third = sync(config, store, pm, full=True)
    assert {s.stream: s.tombstoned for s in third.streams} == {
        "Projects": 1,
        "Tasks": sum(1 for w in instance.world.work if w.parent_id == project.id),
    }
    deleted = [
        r for r in store.export("work_item", source="pwa", include_deleted=True) if r["deleted"]
    ]
    assert row["ProjectId"] in {r["source_id"] for r in deleted}


def test_an_instance_without_issues_and_risks_still_syncs_its_projects(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(missing_sets={"Issues", "Risks"})
    config = make_config(instance, extra='streams = ["Projects"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    (row,) = work_items(store).values()
    assert "issues" not in row["extra"] and row["extra"]["team"]


def test_an_unknown_custom_field_value_becomes_unknown_with_the_native_value_kept(
    instance: Instance, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    row = instance.app.project_row(project_rows(instance.world)[0].name)
    row["ProjectState"] = "Awaiting Council Vote"
    row["OverallHealth"] = None
    config = make_config(instance, extra='streams = ["Projects"]')
    store = open_store(config)
    sync(config, store, pm)
    (landed,) = work_items(store).values()
    assert landed["state"] == "unknown"
    assert landed["extra"]["native_state"] == "Awaiting Council Vote"
    assert landed["health"] == "unknown"


def test_a_malformed_project_is_quarantined_with_its_payload_and_the_read_goes_on(
    instance_factory: Callable[..., Instance],
    small_world: Any,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(world=small_world)
    bad = instance.app.sets["Projects"][0]
    bad["ProjectName"] = ""
    config = make_config(instance, extra='streams = ["Projects"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.streams[0].quarantined == 1 and result.exit_code == 3
    (item,) = store.quarantine_rows("pwa", "Projects")
    assert item["source_id"] == bad["ProjectId"] and "ProjectName" in item["error"]
    assert item["payload"]["ProjectId"] == bad["ProjectId"]
    assert store.count("work_item", source="pwa") == len(project_rows(small_world)) - 1


def test_check_counts_each_set_and_estimates_the_requests(
    instance_factory: Callable[..., Instance], make_config: Callable[..., Config], pm: Any
) -> None:
    instance = instance_factory(page_limits={"Resources": 15})
    adapter = build_adapter(make_config(instance), "pwa", pm)
    try:
        items = {item.name: item for item in adapter.check()}
    finally:
        adapter.close()
    assert items["Resources"].ok and items["Resources"].estimate_requests == -(
        -(len(instance.world.people) + 2) // 15
    )
    assert items["Tasks"].ok and "per page" in items["Tasks"].detail


def test_an_instance_lacking_a_filtered_property_is_read_whole_and_filtered_here(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    instance = instance_factory(hidden_properties={"Tasks": {"TaskIsProjectSummary"}})
    config = make_config(instance, extra='streams = ["Tasks"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    expected = sum(
        1 for w in instance.world.work if w.platform == "project_online" and w.kind != "project"
    )
    assert store.count("work_item", source="pwa") == expected  # no leaf tasks, no summary row
    assert "No property 'TaskIsProjectSummary'" in caplog.text


def test_next_links_naming_an_internal_host_are_asked_of_the_configured_one(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(link_host="pwa-internal.city.local", page_limits={"Resources": 9})
    config = make_config(instance, auth=NTLM_AUTH, extra='streams = ["Resources"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0 and result.streams[0].pages > 1
    assert store.count("person", source="pwa") == len(instance.world.people)


def test_a_server_in_local_time_is_read_and_filtered_in_that_zone(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(zone="America/Phoenix")
    config = make_config(
        instance,
        auth='{ type = "basic", user = "svc_crosswalk", password = "env:PWA_PASSWORD" }',
        extra='timezone = "America/Phoenix"\noverlap_seconds = 0\nstreams = ["Projects"]',
        fmt="verbose",
    )
    store = open_store(config)
    sync(config, store, pm)
    project = project_rows(instance.world)[0]
    (row,) = work_items(store).values()
    assert row["planned_start"] == project.planned_start.replace(microsecond=0)
    assert row["updated_at"] == project.updated.replace(microsecond=0)
    second = sync(config, store, pm)
    assert second.streams[0].inserted == second.streams[0].updated == 0
    assert second.streams[0].outside_window == 0  # the server-side filter was in server time


def test_platform_options_are_validated_with_the_key_named(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    config = make_config(instance, custom={"colour": "Project Colour"})
    with pytest.raises(
        ConfigError, match=r"sources\.pwa\.custom_fields.*unknown model field.*colour"
    ):
        build_adapter(config, "pwa", pm)
    config = make_config(instance, extra='timezone = "Mars/Olympus"')
    with pytest.raises(ConfigError, match="timezone"):
        build_adapter(config, "pwa", pm)


def test_check_names_an_auth_failure_and_stops(
    instance: Instance, make_config: Callable[..., Config], pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PWA_WRONG", "wrong-token-value")
    config = make_config(instance, auth='{ type = "bearer", token = "env:PWA_WRONG" }')
    adapter = build_adapter(config, "pwa", pm)
    try:
        (item,) = adapter.check()
    finally:
        adapter.close()
    assert not item.ok and item.status == "auth" and "env:PWA_WRONG" in item.detail


def test_a_project_deleted_on_the_server_is_tombstoned_by_the_next_incremental_sync(
    instance_factory: Callable[..., Instance],
    small_world: Any,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    instance = instance_factory(world=small_world)
    config = make_config(instance, extra='streams = ["Projects"]')
    store = open_store(config)
    sync(config, store, pm)
    gone = [instance.app.project_row(p.name)["ProjectId"] for p in project_rows(instance.world)[:2]]
    for project_id in gone:
        instance.app.delete_project(project_id)
    second = sync(config, store, pm)
    (outcome,) = second.streams
    assert not outcome.full and outcome.tombstoned == 2 and second.exit_code == 0
    live = work_items(store)
    still_live = [p for p in gone if p in live]
    assert still_live == [], f"{len(still_live)} of 2 deleted projects still exported as live"
    # The window's read and one id-only read (a $select of the key), not a re-read.
    assert outcome.requests == 2
