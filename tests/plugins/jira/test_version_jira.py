"""An issue's version is the hash of its content (its pickle bytes in fast mode, 60% of the
cost of the core's marshal hash, which is a third of sorted JSON's): it must still change with
any change of content, stay the same for the same content read again (whatever objects it
shares), and let an edit that keeps the update time land."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from itcrosswalk.core.adapter import Window, content_hash, paginate, sorted_json_hash
from itcrosswalk.core.config import Config
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.jira.adapter import issue_version

from ...core import test_content_hash as battery
from .conftest import Site


def _issues(site: Site, make_config: Callable[..., Config], pm: Any, stream: str) -> list[Any]:
    adapter = build_adapter(make_config(site), "jsm", pm)
    try:
        (found,) = [s for s in adapter.streams() if s.name == stream]
        raws = [raw for page, _u, _a in paginate(found, Window(None, None, True)) for raw in page.records]  # fmt: skip
        assert all(found.version(raw) == issue_version(raw) for raw in raws)
        return raws
    finally:
        adapter.close()


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _with(raw: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(raw))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def _other(value: Any) -> list[Any]:
    """Values a leaf could change to, including those of equal text or equal number."""
    if isinstance(value, bool):
        return [not value, int(value)]
    if isinstance(value, int):
        return [value + 1, str(value), float(value)]
    if isinstance(value, float):
        return [value + 0.5, int(value) if value.is_integer() else str(value)]
    if value is None:
        return ["", 0, False]
    return [f"{value}x", "" if value else None]


def test_any_change_of_an_issue_or_sla_row_changes_its_version(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    for stream in ("requests", "slas", "epics"):
        raws = _issues(site, make_config, pm, stream)[:4]
        assert raws, stream
        for raw in raws:
            version = issue_version(raw)
            assert version.startswith("p5:")
            # The same content decoded again (the next sync's read) is the same version.
            assert issue_version(json.loads(json.dumps(raw))) == version
            for path in _leaves(raw):
                current = raw
                for step in path:
                    current = current[step]
                for changed in _other(current):
                    assert issue_version(_with(raw, path, changed)) != version, (path, changed)
            renamed = dict(raw)
            renamed["renamed"] = renamed.pop("key", None)
            assert issue_version(renamed) != version
            reordered = dict(reversed(raw.items()))
            assert issue_version(reordered) != version  # as the core's: keys in the order sent


def test_the_same_content_is_the_same_version_whatever_objects_it_shares() -> None:
    # A memo would write a repeated object as a reference to the first: equal content, other
    # bytes. Fast mode keeps none.
    user = {"accountId": "1", "emailAddress": "a@x.example", "active": True}
    shared = {"id": "1", "fields": {"assignee": user, "reporter": user, "labels": []}}
    copied = json.loads(json.dumps(shared))
    assert copied["fields"]["assignee"] is not copied["fields"]["reporter"]
    assert issue_version(shared) == issue_version(copied)
    key = "".join(["cust", "omfield_1"])  # equal text, another object
    assert issue_version({"fields": {key: 1, "x": key}}) == issue_version(
        {"fields": {"customfield_1": 1, "x": "customfield_1"}}
    )


def test_a_record_pickle_cannot_write_gets_the_cores_hash() -> None:
    odd = {"id": "1", "fields": {"updated": lambda: None}}
    assert issue_version(odd) == content_hash(odd)
    cyclic: dict[str, Any] = {"id": "1"}
    cyclic["self"] = cyclic  # what no decoded body holds: refused as the core's hash refuses it
    with pytest.raises(ValueError):
        content_hash(cyclic)
    with pytest.raises(ValueError):
        issue_version(cyclic)


def test_a_value_marshal_cannot_write_falls_back_to_the_sorted_json_hash() -> None:
    raw = {"id": "1", "fields": {"updated": datetime(2026, 1, 2, tzinfo=UTC)}}
    assert content_hash(raw) == sorted_json_hash(raw)


def test_an_edit_within_the_stored_update_time_still_lands(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(site, extra='streams = ["requests"]\noverlap_seconds = 120')
    store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("jsm")
    # The latest issue: the overlap window reads it again, with the update time stored.
    key = max(site.app.keys, key=lambda k: site.app.issues[site.app.keys[k]].updated)
    issue = site.app.issues[site.app.keys[key]]
    site.app.touch(key, updated=issue.updated, summary="edited within the same millisecond")
    (second,) = SyncEngine(config, store, pm=pm).sync("jsm").streams
    assert second.updated == 1 and second.inserted == 0
    stored = {r["source_id"]: r for r in store.export("ticket", source="jsm")}
    assert stored[str(site.app.keys[key])]["title"] == "edited within the same millisecond"
    (third,) = SyncEngine(config, store, pm=pm).sync("jsm").streams
    assert third.updated == 0 and third.unchanged >= 1


@pytest.mark.parametrize(
    "check",
    [
        "test_equal_content_gives_an_equal_hash",
        "test_every_change_of_a_leaf_or_of_its_type_changes_the_hash",
        "test_a_renamed_added_or_removed_key_changes_the_hash",
        "test_a_value_moved_between_keys_or_list_places_changes_the_hash",
        "test_a_key_reorder_may_change_the_hash_once_but_never_hides_a_change",
    ],
)
def test_the_core_hashs_checks_hold_for_the_issue_version(check: str, monkeypatch: Any) -> None:
    # The prefix is the one thing told apart: the core's checks name their scheme.
    monkeypatch.setattr(battery, "content_hash", lambda raw: "m2:" + issue_version(raw)[3:])
    getattr(battery, check)()
