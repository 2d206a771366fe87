"""A record's content hash tells one version from the next where a platform keeps no change
counter: any change of content must change it (or the change is skipped as unchanged), and the
same content read again must not (or every re-read is mapped and written again)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest

from itcrosswalk.core.adapter import Stream, content_hash, sorted_json_hash

RECORD: dict[str, Any] = {
    "id": "10042",
    "key": "OPS-7",
    "fields": {
        "summary": "Printer on floor 3 jams",
        "priority": {"id": "3", "name": "Medium"},
        "labels": ["hardware", "floor-3", ""],
        "story_points": 5,
        "ratio": 0.25,
        "zero": 0,
        "negative_zero": -0.0,
        "huge": 2**80,
        "flagged": False,
        "done": True,
        "resolution": None,
        "components": [],
        "custom": {},
        "text": "naïve café — ✓ \U0001f5a8",
        "nested": [[1, [2, {"deep": "x"}]], {"a": None}],
    },
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    yield path  # the container itself can be replaced too


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _at(raw: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        raw = raw[step]
    return raw


def _with(raw: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = _copy(raw)
    _at(copy, path[:-1])[path[-1]] = value
    return copy


def _others(value: Any) -> list[Any]:
    """Values a leaf could change to, including those of equal text, number or truth."""
    if isinstance(value, bool):
        return [not value, int(value), float(value), str(value).lower(), None]
    if isinstance(value, int):
        return [value + 1, -value - 1, str(value), float(value), value == 1, None, [value]]
    if isinstance(value, float):
        flipped = -value if value else (0.0 if math.copysign(1, value) < 0 else -0.0)
        return [value + 0.5, flipped, int(value), str(value), None]
    if value is None:
        return ["", 0, False, [], {}, "null"]
    if isinstance(value, str):
        return [value + "x", value.upper() if value != value.upper() else value + " ",
                "" if value else None, [value], {value: None}]  # fmt: skip
    if isinstance(value, list):
        return [[*value, None], value[:-1] if value else [""], {}, None]
    return [{**value, "x": None}, dict(list(value.items())[:-1]) if value else {"": None}, [], None]  # fmt: skip


def test_equal_content_gives_an_equal_hash() -> None:
    version = content_hash(RECORD)
    assert version.startswith("p5:")
    # The same content decoded again, as the next sync reads it.
    assert content_hash(_copy(RECORD)) == version
    # Strings that are equal but made differently (interned or not, shared or not).
    made = _copy(RECORD)
    made["key"] = "".join(["OPS", "-", "7"])
    made["fields"]["labels"][1] = sys.intern("floor-3")
    made["fields"]["labels"].append(made["fields"]["labels"][0])
    again = _copy(RECORD)
    again["fields"]["labels"].append("hardware")
    assert content_hash(made) == content_hash(again)


def test_every_change_of_a_leaf_or_of_its_type_changes_the_hash() -> None:
    version = content_hash(RECORD)
    changes = 0
    for path in _leaves(RECORD):
        if not path:
            continue
        for other in _others(_at(RECORD, path)):
            assert content_hash(_with(RECORD, path, other)) != version, (path, other)
            changes += 1
    assert changes > 100


def test_a_renamed_added_or_removed_key_changes_the_hash() -> None:
    version = content_hash(RECORD)
    for path in _leaves(RECORD):
        parent = _at(RECORD, path[:-1]) if path else None
        if not isinstance(parent, dict):
            continue
        renamed = _copy(RECORD)
        holder = _at(renamed, path[:-1])
        holder[f"{path[-1]}_"] = holder.pop(path[-1])
        assert content_hash(renamed) != version, path
        removed = _copy(RECORD)
        del _at(removed, path[:-1])[path[-1]]
        assert content_hash(removed) != version, path
    added = _copy(RECORD)
    added["fields"]["new"] = None
    assert content_hash(added) != version


def test_a_value_moved_between_keys_or_list_places_changes_the_hash() -> None:
    assert content_hash({"a": "1", "b": "2"}) != content_hash({"a": "2", "b": "1"})
    assert content_hash({"a": ["x", "y"]}) != content_hash({"a": ["y", "x"]})
    assert content_hash({"a": {"b": "c"}}) != content_hash({"a": "b", "c": None})
    assert content_hash({"a": ["b", "c"]}) != content_hash({"a": ["bc"]})


def test_a_key_reorder_may_change_the_hash_once_but_never_hides_a_change() -> None:
    reordered = dict(reversed(list(RECORD.items())))
    # The same record sent in another order: at most one re-map (the hash may differ) ...
    assert content_hash(reordered) in {content_hash(RECORD), content_hash(_copy(reordered))}
    # ... and the order kept, the same hash on every read after.
    assert content_hash(_copy(reordered)) == content_hash(reordered)


class _Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), Decimal("1.50"), _Colour.RED, object()],
    ids=["datetime", "decimal", "str-enum", "object"],
)
def test_a_value_that_is_not_plain_data_falls_back_to_the_sorted_json_hash(value: Any) -> None:
    raw = {"id": "1", "fields": {"when": value}}
    version = content_hash(raw)
    assert version == sorted_json_hash(raw)
    assert version.startswith("sha256:")
    # The fallback is as exact about content, and ignores key order.
    assert content_hash({"id": "2", "fields": {"when": value}}) != version
    assert content_hash({"fields": {"when": value}, "id": "1"}) == version


def test_the_same_content_is_the_same_hash_whatever_objects_it_shares() -> None:
    # A memo would write a repeated object as a reference to the first: equal content, other
    # bytes. Fast mode keeps none.
    user = {"accountId": "1", "emailAddress": "a@x.example", "active": True}
    shared = {"id": "1", "fields": {"assignee": user, "reporter": user, "labels": []}}
    copied = _copy(shared)
    assert copied["fields"]["assignee"] is not copied["fields"]["reporter"]
    assert content_hash(shared) == content_hash(copied)
    key = "".join(["cust", "omfield_1"])  # equal text, another object
    assert content_hash({"fields": {key: 1, "x": key}}) == content_hash(
        {"fields": {"customfield_1": 1, "x": "customfield_1"}}
    )


def test_a_cycle_is_refused() -> None:
    cyclic: dict[str, Any] = {"id": "1"}
    cyclic["self"] = cyclic  # what no decoded body holds
    with pytest.raises(ValueError):
        content_hash(cyclic)


def test_a_stream_without_a_change_counter_is_versioned_by_the_content_hash() -> None:
    class Plain(Stream):
        name = "plain"
        entity = "ticket"
        key = "id"

    assert Plain().version(RECORD) == content_hash(RECORD)
