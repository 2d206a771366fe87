"""Clarity's projects, tasks, ideas and plan lines are built without pydantic's validation
(``core.model.built``): what the mapping builds must be what validation would have built, a
custom attribute that fills a field other than text still goes through validation, and a bad
record must still be quarantined with its payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest

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
