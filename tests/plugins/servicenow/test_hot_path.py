"""The per-record hooks the ServiceNow streams take in place of the base class's (for speed)
answer as the base class's do, for every shape a Table API value comes in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from itcrosswalk.core.adapter import Stream
from itcrosswalk.core.config import Config
from itcrosswalk.core.sync import build_adapter
from itcrosswalk.plugins.servicenow import mapping

from .conftest import Instance

RAWS: list[dict[str, Any]] = [
    {"sys_id": {"value": "abc", "display_value": "abc"}},
    {"sys_id": "abc"},
    {"sys_id": {"value": "", "display_value": ""}},
    {"sys_id": {"value": None, "display_value": "x"}},
    {"sys_id": {"display_value": "only shown"}},
    {"sys_id": ""},
    {"sys_id": None},
    {"sys_id": 42},
    {},
]


@pytest.fixture
def incidents(instance: Instance, make_config: Callable[..., Config], pm: Any) -> Any:
    adapter = build_adapter(make_config(instance), "snow", pm)
    yield next(s for s in adapter.streams() if s.name == "incident")
    adapter.close()


@pytest.mark.parametrize("raw", RAWS, ids=repr)
def test_a_record_id_is_the_one_the_base_class_reads(incidents: Any, raw: dict[str, Any]) -> None:
    assert incidents.record_id(raw) == Stream.record_id(incidents, raw)


def test_a_mapped_record_is_the_mapping_s_own_and_a_device_link_read_in_either_shape(
    incidents: Any,
) -> None:
    raw = {
        "sys_id": {"value": "a" * 32, "display_value": "a" * 32},
        "sys_updated_on": {"value": "2026-01-02 03:04:05", "display_value": "x"},
        "state": {"value": "2", "display_value": "In Progress"},
        "cmdb_ci": {"value": "c" * 32, "display_value": "PC-1"},
    }
    adapter = incidents.adapter
    expected = mapping.map_ticket(
        raw, source=adapter.source.name, table="incident", base=adapter.base
    )
    for _ in range(2):  # the mapper is bound once, on the first record
        record = incidents.map(raw)
        assert record == expected
    record.extra["cmdb_ci"] = {"value": "c" * 32, "display_value": "PC-1"}
    assert incidents.links(record) == [("concerns", "device", "c" * 32)]
    for ci in ("d" * 32, None, ""):
        record.extra["cmdb_ci"] = ci
        assert incidents.links(record) == ([("concerns", "device", ci)] if ci else [])
    del record.extra["cmdb_ci"]
    assert incidents.links(record) == []
