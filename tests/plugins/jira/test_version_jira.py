"""An issue's version is the core's content hash (of its pickle bytes, not its sorted JSON: a
quarter of the cost): it must still change with any change of content, stay the same for the
same content read again, and let an edit that keeps the update time land."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from itcrosswalk.core.adapter import Window, content_hash, paginate, sorted_json_hash
from itcrosswalk.core.config import Config
from itcrosswalk.core.sync import SyncEngine, build_adapter

from .conftest import Site


def _issues(site: Site, make_config: Callable[..., Config], pm: Any, stream: str) -> list[Any]:
    adapter = build_adapter(make_config(site), "jsm", pm)
    try:
        (found,) = [s for s in adapter.streams() if s.name == stream]
        raws = [raw for page, _u, _a in paginate(found, Window(None, None, True)) for raw in page.records]  # fmt: skip
        assert all(found.version(raw) == content_hash(raw) for raw in raws)
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
            version = content_hash(raw)
            assert version.startswith("p5:")
            # The same content decoded again (the next sync's read) is the same version.
            assert content_hash(json.loads(json.dumps(raw))) == version
            for path in _leaves(raw):
                current = raw
                for step in path:
                    current = current[step]
                for changed in _other(current):
                    assert content_hash(_with(raw, path, changed)) != version, (path, changed)
            renamed = dict(raw)
            renamed["renamed"] = renamed.pop("key", None)
            assert content_hash(renamed) != version


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
