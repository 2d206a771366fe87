"""The Jira adapter end to end: the real ``jira`` package over TLS against the Cloud emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.testing import AdapterConformance, ConformanceSetup

from .conftest import TOKEN, USER, Site

STREAMS = {"requests", "slas", "epics", "users"}


def sync(config: Config, store: Store, pm: Any, **kwargs: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("jsm", **kwargs)


def by_stream(result: Any) -> dict[str, Any]:
    return {s.stream: s for s in result.streams}


def tickets(store: Store) -> dict[str, dict[str, Any]]:
    return {r["source_id"]: r for r in store.export("ticket", source="jsm")}


def live(store: Store, entity: str) -> set[str]:
    return {r["source_id"] for r in store.export(entity, source="jsm") if not r["deleted"]}


def searches(site: Site) -> list[dict[str, Any]]:
    return [b for m, p, b in site.app.bodies if p.endswith("/search/jql")]


class TestConformance(AdapterConformance):
    @pytest.fixture
    def conformance(
        self,
        site: Site,
        make_config: Callable[..., Config],
        open_store: Any,
        pm: Any,
        store_url: str,
    ) -> ConformanceSetup:
        config = make_config(site, store_url=store_url)
        return ConformanceSetup(
            config=config,
            source="jsm",
            store=open_store(config),
            pm=pm,
            expected_streams=STREAMS,
            # Each sync first reads serverInfo, then the field, status, project and issue type
            # lists its mapping needs.
            setup_requests=5,
        )


def test_the_desk_lands_with_kinds_states_counts_and_slas(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site)
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.status, s.message) for s in result.streams]
    world = site.world
    desk = [t for t in world.tickets if t.platform == "jira"]
    departments = {d.id: d.name for d in world.departments}
    emails = {p.id: p.upn for p in world.people}
    landed = {r["title"] + r["opened_at"].isoformat()[:19]: r for r in tickets(store).values()}
    assert len(landed) == len(desk)
    for ticket in desk:
        row = landed[ticket.title + ticket.opened.isoformat()[:19]]
        assert row["kind"] == ticket.kind
        assert row["state"] == ticket.state
        assert row["priority"] == ticket.priority
        assert row["number"].startswith("CSD-")
        assert row["department"] == departments[ticket.department]
        assert row["assignment_group"] == ticket.assignment_group
        assert row["requester"] == emails[ticket.caller_id]
        assert row["reassignment_count"] == ticket.reassignment_count
        assert row["reopen_count"] == ticket.reopen_count
        assert (row["resolved_at"] is None) == (
            ticket.resolved is None and ticket.state != "cancelled"
        )
        if ticket.responded:
            assert row["responded_at"].replace(microsecond=0) == ticket.responded
    slas = list(store.export("sla_record", source="jsm"))
    assert {s["sla_name"] for s in slas} == {"Time to resolution", "Time to first response"}
    assert {s["ticket_id"] for s in slas} <= set(tickets(store))
    # Elapsed time is the SLA calendar's: never presented as wall-clock time.
    assert all(s["elapsed_seconds"] is None for s in slas)
    # Changes have a configured SLA that never started: no cycle, no record.
    changes = {k for k, r in tickets(store).items() if r["kind"] == "change"}
    assert changes and not {s["ticket_id"] for s in slas} & changes
    epics = list(store.export("work_item", source="jsm"))
    assert {e["kind"] for e in epics} == {"epic", "program"}
    assert len(epics) == sum(1 for w in world.work if w.platform == "jira")
    assert len(live(store, "person")) == len(world.people)


def test_connect_and_search_take_the_cloud_path_with_tokens_fields_and_bounded_jql(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(page_cap=10)
    config = make_config(site, extra='streams = ["requests"]')
    store = open_store(config)
    result = sync(config, store, pm)
    desk = sum(1 for t in site.world.tickets if t.platform == "jira")
    assert by_stream(result)["requests"].read == desk
    paths = [p for _m, p in site.app.requests]
    assert paths[0] == "/rest/api/2/serverInfo", "the package learns it is Cloud first"
    assert not any(p.split("?")[0].endswith("/search") for p in paths), "the removed /search"
    bodies = searches(site)
    pages = -(-desk // 10)
    assert len(bodies) == pages
    assert "nextPageToken" not in bodies[0] and all("nextPageToken" in b for b in bodies[1:])
    for body in bodies:
        assert body["jql"].startswith('project in ("CSD")')
        assert body["jql"].endswith("ORDER BY updated ASC, key ASC")
        assert "*all" not in body["fields"] and "summary" in body["fields"]
        assert "startAt" not in body and not body.get("expand")
    assert len({b["jql"] for b in bodies}) == 1, "the query never changes between pages"


def test_a_null_token_on_the_last_page_ends_the_read_too(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(page_cap=10, last_token="null")
    config = make_config(site, extra='streams = ["requests"]')
    result = sync(config, open_store(config), pm)
    desk = sum(1 for t in site.world.tickets if t.platform == "jira")
    assert by_stream(result)["requests"].read == desk


def test_a_revoked_api_token_fails_in_one_line_with_atlassians_words_and_no_secret(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site)
    site.app.revoke(USER)
    with pytest.raises(AuthError) as caught:
        sync(config, open_store(config), pm)
    message = str(caught.value)
    assert "\n" not in message
    assert "HTTP 401" in message and "Client must be authenticated" in message
    assert "env:JIRA_API_TOKEN" in message and TOKEN not in message


def test_changes_in_the_last_minutes_of_a_utc_plus_10_account_are_neither_lost_nor_doubled(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(time_zones={USER: "Australia/Brisbane"})
    config = make_config(site, extra='streams = ["requests"]\noverlap_seconds = 120')
    store = open_store(config)
    sync(config, store, pm)
    cursor = store.get_cursor("jsm", "requests")
    assert cursor is not None and cursor.watermark is not None
    # Edits seconds after the watermark, inside its minute and the next one.
    keys = sorted(site.app.keys)[:3]
    for offset, key in zip((1, 30, 75), keys, strict=True):
        site.app.touch(
            key, updated=cursor.watermark + timedelta(seconds=offset), summary=f"edited {key}"
        )
    second = by_stream(sync(config, store, pm))["requests"]
    assert second.updated == 3 and second.inserted == 0
    assert {r["title"] for r in tickets(store).values()} >= {f"edited {k}" for k in keys}
    assert store.count("ticket", source="jsm") == sum(
        1 for t in site.world.tickets if t.platform == "jira"
    )
    jql = searches(site)[-2]["jql"]  # the last is the id-only sweep
    since = int((cursor.watermark - timedelta(seconds=120)).timestamp() * 1000)
    assert f"updated >= {since}" in jql, "an epoch-milliseconds literal, no time zone involved"
    third = by_stream(sync(config, store, pm))["requests"]
    assert third.updated == 0 and third.inserted == 0


def test_the_profile_time_zone_rule_loses_changes_behind_a_utc_datetime_literal(
    site_factory: Callable[..., Site],
) -> None:
    import requests

    site = site_factory(time_zones={USER: "America/Los_Angeles"})
    key = sorted(site.app.keys)[0]
    moment = datetime(2026, 11, 2, 3, 4, 30, tzinfo=UTC)
    site.app.touch(key, updated=moment)
    literal = moment.strftime('"%Y/%m/%d %H:%M"')  # a UTC watermark written as Jira's literal

    def found(bound: str) -> bool:
        response = requests.post(
            f"{site.url}/rest/api/3/search/jql",
            json={
                "jql": f"project = CSD AND updated >= {bound}",
                "fields": ["id"],
                "maxResults": 5000,
            },
            auth=(USER, TOKEN),
            verify=str(site.ca),
            timeout=10,
        )
        ids = {i["id"] for i in response.json()["issues"]}
        return str(site.app.keys[key]) in ids

    assert found(str(int(moment.timestamp() * 1000) - 60000))
    # Read as Los Angeles time, the UTC literal means eight hours later: the change is missed.
    assert not found(literal)


def test_a_jql_the_site_rejects_shows_its_message(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='[sources.jsm.jql]\nrequests = "projct = CSD"')
    result = by_stream(sync(config, open_store(config), pm))
    assert result["requests"].status == "error"
    assert (
        "Field 'projct' does not exist or you do not have permission to view it."
        in result["requests"].message
    )
    assert result["epics"].status == "ok"


def test_sla_fields_hidden_from_a_non_agent_are_reported_by_check_and_the_stream_skipped(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(agents=[])
    config = make_config(site)
    adapter = build_adapter(config, "jsm", pm)
    try:
        checked = {c.name: c for c in adapter.check()}
    finally:
        adapter.close()
    assert checked["slas"].status == "no_access"
    assert "not a service desk agent" in checked["slas"].detail
    assert checked["requests"].ok
    result = sync(config, open_store(config), pm)
    streams = by_stream(result)
    assert streams["slas"].status == "no_access" and "agent" in streams["slas"].message
    assert streams["requests"].status == "ok" and streams["requests"].read > 0
    assert result.exit_code == 3


def test_check_names_a_missing_browse_projects_permission(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], pm: Any
) -> None:
    site = site_factory(browsers=[])
    adapter = build_adapter(make_config(site), "jsm", pm)
    try:
        checked = {c.name: c for c in adapter.check()}
    finally:
        adapter.close()
    assert set(checked) == STREAMS
    assert all(c.status == "no_access" and "Browse projects" in c.detail for c in checked.values())


def test_an_issue_deleted_or_moved_out_of_the_desk_is_tombstoned_by_the_id_sweep(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["requests", "slas"]')
    store = open_store(config)
    sync(config, store, pm)
    slas_of = {r["ticket_id"] for r in store.export("sla_record", source="jsm")}
    deleted, moved = [k for k in sorted(site.app.keys) if str(site.app.keys[k]) in slas_of][:2]
    deleted_id, moved_id = str(site.app.keys[deleted]), str(site.app.keys[moved])
    site.app.delete(deleted)
    site.app.move(moved, "JSW")
    second = by_stream(sync(config, store, pm))
    assert second["requests"].tombstoned == 2
    assert deleted_id not in live(store, "ticket") and moved_id not in live(store, "ticket")
    remaining = {
        r["ticket_id"] for r in store.export("sla_record", source="jsm") if not r["deleted"]
    }
    assert deleted_id not in remaining and moved_id not in remaining
    sweep = searches(site)[-1]
    assert sweep["fields"] == ["id"] and sweep["maxResults"] == 5000


def test_a_429_is_waited_out_by_the_core_policy_not_the_packages_retry(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    site.faults.retry_after = 2
    site.faults.throttle_next = 1
    result = sync(config, store, pm)
    assert by_stream(result)["epics"].status == "ok"
    telemetry = store.runs("jsm")[0]["manifest"]["telemetry"]
    # A retry before Retry-After would have earned a second, longer 429.
    assert telemetry["throttled"] == 1 and telemetry["retries"] == 1
    adapter = build_adapter(config, "jsm", pm)
    try:
        assert adapter.client._session.max_retries == 0
    finally:
        adapter.close()


def test_a_retry_after_beyond_max_wait_gives_up_at_once_with_the_reason(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["epics"]', max_wait=1)
    store = open_store(config)
    site.faults.retry_after = 90  # the package would wait 45-60 s: less than asked
    site.faults.throttle_next = 1
    result = SyncEngine(config, store, pm=pm).sync("jsm")
    outcome = by_stream(result)["epics"]
    assert outcome.status == "error"
    assert "HTTP 429" in outcome.message and "more than the 1s left of max_wait" in outcome.message
    telemetry = store.runs("jsm")[0]["manifest"]["telemetry"]
    # Every request was answered 429 and none was sent again early, by the package or the core.
    assert telemetry["retries"] == 0 and telemetry["throttled"] == telemetry["requests"]


def test_long_changelogs_are_read_through_their_own_paged_endpoint(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(changelog_padding=45)
    config = make_config(site, extra='streams = ["requests"]')
    store = open_store(config)
    sync(config, store, pm)
    desk = {
        t.title + t.opened.isoformat()[:19]: t for t in site.world.tickets if t.platform == "jira"
    }
    for row in tickets(store).values():
        ticket = desk[row["title"] + row["opened_at"].isoformat()[:19]]
        assert row["reopen_count"] == ticket.reopen_count
        assert row["reassignment_count"] == ticket.reassignment_count
    bulk = [b for m, p, b in site.app.bodies if p.endswith("/changelog/bulkfetch")]
    assert bulk and all(b["fieldIds"][:2] == ["status", "resolution"] for b in bulk)
    assert not any("changelog" in json.dumps(b.get("expand") or "") for b in searches(site))


def test_a_read_killed_between_pages_keeps_no_token_and_starts_its_window_again(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(page_cap=10, fail_search=2)
    config = make_config(site, extra='streams = ["requests"]', retries=0)
    store = open_store(config)
    first = by_stream(sync(config, store, pm))["requests"]
    assert first.status == "error" and "HTTP 503" in first.message
    cursor = store.get_cursor("jsm", "requests")
    assert cursor is not None and cursor.window_until is not None, "a read in progress"
    assert cursor.resume_token is None, "Jira's page tokens expire and are bound to one query"
    assert store.count("ticket", source="jsm") == 10
    second = by_stream(sync(config, store, pm))["requests"]
    desk = sum(1 for t in site.world.tickets if t.platform == "jira")
    assert second.status == "ok" and second.inserted == desk - 10
    assert store.count("ticket", source="jsm") == desk


def test_a_data_center_site_is_read_with_a_pat_through_the_classic_search(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site = site_factory(deployment="Server", page_cap=10)
    config = make_config(site)
    text = config.path.read_text().replace(
        f'auth = {{ type = "basic", user = "{USER}", password = "env:JIRA_API_TOKEN" }}',
        'auth = { type = "bearer", token = "env:JIRA_API_TOKEN" }',
    )
    config.path.write_text(text)
    from itcrosswalk.core.config import load_config

    config = load_config(config.path)
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.status, s.message) for s in result.streams]
    desk = [t for t in site.world.tickets if t.platform == "jira"]
    assert store.count("ticket", source="jsm") == len(desk)
    paths = [p for _m, p in site.app.requests]
    assert not any("/rest/api/3/" in p or "/search/jql" in p for p in paths)
    starts = [b["startAt"] for m, p, b in site.app.bodies if p.endswith("/rest/api/2/search")]
    assert starts[:3] == [0, 10, 20]
    assert any(p.endswith("/changelog?startAt=0&maxResults=100") for p in paths)
    reopened = {r["reopen_count"] for r in tickets(store).values()}
    assert reopened == {t.reopen_count for t in desk}
    gone = sorted(site.app.keys)[0]
    site.app.delete(gone)
    assert by_stream(sync(config, store, pm))["requests"].tombstoned == 1
