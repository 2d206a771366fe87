"""The Jira Align adapter end to end: requests over real TLS against the HTTPS emulator."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError, ConfigError, PlatformError
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.jira_align import mapping
from itcrosswalk.testing import AdapterConformance, ConformanceSetup

from .conftest import TOKEN, Site

ALL_STREAMS = {"portfolios", "programs", "themes", "epics", "capabilities", "features"}
WANTED = {"proposed", "approved", "in_progress", "on_hold", "done", "cancelled"}


def sync(config: Config, store: Store, pm: Any, **kwargs: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("align", **kwargs)


def items(store: Store) -> dict[str, dict[str, Any]]:
    return {row["source_id"]: row for row in store.export("work_item", source="align")}


def agile(site: Site, kind: str) -> list[Any]:
    return [w for w in site.world.work if w.platform == "jira_align" and w.kind == kind]


def gets(site: Site, resource: str) -> list[str]:
    return [q for m, q in site.app.requests if m == "GET" and f"/{resource}?" in q]


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
            source="align",
            store=open_store(config),
            pm=pm,
            expected_streams=ALL_STREAMS,
        )


def test_a_full_sync_lands_the_agile_portfolio_with_its_parent_chain(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='department_field = "customfield_70001"')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0, [(s.stream, s.status, s.message) for s in result.streams]
    landed = items(store)
    epics, features = agile(site, "epic"), agile(site, "feature")
    assert sum(1 for r in landed.values() if r["kind"] == "epic") == len(epics)
    assert sum(1 for r in landed.values() if r["kind"] == "feature") == len(features)
    assert {r["state"] for r in landed.values()} <= WANTED
    by_number = {
        r["extra"]["description"].rsplit("(", 1)[1].rstrip(")"): r
        for r in landed.values()
        if r["kind"] in ("epic", "feature")
    }
    emails = {p.id: p.upn for p in site.world.people}
    program = next(r for r in landed.values() if r["kind"] == "program")
    portfolio = next(r for r in landed.values() if r["kind"] == "portfolio")
    assert program["parent_id"] == portfolio["source_id"]
    for world_item in epics + features:
        row = by_number[world_item.number]
        expected = {"on_hold": "in_progress"} if world_item.kind == "epic" else {}
        assert row["state"] == expected.get(world_item.state, world_item.state), world_item.number
        assert row["manager"] == emails[world_item.manager_id]  # ids and user names both resolved
        assert row["department"] == (world_item.department if world_item.kind == "epic" else None)
        assert row["planned_finish"] == world_item.planned_finish.replace(microsecond=0)
        if world_item.kind == "feature":
            parent = by_number[next(e.number for e in epics if e.id == world_item.parent_id)]
            assert row["parent_id"] == parent["source_id"]
            assert row["extra"]["program_increments"][0].startswith("PI ")
        else:
            assert row["parent_id"] == program["source_id"]
            assert row["strategic_goals"] == [world_item.goals[0]]
            assert row["extra"]["program"] == program["name"]
        assert row["updated_at"] is not None  # never edited: the creation date stands in
    assert {r["state"] for r in landed.values() if r["kind"] == "epic"} & {"done", "in_progress"}


def test_pages_hold_at_most_100_and_a_short_page_ends_the_read(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='page_size = 500\nstreams = ["features"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.streams[0].read == len(agile(site, "feature"))
    listing = gets(site, "Features")
    assert listing == ["/rest/align/api/2/Features?$top=100&$skip=0"]

    config = make_config(site, extra='page_size = 5\nstreams = ["features"]')
    site.app.requests.clear()
    result = SyncEngine(config, open_store(config), pm=pm).sync("align", full=True)
    count = len(agile(site, "feature"))
    assert result.streams[0].read == count
    skips = [int(q.rsplit("$skip=", 1)[1].split("&")[0]) for q in gets(site, "Features")]
    assert skips == list(range(0, count + 1, 5))[: count // 5 + 1]


def test_an_incremental_sync_filters_by_date_rereads_the_boundary_day_and_doubles_nothing(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='page_size = 3\nstreams = ["epics", "features"]')
    store = open_store(config)
    sync(config, store, pm)
    before = store.count("work_item", source="align")
    cursor = store.get_cursor("align", "epics")
    assert cursor is not None and cursor.watermark is not None
    # The watermark less the overlap, as a date, and the day before it (time zones).
    since = cursor.watermark - timedelta(seconds=config.sources["align"].overlap_seconds)
    day = since.date() - timedelta(days=1)
    site.app.touch("Epics", 1201, title="Renamed epic")
    site.app.requests.clear()
    second = sync(config, store, pm)
    epics = {s.stream: s for s in second.streams}["epics"]
    assert epics.updated == 1 and epics.inserted == 0
    filtered = [unquote_plus(q) for q in gets(site, "Epics")]
    assert filtered and all(
        f"$filter=lastUpdatedDate ge '{day.isoformat()}'" in q for q in filtered
    )
    # The watermark's own epic is read again, and not written again; what came back from
    # before the window (the extra day) is dropped on the client.
    assert epics.read == 2 and epics.unchanged == 1
    assert epics.outside_window == sum(
        1
        for e in site.app.data["epics"]
        if e["lastUpdatedDate"]
        and day.isoformat() <= e["lastUpdatedDate"][:10]
        and mapping.parse_datetime(e["lastUpdatedDate"]) < since
    )
    assert items(store)["epic-1201"]["name"] == "Renamed epic"
    assert store.count("work_item", source="align") == before


def test_items_the_date_filter_cannot_see_are_caught_by_the_periodic_full_sweep(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='full_sweep_every_days = 7\nstreams = ["features"]')
    store = open_store(config)
    now = datetime.now(UTC)
    SyncEngine(config, store, pm=pm, clock=lambda: now).sync("align")
    # An item imported with an old creation date and never edited: no lastUpdatedDate at all.
    legacy = dict(site.app.find("features", 5400) or {})
    legacy.update(
        id=5999,
        title="Imported feature",
        lastUpdatedDate=None,
        createDate="2021-06-24T14:25:56.000Z",
    )
    site.app.data["features"].append(legacy)
    quiet = SyncEngine(config, store, pm=pm, clock=lambda: now + timedelta(days=1)).sync("align")
    assert quiet.streams[0].full is False and "feature-5999" not in items(store)
    swept = SyncEngine(config, store, pm=pm, clock=lambda: now + timedelta(days=8)).sync("align")
    assert swept.streams[0].full is True
    row = items(store)["feature-5999"]
    assert row["updated_at"] == datetime(2021, 6, 24, 14, 25, 56, tzinfo=UTC)


def test_cancelled_and_recycled_items_are_kept_with_their_flags(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site.app.touch("Features", 5401, isRecycled=True)
    site.app.touch("Features", 5402, isCanceled=True)
    config = make_config(site, extra='streams = ["features"]')
    store = open_store(config)
    sync(config, store, pm)
    landed = items(store)
    assert landed["feature-5401"]["extra"]["recycled"] is True
    cancelled = [r for r in landed.values() if r["state"] == "cancelled"]
    assert cancelled and all(r["extra"]["canceled"] is True for r in cancelled)
    assert len(landed) == len(agile(site, "feature"))


def test_throttling_waits_as_told_and_a_malformed_page_is_asked_again(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site.faults.throttle_next = 1
    site.faults.retry_after = 1
    site.faults.malformed_next = 1
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    started = time.monotonic()
    result = sync(config, store, pm)
    assert time.monotonic() - started >= 1.0
    assert result.exit_code == 0 and result.streams[0].read == len(agile(site, "epic"))


def test_an_expired_token_is_a_clear_authentication_failure(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site)
    site.app.regenerate_tokens()
    with pytest.raises(AuthError) as caught:
        sync(config, open_store(config), pm)
    message = str(caught.value)
    assert "authentication failed for source align (HTTP 401)" in message
    assert "env:JA_TOKEN" in message and "regenerates" in message
    assert TOKEN not in message


def test_basic_auth_with_an_api_token_works_for_guard_sites(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(
        site,
        auth='{ type = "basic", user = "svc_crosswalk", password = "env:JA_TOKEN" }',
        extra='streams = ["programs"]',
    )
    assert sync(config, open_store(config), pm).exit_code == 0


def test_a_refused_filter_falls_back_to_a_full_read_and_says_so_once(
    site_factory: Callable[..., Site],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = site_factory(unfilterable={"Features"})
    config = make_config(site, extra='page_size = 4\nstreams = ["features"]')
    store = open_store(config)
    sync(config, store, pm)
    site.app.touch("Features", 5402, title="Changed after the first sync")
    with caplog.at_level(logging.WARNING, logger="itcrosswalk.jira_align"):
        second = sync(config, store, pm)
    said = [r for r in caplog.records if "refused $filter" in r.getMessage()]
    assert len(said) == 1 and "Filtering is not supported" in said[0].getMessage()
    outcome = second.streams[0]
    assert outcome.status == "ok" and outcome.updated == 1 and outcome.inserted == 0
    assert outcome.pages > 1  # the whole resource was read, page by page, with one warning
    assert items(store)["feature-5402"]["name"] == "Changed after the first sync"


def test_a_parent_missing_or_recycled_is_kept_and_recorded_as_a_dangling_link(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    orphans = [f["id"] for f in site.app.data["features"] if f["parentId"] == 1200]
    recycled_children = [f["id"] for f in site.app.data["features"] if f["parentId"] == 1201]
    site.app.delete("Epics", 1200)
    site.app.touch("Epics", 1201, isRecycled=True)
    config = make_config(site)
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    landed = items(store)
    for native in orphans:
        row = landed[f"feature-{native}"]
        assert row["parent_id"] == "epic-1200"
        assert row["extra"]["dangling_parent"] == {"ref": "epic-1200", "reason": "missing"}
    for native in recycled_children:
        assert landed[f"feature-{native}"]["extra"]["dangling_parent"]["reason"] == "recycled"
    dangling = {
        (link["source_id"], link["target_ref"])
        for link in store.links_for("align")
        if link["relation"] == "dangling_parent"
    }
    assert dangling == {(f"feature-{n}", "epic-1200") for n in orphans} | {
        (f"feature-{n}", "epic-1201") for n in recycled_children
    }
    healthy = [
        r
        for r in landed.values()
        if r["kind"] == "feature" and r["parent_id"] not in ("epic-1200", "epic-1201")
    ]
    assert healthy and all("dangling_parent" not in r["extra"] for r in healthy)
    # `crosswalk status` reports them per stream.
    status = {row["stream"]: row for row in store.status() if row["source"] == "align"}
    assert status["features"]["dangling"] == len(orphans) + len(recycled_children)
    assert status["epics"]["dangling"] == 0


def test_an_incremental_sync_checks_unseen_parents_once(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["epics", "features"]')
    store = open_store(config)
    sync(config, store, pm)
    child = next(f for f in site.app.data["features"] if f["parentId"] == 1202)
    site.app.delete("Epics", 1202)
    site.app.touch("Features", child["id"], title="Still here")
    site.app.requests.clear()
    sync(config, store, pm, streams=["features"])
    row = items(store)[f"feature-{child['id']}"]
    assert row["extra"]["dangling_parent"] == {"ref": "epic-1202", "reason": "missing"}
    assert len([q for q in gets(site, "Epics") if "$select=id,isRecycled" in q]) == 1


def test_an_unknown_state_is_kept_as_unknown(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site.app.touch("Epics", 1203, state=7, health="Purple")
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.streams[0].quarantined == 0
    row = items(store)["epic-1203"]
    assert row["state"] == "unknown" and row["extra"]["native_state"] == 7
    assert row["health"] == "unknown" and row["extra"]["native_health"] == "Purple"


def test_a_malformed_record_is_quarantined_and_the_rest_land(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site.app.touch("Epics", 1204, targetCompletionDate="31/12/2026")
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 3 and result.streams[0].quarantined == 1
    (row,) = store.quarantine_rows("align", "epics")
    assert (
        row["source_id"] == "epic-1204" and row["payload"]["targetCompletionDate"] == "31/12/2026"
    )
    assert len(items(store)) == len(agile(site, "epic")) - 1


def test_an_epic_created_through_the_writer_syncs_back_as_the_same_work_item(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["epics"]\ndepartment_field = "customfield_70001"')
    store = open_store(config)
    sync(config, store, pm)
    owner = site.world.people[3]
    fields = {
        "name": "Permit portal modernization",
        "parent_id": "program-11",
        "description": "For contractors who need permits, the portal cuts the wait.",
        "strategic_goals": [site.app.data["themes"][0]["title"]],
        "manager": owner.upn.upper(),
        "department": "Water",
        "sponsor": "Deputy City Manager",
        "priority": 2,
        "phase": "initiating",
        "planned_finish": datetime(2027, 6, 30, tzinfo=UTC),
        "budget": 250000.0,
    }
    adapter = build_adapter(config, "align", pm)
    try:
        assert "work_item:epic" in adapter.capabilities().writes
        created = adapter.writers["work_item:epic"](
            fields, correlation_id="itcrosswalk:agile-epic:1"
        )
        again = adapter.writers["work_item:epic"](fields, correlation_id="itcrosswalk:agile-epic:1")
    finally:
        adapter.close()
    assert (created.action, again.action) == ("created", "exists")
    assert again.source_id == created.source_id and created.entity == "work_item"
    assert [m for m, _q in site.app.requests].count("POST") == 1
    assert [r["method"] for r in again.requests] == ["GET"]  # the lookup, and nothing else
    second = sync(config, store, pm)
    assert second.streams[0].inserted == 1
    row = items(store)[created.source_id or ""]
    assert row["url"] == created.url
    assert row["name"] == "Permit portal modernization" and row["kind"] == "epic"
    assert row["external_ref"] == "itcrosswalk:agile-epic:1"
    assert row["state"] == "proposed" and row["parent_id"] == "program-11"
    assert row["manager"] == owner.upn and row["department"] == "Water"
    assert row["strategic_goals"] == fields["strategic_goals"]
    assert row["budget"] == 250000 and row["planned_finish"] == fields["planned_finish"]
    assert "Sponsor: Deputy City Manager" in row["extra"]["description"]  # kept, not dropped
    assert "Priority: 2" in row["extra"]["description"]
    assert ("external", "work_item", "itcrosswalk:agile-epic:1") in {
        (link["relation"], link["target_entity"], link["target_ref"])
        for link in store.links_for("align")
    }


def test_a_dry_run_returns_the_exact_body_and_sends_nothing(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter = build_adapter(make_config(site), "align", pm)
    try:
        result = adapter.writers["work_item:feature"](
            {"name": "Meter read API", "parent_id": "epic-1200"},
            correlation_id="itcrosswalk:f-1",
            dry_run=True,
        )
    finally:
        adapter.close()
    assert result.action == "dry_run" and result.source_id is None
    post = result.requests[-1]
    assert post["method"] == "POST" and post["url"] == f"{site.url}/rest/align/api/2/Features"
    assert post["body"] == {
        "title": "Meter read API",
        "type": 1,
        "state": 1,
        "parentId": 1200,
        "primaryProgramId": 11,  # the parent epic's program
        "externalId": "itcrosswalk:f-1",
    }
    assert "POST" not in {m for m, _q in site.app.requests}
    assert len(site.app.data["features"]) == len(agile(site, "feature"))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "x", "colour": "red"}, "no field colour"),
        (
            {"name": "x", "parent_id": "11", "manager": "nobody@city.example.gov"},
            "matches no Jira Align user",
        ),
        (
            {"name": "x", "parent_id": "program-11", "strategic_goals": ["Moon base"]},
            "matches no strategic theme",
        ),
        ({"name": "x", "parent_id": "epic-999999"}, "an epic belongs to a program"),
        ({"name": "x"}, "no program"),
        ({"name": "x", "parent_id": "program-11", "state": "done"}, "cannot start as done"),
    ],
)
def test_fields_that_match_nothing_are_named_and_nothing_is_created(
    site: Site, make_config: Callable[..., Config], pm: Any, fields: dict[str, Any], words: str
) -> None:
    adapter = build_adapter(make_config(site), "align", pm)
    try:
        with pytest.raises(ConfigError, match=words):
            adapter.writers["work_item:epic"](fields, correlation_id="itcrosswalk:typo")
    finally:
        adapter.close()
    assert "POST" not in {m for m, _q in site.app.requests}


def test_a_create_the_site_refuses_shows_its_message_and_writes_nothing(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    sync(config, store, pm)
    before = len(site.app.data["epics"])
    adapter = build_adapter(config, "align", pm)
    try:
        with pytest.raises(PlatformError) as caught:
            adapter.writers["work_item:epic"](
                {"name": "Orphan", "parent_id": "program-999"}, correlation_id="itcrosswalk:x-9"
            )
    finally:
        adapter.close()
    message = str(caught.value)
    assert "refused to create the epic (HTTP 400)" in message
    assert "Program with id 999 does not exist" in message and "nothing was created" in message
    assert len(site.app.data["epics"]) == before
    second = sync(config, store, pm)
    assert second.streams[0].inserted == 0
    assert [m for m, _q in site.app.requests].count("POST") == 1  # the one refused


def test_items_changing_between_pages_are_neither_skipped_nor_doubled(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site.faults.mutate_between_pages = 2
    config = make_config(site, extra='page_size = 4\nstreams = ["features"]')
    store = open_store(config)
    result = sync(config, store, pm)
    count = len(agile(site, "feature"))
    assert result.streams[0].read == count  # offsets follow the id order, which edits never move
    assert store.count("work_item", source="align") == count


def test_server_errors_are_retried_and_an_outage_fails_the_stream_in_words(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    site.faults.server_errors_next = 2
    config = make_config(site, extra='streams = ["themes"]')
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    site.faults.server_errors_next = 50
    config = make_config(site, extra='streams = ["themes"]', retries=1)
    outcome = sync(config, store, pm, full=True).streams[0]
    assert outcome.status == "error" and "HTTP 503" in outcome.message
    assert "temporarily unavailable" in outcome.message


def test_the_external_id_lookup_works_where_the_site_refuses_filters(
    site_factory: Callable[..., Site], make_config: Callable[..., Config], pm: Any
) -> None:
    site = site_factory(unfilterable={"Epics"})
    adapter = build_adapter(make_config(site, extra="program_id = 11"), "align", pm)
    write = adapter.writers["work_item:epic"]
    try:
        first = write({"name": "A"}, correlation_id="itcrosswalk:a'1")
        second = write({"name": "A"}, correlation_id="itcrosswalk:a'1")
    finally:
        adapter.close()
    assert (first.action, second.action) == ("created", "exists")
    assert second.source_id == first.source_id
    assert [m for m, _q in site.app.requests].count("POST") == 1


def test_a_feature_without_dates_of_its_own_is_planned_by_its_program_increment(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    row = site.app.touch("Features", 5403, startInitiationDate=None, targetCompletionDate=None)
    increment = site.app.find("releases", row["releaseId"])
    assert increment is not None
    config = make_config(site, extra='streams = ["features"]')
    store = open_store(config)
    sync(config, store, pm)
    landed = items(store)["feature-5403"]
    assert landed["planned_start"].isoformat().startswith(increment["startDate"][:10])
    assert landed["planned_finish"].isoformat().startswith(increment["endDate"][:10])
    assert landed["extra"]["planned_from"] == "program_increment"
    assert "planned_from" not in items(store)["feature-5404"]["extra"]


def test_a_site_that_refuses_select_still_resolves_owners_and_names(
    site_factory: Callable[..., Site],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    # This site's Users and Themes DTOs lack uid and title as selectable fields.
    site = site_factory(fields={"users": ["id", "email"], "themes": ["id"]})
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    row = items(store)["epic-1200"]
    epic = site.app.find("epics", 1200) or {}
    theme = site.app.find("themes", epic["themeId"]) or {}
    owner = next(u for u in site.app.data["users"] if str(u["id"]) == epic["ownerId"])
    assert row["manager"] == owner["email"] and row["strategic_goals"] == [theme["title"]]


def test_an_edit_in_the_same_second_is_caught_by_the_content_hash(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    # Jira Align keeps no change counter: what tells two versions apart is their content.
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    sync(config, store, pm)
    site.app.touch("Epics", 1201, title="First title")
    sync(config, store, pm)
    site.faults.same_second_edits = True
    site.app.touch("Epics", 1201, title="Second title")
    again = sync(config, store, pm)
    assert items(store)["epic-1201"]["name"] == "Second title"
    assert again.streams[0].updated == 1


def test_items_filed_between_two_syncs_and_never_edited_are_read_by_the_next(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["epics", "features"]')
    store = open_store(config)
    sync(config, store, pm)
    filed = [site.app.file_unedited("Features", title=f"Imported {i}")["id"] for i in range(15)]
    site.app.requests.clear()
    second = sync(config, store, pm)
    assert not {s.stream: s for s in second.streams}["features"].full
    stored = items(store)
    missing = [i for i in filed if mapping.source_id("Features", i) not in stored]
    assert missing == [], f"{len(missing)} of 15 never-edited features missing"
    filtered = [unquote_plus(q) for q in gets(site, "Features")]
    assert filtered and all(" or createDate ge '" in q for q in filtered)
