"""The mapping's shortcuts (the common value types first, UTC dates without a conversion, a
custom field's property name worked out once, a task's baseline found by its id, the work item
built without validating it again) give what the general path gives, and what it refused is
still refused, so the record is quarantined."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from itcrosswalk.core.adapter import Stream
from itcrosswalk.core.config import Config
from itcrosswalk.core.model import Health, Phase, WorkState, unlike_validated
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.project_online import mapping

from ..built import mapped_as_validated
from .conftest import Instance, project_rows


def _general(value: str, zone: tzinfo) -> datetime:
    """The feed's dates read the long way, as the mapping did before its shortcuts."""
    match = re.match(r"^/Date\((-?\d+)([+-]\d{4})?\)/$", value)
    if match:
        moment = datetime(1970, 1, 1) + timedelta(milliseconds=int(match.group(1)))
        if match.group(2):
            return moment.replace(tzinfo=UTC)
        return moment.replace(tzinfo=zone).astimezone(UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


VALUES = [
    "/Date(1356998400000)/",
    "/Date(1356998400123)/",
    "/Date(-86400000)/",
    "/Date(1782892800000+0060)/",
    "/Date(1782892800000-0700)/",
    "2026-07-01T08:00:00",
    "2026-07-01T08:00:00.250",
    " 2026-07-01T08:00:00Z ",
    "2026-07-01T08:00:00+00:00",
    "2026-07-01T08:00:00-07:00",
    "2026-03-08T02:30:00",  # a wall-clock time that does not exist in New York
]
ZONES = [UTC, timezone(timedelta(hours=-7)), ZoneInfo("America/New_York"), ZoneInfo("UTC")]  # fmt: skip


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_every_date_is_the_instant_the_general_path_reads(zone: tzinfo) -> None:
    for value in VALUES:
        parsed = mapping.parse_datetime(value, zone)
        assert parsed == _general(value, zone), value
        assert parsed is not None and parsed.utcoffset() == timedelta(0), value


@pytest.mark.parametrize("value", ["/Date(abc)/", "/Date(1)", "/2026-01-01", "2026-02-30T00:00:00", 17])  # fmt: skip
def test_a_date_the_shortcuts_do_not_know_still_raises(value: Any) -> None:
    with pytest.raises(ValueError):
        mapping.parse_datetime(value, UTC)


class Count(int):
    pass


class Text(str):
    pass


def test_decimals_of_every_type_read_as_before_and_booleans_still_refused() -> None:
    assert mapping.parse_decimal("2400.000000") == 2400.0
    assert mapping.parse_decimal(" 12.5 ") == 12.5
    assert mapping.parse_decimal(3) == 3.0 and type(mapping.parse_decimal(3)) is float
    assert mapping.parse_decimal(Count(4)) == 4.0 and mapping.parse_decimal(Text("5")) == 5.0
    assert mapping.parse_decimal(None) is None and mapping.parse_decimal("") is None
    for bad in (True, False, "lots", [1], {"v": 1}):
        with pytest.raises(ValueError):
            mapping.parse_decimal(bad)


def test_a_property_name_is_the_same_however_often_it_is_asked() -> None:
    decomposed = "Anne\u0301e fiscale"  # NFD: the accent as its own character
    for _ in range(3):
        assert mapping.property_name("Strategic Goals") == "StrategicGoals"
        assert mapping.property_name(decomposed) == "Annéefiscale"
        assert mapping.property_name("City (Priority) #") == "CityPriority"


def test_a_malformed_value_in_a_row_still_fails_its_mapping() -> None:
    row = {"ProjectId": "p1", "ProjectName": "Stormwater", "ProjectModifiedDate": "2026-01-01"}
    assert mapping.map_project(row, source="pwa", base="https://x").name == "Stormwater"
    for field, bad in (
        ("ProjectStartDate", "31/12/2026"),
        ("ProjectCost", "a lot"),
        ("ProjectCost", True),
        ("ProjectModifiedDate", "/Date(soon)/"),
    ):
        with pytest.raises(ValueError):
            mapping.map_project({**row, field: bad}, source="pwa", base="https://x")


def test_each_task_finds_its_own_baseline_and_a_new_read_replaces_the_old(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter: Any = build_adapter(make_config(instance), "pwa", pm)
    try:
        rows = [
            {"ProjectId": "p1", "TaskId": f"t{n}", "TaskBaselineCost": float(n)} for n in range(300)
        ]
        rows.append({"ProjectId": "p1", "TaskId": "t7", "TaskBaselineCost": -1.0})  # a duplicate
        adapter._related["TaskBaselines"]["p1"] = rows
        for n in range(300):
            assert adapter.related_row("TaskBaselines", "p1", f"t{n}") == {"TaskBaselineCost": n}
        assert adapter.related_row("TaskBaselines", "p1", "t300") == {}
        assert adapter.related_row("TaskBaselines", "p2", "t1") == {}
        # The first row of a task wins, as a scan in the feed's order found it.
        assert adapter.related_row("TaskBaselines", "p1", "t7") == {"TaskBaselineCost": 7.0}
        # The rows of the next page's read replace the project's: its index follows them.
        adapter._related["TaskBaselines"]["p1"] = [
            {"ProjectId": "p1", "TaskId": "t1", "TaskBaselineCost": 99.0}
        ]
        assert adapter.related_row("TaskBaselines", "p1", "t1") == {"TaskBaselineCost": 99.0}
        assert adapter.related_row("TaskBaselines", "p1", "t2") == {}
    finally:
        adapter.close()


@pytest.mark.parametrize("fmt", ["light", "verbose"])
def test_every_mapped_project_and_task_is_the_work_item_validation_would_build(
    instance: Instance, make_config: Callable[..., Config], pm: Any, fmt: str
) -> None:
    seen = mapped_as_validated(
        build_adapter(make_config(instance, fmt=fmt), "pwa", pm), ("Projects", "Tasks")
    )
    assert seen["Projects"] == len(project_rows(instance.world)) and seen["Tasks"] > 0


def test_the_tables_hold_only_the_enumerations_values() -> None:
    for table, kind in ((mapping.WORK_STATES, WorkState), (mapping.PHASES, Phase), (mapping.HEALTH, Health)):  # fmt: skip
        assert set(table.values()) <= {member.value for member in kind}


def test_bad_values_are_still_caught_and_each_bad_row_quarantined_with_its_payload(
    instance_factory: Callable[..., Instance],
    small_world: Any,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance = instance_factory(world=small_world)
    rows = instance.app.sets["Projects"]
    bad = {
        rows[0]["ProjectId"]: ("ProjectStartDate", "31/12/2026"),
        rows[1]["ProjectId"]: ("ProjectCost", "a lot"),
        rows[2]["ProjectId"]: ("ProjectPercentCompleted", True),
        rows[3]["ProjectId"]: ("ProjectModifiedDate", 20260101),
    }
    render = instance.app._render

    def served(set_name: str, row: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        out = render(set_name, row, *args, **kwargs)
        if set_name == "Projects" and row["ProjectId"] in bad:
            field, value = bad[row["ProjectId"]]
            out[field] = value  # what a server (or a proxy) that garbles a value sends
        return out

    monkeypatch.setattr(instance.app, "_render", served)
    config = make_config(instance, extra='streams = ["Projects"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("pwa")
    assert result.streams[0].quarantined == len(bad) and result.exit_code == 3
    quarantined = {r["source_id"]: r for r in store.quarantine_rows("pwa", "Projects")}
    assert set(quarantined) == set(bad)
    for ident, (field, value) in bad.items():
        assert quarantined[ident]["payload"][field] == value
        assert quarantined[ident]["error"].startswith("ValueError")
    assert store.count("work_item", source="pwa") == len(project_rows(small_world)) - len(bad)


@pytest.mark.parametrize(
    "zone", [*ZONES, ZoneInfo("Etc/UTC"), ZoneInfo("America/Phoenix")], ids=str
)
def test_milliseconds_read_in_slices_are_the_instant_the_pattern_reads(zone: tzinfo) -> None:
    rng = random.Random(23)
    ticks = [0, 1, -1, 999, -999, 1000, -1001, -62135596800000, 253402300799000 - 86400000]
    ticks += [rng.randrange(-2_000_000_000_000, 4_000_000_000_000) for _ in range(400)]
    for ms in ticks:
        value = f"/Date({ms})/"
        parsed = mapping.parse_datetime(value, zone)
        assert parsed == _general(value, zone), value
        assert parsed is not None and parsed.tzinfo is UTC, value
    # Only the plain form is read in slices; the rest goes the pattern's way, or raises.
    assert mapping.parse_datetime("/Date(1356998400000)/\n", UTC) == datetime(2013, 1, 1, tzinfo=UTC)  # fmt: skip
    for bad in ("/Date(--5)/", "/Date(+5)/", "/Date( 5)/", "/Date()/", "/Date(-)/", "/Date(1.5)/"):
        with pytest.raises(ValueError):
            mapping.parse_datetime(bad, zone)


def test_a_utc_zone_by_another_name_reads_as_utc_and_others_still_convert() -> None:
    for key in ("UTC", "Etc/UTC", "Zulu"):
        assert ZoneInfo(key) in mapping._UTC_ZONES
    assert ZoneInfo("America/Phoenix") not in mapping._UTC_ZONES
    wall = "/Date(1782892800000)/"  # 2026-07-01 08:00 on the server's clock
    assert mapping.parse_datetime(wall, ZoneInfo("Etc/UTC")) == datetime(2026, 7, 1, 8, tzinfo=UTC)  # fmt: skip
    assert mapping.parse_datetime(wall, ZoneInfo("America/Phoenix")) == datetime(2026, 7, 1, 15, tzinfo=UTC)  # fmt: skip


def _keep_rest_general(raw: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """What ``_keep_rest`` kept before its shortcuts."""
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or value == "" or key in used or key in mapping._META:
            continue
        if key.startswith(("__", "odata.")):
            continue
        if isinstance(value, Mapping) and "__deferred" in value:
            continue
        extra.setdefault(key, value)
    return extra


class Row(dict):  # type: ignore[type-arg]
    pass


def test_the_rest_of_a_row_is_kept_as_before() -> None:
    raw: dict[str, Any] = {
        "__metadata": {"uri": "x"}, "odata.etag": "W/1", "__count": 3, "Used": "u", "Empty": "",
        "Blank": Text(""), "Word": Text("w"), "Null": None, "Zero": 0, "No": False, "Obj": {},
        "Nav": {"__deferred": {"uri": "y"}}, "NavToo": Row(__deferred={"uri": "z"}), "Kept": Row(a=1),
        "List": [], "Half": 0.5, "Année": "FY27",
    }  # fmt: skip
    extra: dict[str, Any] = {"Zero": "named first"}
    mapping._keep_rest(raw, frozenset({"Used"}), extra)
    general = _keep_rest_general(raw, {"Used"})
    assert extra == {**general, "Zero": "named first"}
    assert set(extra) == {"Word", "Zero", "No", "Obj", "Kept", "List", "Half", "Année"}


def test_a_row_s_repeated_dates_are_each_read_and_different_ones_kept_apart() -> None:
    row = {
        "ProjectId": "p1", "ProjectName": "Stormwater", "ProjectStartDate": "/Date(1782892800000)/",
        "ProjectBaselineStartDate": "/Date(1782892800000)/", "ProjectFinishDate": "/Date(1790000000000)/",
        "ProjectBaselineFinishDate": "/Date(1790000000123)/", "ProjectModifiedDate": "2026-07-01T08:00:00",
        "ProjectCreatedDate": "/Date(1782892800000)/",
    }  # fmt: skip
    item = mapping.map_project(
        row, source="pwa", base="https://x", zone=ZoneInfo("America/Phoenix")
    )
    for field, prop in (("planned_start", "ProjectStartDate"), ("baseline_start", "ProjectBaselineStartDate"),
                        ("planned_finish", "ProjectFinishDate"), ("baseline_finish", "ProjectBaselineFinishDate"),
                        ("updated_at", "ProjectModifiedDate"), ("created_at", "ProjectCreatedDate")):  # fmt: skip
        assert getattr(item, field) == _general(row[prop], ZoneInfo("America/Phoenix")), field
    assert item.baseline_finish != item.planned_finish
    with pytest.raises(ValueError):  # a repeated bad date still fails its row
        mapping.map_project({**row, "ProjectBaselineStartDate": 17}, source="pwa", base="https://x")


def test_a_record_id_is_the_one_the_general_path_gives(
    instance: Instance, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter: Any = build_adapter(make_config(instance), "pwa", pm)
    try:
        for stream in adapter.streams()[:3]:
            for value in ("6f1c-guid", Text("t"), "", None, 12, {"value": "v"}, " spaced "):
                raw = {stream.key: value}
                assert stream.record_id(raw) == Stream.record_id(stream, raw), (stream.name, value)
    finally:
        adapter.close()


def _team_general(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``summarize_team`` gave before its shortcuts."""
    team: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = mapping.text(row.get("ResourceId")) or mapping.text(row.get("ResourceName")) or "?"
        member = team.setdefault(
            key, {"resource": mapping.text(row.get("ResourceName")), "work_hours": 0.0, "cost": 0.0}
        )
        member["work_hours"] += mapping.parse_decimal(row.get("AssignmentWork")) or 0.0
        member["cost"] += mapping.parse_decimal(row.get("AssignmentCost")) or 0.0
    return sorted(team.values(), key=lambda m: str(m["resource"]))


def test_a_team_sums_as_before_whatever_its_values_are() -> None:
    rows: list[dict[str, Any]] = [
        {"ResourceId": "r1", "ResourceName": " Dana ", "AssignmentWork": "8.500000", "AssignmentCost": "100.000000"},
        {"ResourceId": " r1 ", "ResourceName": "Dana Later", "AssignmentWork": 4, "AssignmentCost": -0.0},
        {"ResourceId": "", "ResourceName": "Lee", "AssignmentWork": "", "AssignmentCost": None},
        {"ResourceId": None, "ResourceName": None, "AssignmentWork": " 2 ", "AssignmentCost": "-0.0"},
        {"ResourceId": 7, "ResourceName": Text("Ng"), "AssignmentWork": 1.25, "AssignmentCost": Text("3")},
        {"ResourceName": "   ", "AssignmentWork": "1e3"},
    ]  # fmt: skip
    assert mapping.summarize_team(rows) == _team_general(rows)
    dana = next(m for m in mapping.summarize_team(rows) if m["resource"] == "Dana")
    assert dana == {"resource": "Dana", "work_hours": 12.5, "cost": 100.0}
    with pytest.raises(ValueError):
        mapping.summarize_team([{"ResourceId": "r", "AssignmentWork": "lots"}])


def test_a_task_without_custom_fields_holds_unknown_as_text() -> None:
    row = {"ProjectId": "p1", "TaskId": "t1", "TaskName": "Design", "TaskOutlineLevel": 2}
    item = mapping.map_task(row, source="pwa", base="https://x")
    for name in ("state", "phase", "health"):
        value = getattr(item, name)
        assert value == "unknown" and type(value) is str, name
    assert unlike_validated(item) == []
