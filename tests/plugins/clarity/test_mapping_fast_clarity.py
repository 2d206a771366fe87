"""Clarity's projects, tasks, ideas and plan lines are built without pydantic's validation
(``core.model.built``): what the mapping builds must be what validation would have built, a
custom attribute that fills a field other than text still goes through validation, and a bad
record must still be quarantined with its payload, the read going on."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from itcrosswalk.core.adapter import Window, paginate
from itcrosswalk.core.config import Config
from itcrosswalk.core.model import unlike_validated
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.clarity import mapping

from ..built import mapped_as_validated
from .conftest import Tenant

BUILT = {"projects", "tasks", "ideas", "costPlans", "benefitPlans"}


def test_every_mapped_record_is_the_model_validation_would_build(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    seen = mapped_as_validated(build_adapter(make_config(tenant), "ppm", pm), BUILT)
    assert set(seen) == BUILT


PROJECT = {
    "_internalId": 5000001,
    "code": "PRJ-1",
    "name": "Stormwater",
    "status": {"id": "1"},
    "progress": {"id": "1"},
    "priority": 12,
    "percentComplete": 0.25,
    "scheduleStart": "2026-01-05T08:00:00",
    "lastUpdatedDate": "2026-02-01T10:00:00",
    "c_department": "Public Works",
    "c_score": "7.5",
}


def _project(custom: dict[str, str], **changes: Any) -> Any:
    return mapping.map_project(
        {**PROJECT, **changes}, source="ppm", base="https://ppm", zone=UTC, labels={},
        emails={}, custom_fields=custom,
    )  # fmt: skip


def test_a_custom_attribute_filling_a_field_other_than_text_is_validated() -> None:
    built = _project({"department": "c_department"})
    assert built.department == "Public Works" and unlike_validated(built) == []
    scored = _project({"department": "c_department", "score": "c_score"})
    assert scored.score == 7.5 and type(scored.score) is float  # validation converted the text
    with pytest.raises(ValueError):  # and refuses text that is no number, or no name
        _project({"score": "c_score"}, c_score="high")
    with pytest.raises(ValueError):
        _project({"name": "c_name"}, c_name=None)


@pytest.mark.parametrize(
    "changes",
    [
        {"code": 1234},
        {"code": {"x": 1}},
        {"percentComplete": "most"},
        {"scheduleStart": "31/12/2026"},
        {"budgetCostTotal": "lots"},
        {"priority": "high"},
    ],  # fmt: skip
)
def test_a_malformed_project_raises_so_the_engine_quarantines_it(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        _project({}, **changes)


def test_bad_values_are_still_caught_and_each_bad_record_quarantined_with_its_payload(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    projects = sorted(r["_internalId"] for r in tenant.app.data["projects"])
    bad = dict(zip(projects, ({"code": 1234}, {"percentComplete": "most"}, {"scheduleStart": "31/12/2026"}), strict=False))  # fmt: skip
    for native, change in bad.items():
        tenant.app.touch("projects", native, **change)
    config = make_config(tenant, extra='streams = ["projects"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("ppm")
    assert result.exit_code == 3
    quarantined = {r["source_id"]: r for r in store.quarantine_rows("ppm", "projects")}
    assert set(quarantined) == {mapping.source_id("project", n) for n in bad}
    for native, change in bad.items():
        row = quarantined[mapping.source_id("project", native)]
        ((field, value),) = change.items()
        assert row["payload"][field] == value
        assert row["error"].startswith("ValueError")
    (read,) = result.streams
    assert read.quarantined == len(bad)
    assert store.count("work_item", source="ppm") == read.read - len(bad) > 0


def _reference_local(value: Any, zone: Any) -> Any:
    """What ``parse_local`` made before its fast path: the local moment, then UTC."""
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


class _NoOffset(tzinfo):
    """A zone that knows no offset: an aware moment in it is read as the machine's time."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


@pytest.mark.parametrize(
    "zone",
    [
        ZoneInfo("America/Chicago"),
        ZoneInfo("Europe/Paris"),
        ZoneInfo("Australia/Lord_Howe"),
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
    ],
    ids=str,
)
def test_local_times_convert_as_the_local_moment_would_through_every_transition(zone: Any) -> None:
    start = datetime(2026, 1, 1)
    for quarter in range(366 * 24 * 4):
        text = (start + timedelta(minutes=15 * quarter)).isoformat()
        mine, reference = mapping.parse_local(text, zone), _reference_local(text, zone)
        assert mine == reference and mine.tzinfo is reference.tzinfo is UTC, text
        assert mine.fold == reference.fold == 0
    for text in ("2026-03-08T02:30:00", " 2026-11-01T01:30:00 ", "2026-06-01T12:00:00Z", "2026-06-01T12:00:00.5+02:00", "2026-06-01"):  # fmt: skip
        assert mapping.parse_local(text, zone) == _reference_local(text, zone), text
    for bad in ("31/12/2026", "2026-13-01T00:00:00", 20260101, "0001-01-01T00:00:00"):
        try:
            expected: Any = _reference_local(bad, zone)
        except (ValueError, OverflowError) as exc:
            with pytest.raises(type(exc)):
                mapping.parse_local(bad, zone)
        else:
            assert mapping.parse_local(bad, zone) == expected


def test_a_zone_without_an_offset_takes_the_local_moments_path() -> None:
    zone = _NoOffset()
    assert mapping.parse_local("2026-06-01T12:00:00", zone) == _reference_local("2026-06-01T12:00:00", zone)  # fmt: skip


def test_lookups_that_are_mappings_but_not_dicts_are_still_read_as_lookups() -> None:
    lookup = MappingProxyType({"id": 3, "displayValue": "Approved"})
    assert mapping.lookup_id(lookup) == "3" and mapping.lookup_label(lookup) == "Approved"
    assert mapping.parse_money(MappingProxyType({"amount": "12.50"})) == 12.5
    assert mapping.lookup_id("3") == "3" and mapping.lookup_id(None) is None


def test_a_projects_team_comes_from_its_page_and_the_record_it_came_in_stays_as_sent(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter = build_adapter(make_config(tenant, extra='streams = ["projects"]'), "ppm", pm)
    try:
        (stream,) = [s for s in adapter.streams() if s.name == "projects"]
        (page, _used, _after), *_ = paginate(stream, Window(None, None, True))
        raws = page.records
        sent = copy.deepcopy(raws)
        stream.prepare(raws)
        assert raws == sent  # nothing added to the records, so their version is the platform's
        for raw in raws:
            team = adapter.team_of(int(str(raw["_internalId"])))
            assert stream.map(raw).extra["team"] == team
        assert any(stream.map(raw).extra["team"] for raw in raws)
        # A record the page did not prepare has no team, as one without its request had none.
        other = {**raws[0], "_internalId": 999999999}
        assert "team" not in stream.map(other).extra
    finally:
        adapter.close()
