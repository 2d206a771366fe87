"""Knowledge, root cause and assets end to end: PySNC against the HTTPS emulator, into the store.

The emulator's traps: article versions share a number and carry their counts over, blocks sit
in kb_knowledge, a legacy instance has problem states 1-4 and no RCA columns, and asset codes
are whatever the instance's sys_choice says."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.sandbox.world import World, generate

from .conftest import Instance


@pytest.fixture(scope="module")
def city() -> World:
    return generate(7, "tiny")


def _sync(config: Config, store: Store, pm: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("snow")


def test_articles_uses_feedback_links_and_assets_land(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    city: World,
) -> None:
    kw = city.knowledge
    config = make_config(instance_factory(world=city))
    store = open_store(config)
    result = _sync(config, store, pm)
    assert result.outcome == "ok", result
    articles = list(store.export("knowledge_article", source="snow"))
    versions = sum(len(a.versions) for a in kw.articles)
    assert len(articles) == versions, "every version, and no reusable block"
    latest = [a for a in articles if a["latest"]]
    assert len(latest) == len(kw.articles) == len({a["number"] for a in articles})
    by_id = {a["source_id"]: a for a in articles}
    for article in kw.articles:
        row = by_id[article.latest.id]
        assert row["state"] == article.latest.state
        assert row["view_count"] == article.latest.view_count
        assert row["view_count_kind"] == "rolling_30d"
        assert row["valid_to"] == article.latest.valid_to
    assert len(list(store.export("knowledge_use", source="snow"))) == len(kw.uses)
    assert len(list(store.export("knowledge_feedback", source="snow"))) == len(kw.feedback)
    assert len(list(store.export("knowledge_link", source="snow"))) == len(kw.links)
    assets = list(store.export("asset", source="snow"))
    assert len(assets) == len(kw.assets)
    for row in assets:
        life = kw.assets[row["ci_id"]]
        assert row["state"] == life.state.lower().replace(" ", "_")
        assert row["model_category"] == life.model_category
        assert row["planned_retirement"] == life.planned_retirement
    problems = [t for t in list(store.export("ticket", source="snow")) if t["kind"] == "problem"]
    assert problems and all(p["problem_state_model"] == "madrid" for p in problems)
    for p in problems:
        root = kw.root_causes[p["source_id"]]
        assert p["known_error"] is root.known_error
        assert p["related_incidents"] == len(root.incidents)
        assert "<" not in (p["cause_notes"] or ""), "HTML reduced to text"
        assert (p["cause_notes"] == "") == (root.cause in ("", "<p></p>", "<p>&nbsp;</p>"))
    incidents = {
        t["source_id"]: t
        for t in list(store.export("ticket", source="snow"))
        if t["kind"] == "incident"
    }
    for incident_id, problem_id in kw.incident_problem.items():
        if incident_id in incidents:
            assert incidents[incident_id]["problem_id"] == problem_id


def test_a_legacy_instance_and_renumbered_asset_codes_are_read_from_sys_choice(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    city: World,
) -> None:
    legacy = copy.deepcopy(city)
    legacy.knowledge.problem_model = "legacy"
    # Codes no out-of-box instance uses: a mapping that assumed 1 = In use would be wrong.
    legacy.knowledge.asset_codes = {
        label: str(100 + i) for i, label in enumerate(legacy.knowledge.asset_codes)
    }
    config = make_config(instance_factory(world=legacy))
    store = open_store(config)
    assert _sync(config, store, pm).outcome == "ok"
    problems = [t for t in list(store.export("ticket", source="snow")) if t["kind"] == "problem"]
    assert problems and all(p["problem_state_model"] == "legacy" for p in problems)
    assert all(p["cause_notes"] is None and p["fix_notes"] is None for p in problems), (
        "a legacy instance has no RCA columns: not recorded, not empty"
    )
    assert all(p["state"] != "unknown" for p in problems)
    for p in problems:
        root = legacy.knowledge.root_causes[p["source_id"]]
        if p["state"] != "closed":
            assert p["known_error"] is root.known_error, "state 2 is the legacy known error"
    assets = list(store.export("asset", source="snow"))
    for row in assets:
        life = legacy.knowledge.assets[row["ci_id"]]
        assert row["state"] == life.state.lower().replace(" ", "_")
        assert row["state_code"] == legacy.knowledge.asset_codes[life.state]


def test_a_bad_row_is_quarantined_by_name_and_the_rest_land(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    city: World,
) -> None:
    instance = instance_factory(world=city)
    app = instance.app
    # A view-log row that names no article, and an asset whose purchase date is not a date.
    app.insert("kb_use", {"article": "", "user": "", "viewed": "true"})
    bad_asset = app.tables["alm_hardware"][0]["sys_id"]
    app.touch("alm_hardware", bad_asset, purchase_date="last spring")
    config = make_config(instance)
    store = open_store(config)
    result = _sync(config, store, pm)
    quarantined = {(q["stream"], q["source_id"]): q["error"] for q in store.quarantine_rows("snow")}
    assert any(
        stream == "kb_use" and "names no article" in error
        for (stream, _), error in quarantined.items()
    )
    assert ("alm_hardware", bad_asset) in quarantined
    assert len(list(store.export("asset", source="snow"))) == len(city.knowledge.assets) - 1
    assert len(list(store.export("knowledge_use", source="snow"))) == len(city.knowledge.uses)
    assert result.exit_code == 3, "quarantined records are reported, not lost"


def test_no_access_to_sys_choice_falls_back_to_labels_and_says_so(
    instance_factory: Callable[..., Instance],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    city: World,
) -> None:
    config = make_config(instance_factory(world=city, forbidden_tables={"sys_choice"}))
    store = open_store(config)
    _sync(config, store, pm)
    assets = list(store.export("asset", source="snow"))
    assert assets and all(a["state"] != "unknown" for a in assets)
    assert all("display label" in a["extra"]["state_from"] for a in assets)
    problems = [t for t in store.export("ticket", source="snow") if t["kind"] == "problem"]
    assert all(p["problem_state_model"] == "madrid" for p in problems)
    assert all("sys_choice" in p["extra"]["state_model_from"] for p in problems)
