"""Jira Align's work items are built without pydantic's validation (``core.model.built``): what
the mapping builds must be what validation would have built, and a bad item must still be
quarantined with its payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from itcrosswalk.core.config import Config
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
