"""Jira Align's work items are built without pydantic's validation (``core.model.built``): what
the mapping builds must be what validation would have built, and a bad item must still be
quarantined with its payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from itcrosswalk.core.adapter import Stream
from itcrosswalk.core.config import Config
from itcrosswalk.core.model import Health, Phase, WorkItemKind, WorkState
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.jira_align import mapping

from ..built import mapped_as_validated
from .conftest import Site


def test_every_mapped_item_is_the_work_item_validation_would_build(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    seen = mapped_as_validated(build_adapter(make_config(site), "align", pm))
    assert {"portfolios", "programs", "themes", "epics", "features"} <= set(seen)


def test_bad_values_are_still_caught_and_each_bad_item_quarantined_with_its_payload(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    bad = {
        1201: {"targetCompletionDate": "31/12/2026"},
        1202: {"createDate": 20240528},
        1203: {"budget": "n/a"},
        1204: {"score": "high"},
        1205: {"spendToDate": "NaN"},
    }
    for native, change in bad.items():
        site.app.touch("Epics", native, **change)
    config = make_config(site, extra='streams = ["epics"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("align")
    assert result.exit_code == 3 and result.streams[0].quarantined == len(bad)
    quarantined = {r["source_id"]: r for r in store.quarantine_rows("align", "epics")}
    assert set(quarantined) == {mapping.source_id("Epics", n) for n in bad}
    for native, change in bad.items():
        row = quarantined[mapping.source_id("Epics", native)]
        ((field, value),) = change.items()
        assert row["payload"][field] == value
        assert row["error"].startswith("ValueError")
    epics = [w for w in site.world.work if w.platform == "jira_align" and w.kind == "epic"]
    stored = list(store.export("work_item", source="align"))
    assert len(stored) == len(epics) - len(bad)


def _extra_general(raw: dict[str, Any]) -> dict[str, Any]:
    """What ``mapping._extra`` kept before its shortcuts (the same comparisons, in full)."""
    out: dict[str, Any] = {}
    for key, item in raw.items():
        if key in mapping._USED or item is None or item == [] or item == "":
            continue
        if key == "customFields" and isinstance(item, list):
            fields = {
                k: v
                for entry in item
                if isinstance(entry, dict)
                for k, v in entry.items()
                if v not in (None, "")
            }
            if fields:
                out["customFields"] = fields
            continue
        out[key] = item
    return out


def test_extra_keeps_every_falsy_value_but_the_empty_ones() -> None:
    raw = {
        "id": 7, "title": "t", "zero": 0, "off": False, "none": None, "empty": "", "nothing": [],
        "blank": {}, "fraction": 0.0, "list": [0], "text": "x", "tags": None,
        "customFields": [{"customfield_1": None}, {"customfield_2": 0}, {"customfield_3": ""}],
    }  # fmt: skip
    kept = mapping._extra(raw)
    assert kept == _extra_general(raw)
    assert {"zero", "off", "blank", "fraction", "list", "text"} <= set(kept)
    assert kept["customFields"] == {"customfield_2": 0}
    assert not {"none", "empty", "nothing", "tags", "id", "title"} & set(kept)


def test_dates_read_as_the_general_path_reads_them_and_bad_ones_still_raise() -> None:
    for value in (
        "2024-06-06T19:25:10.517Z",
        "2024-06-06T19:25:10Z",
        "2024-06-06T19:25:10+00:00",
        "2024-06-06T21:25:10.5+02:00",
        "2024-06-06T19:25:10",
        "2024-06-06",
    ):
        general = datetime.fromisoformat(value.replace("Z", "+00:00"))
        general = general.replace(tzinfo=UTC) if general.tzinfo is None else general.astimezone(UTC)
        parsed = mapping.parse_datetime(value)
        assert parsed == general and parsed is not None and parsed.tzinfo is UTC, value
    assert mapping.parse_datetime(None) is None and mapping.parse_datetime("") is None
    for bad in ("31/12/2026", 20240528, 1.5, True, ["2024-06-06"]):
        with pytest.raises(ValueError):
            mapping.parse_datetime(bad)


def test_an_enumeration_value_the_model_lacks_still_raises_value_error() -> None:
    assert mapping._value(WorkState, "done") == "done" and type(mapping._value(WorkState, "done")) is str  # fmt: skip
    assert mapping._value(WorkState, WorkState.DONE) == "done"
    for enum, value in ((WorkState, "finished"), (Phase, "done"), (Health, "purple"), (WorkItemKind, "story")):  # fmt: skip
        with pytest.raises(ValueError):
            mapping._value(enum, value)


def test_a_record_id_is_the_one_the_general_path_gives(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    adapter: Any = build_adapter(make_config(site), "align", pm)
    try:
        for stream in adapter.streams():
            for value in (1200, "1200", 1200.0, True, None, "", "x", {"value": 3}, -4):
                general = Stream.record_id(stream, {"id": value})
                assert stream.record_id({"id": value}) == general, (stream.name, value)
        assert adapter.streams()[3].record_id({"id": 1200}) == "epic-1200"
    finally:
        adapter.close()
