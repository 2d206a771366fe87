"""``built`` makes a model without validating it (validation costs a mapping as much as the rest
of its work): what it makes must be what validation would, it must never make one with a field
missing or unknown, and ``unlike_validated`` (the proof the plugins' tests hold their mappings
to) must catch every value validation would have changed or refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import PrivateAttr

from itcrosswalk.core.model import (
    ENTITIES,
    Asset,
    Device,
    InstalledApp,
    Record,
    Ticket,
    WorkItem,
    WorkItemKind,
    WorkState,
    built,
    normalize_serial,
    unlike_validated,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
BASE = {"source": "s", "platform": "p", "source_id": "42", "url": "https://x/42", "updated_at": NOW}

WORK: dict[str, Any] = {
    **BASE,
    "created_at": NOW - timedelta(days=3),
    "extra": {"native_state": "Doing", "labels": ["a", "b"]},
    "kind": "epic",
    "number": "E-42",
    "name": "Replace the printers",
    "parent_id": "7",
    "state": "in_progress",
    "phase": "executing",
    "health": "amber",
    "strategic_goals": ["Resilience"],
    "priority": 2,
    "score": 7.5,
    "business_case_approved": True,
    "planned_start": NOW,
    "planned_finish": NOW + timedelta(days=30),
    "percent_complete": 0.25,
    "budget": 1000.0,
}


def test_a_built_model_is_the_model_validation_makes() -> None:
    item = built(WorkItem, **WORK)
    assert unlike_validated(item) == []
    assert item == WorkItem(**WORK)
    assert list(item.__dict__) == list(WorkItem.model_fields)
    assert item.model_fields_set == WorkItem(**WORK).model_fields_set == set(WORK)
    assert item.model_dump() == WorkItem(**WORK).model_dump()


def test_every_entity_can_be_built_from_what_validation_makes_of_its_required_fields() -> None:
    samples: dict[type, Any] = {str: "x", float: 1.5, date: date(2026, 1, 2), bool: True}
    for model in ENTITIES.values():
        given: dict[str, Any] = dict(BASE)
        for name, info in model.model_fields.items():
            if info.is_required() and name not in given:
                annotation = info.annotation
                if isinstance(annotation, type) and issubclass(annotation, str) and annotation is not str:  # fmt: skip
                    given[name] = next(iter(annotation)).value  # an enumeration: its value
                else:
                    given[name] = samples[annotation]  # type: ignore[index]
        record = built(model, **given)
        assert unlike_validated(record) == [], model
        assert record == model(**given), model


def test_fields_not_given_take_their_defaults_and_factories_make_each_anew() -> None:
    one = built(WorkItem, **BASE, kind="task", name="a")
    two = built(WorkItem, **BASE, kind="task", name="b")
    assert one.state == WorkState.UNKNOWN and one.priority is None
    assert one.extra == {} and one.strategic_goals == []
    one.extra["x"] = 1
    one.strategic_goals.append("g")
    assert two.extra == {} and two.strategic_goals == []
    assert unlike_validated(two) == []


def test_a_mutable_default_is_copied_as_validation_copies_it() -> None:
    class Tagged(Record):
        tags: list[str] = ["default"]  # noqa: RUF012 (pydantic copies it per model)

    one = built(Tagged, **BASE)
    one.tags.append("mine")
    assert built(Tagged, **BASE).tags == ["default"] == Tagged(**BASE).tags


def test_a_model_is_never_built_with_a_field_missing_or_unknown() -> None:
    with pytest.raises(TypeError, match=r"\['kind'\] missing"):
        built(Ticket, **BASE)
    with pytest.raises(TypeError, match=r"\['colour'\] unknown"):
        built(Ticket, **BASE, kind="incident", colour="red")
    with pytest.raises(TypeError, match=r"\['name'\] missing"):
        built(InstalledApp, source="s", platform="p", source_id="1")


def test_a_model_with_private_attributes_is_refused() -> None:
    class Secretive(Record):
        _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    with pytest.raises(TypeError, match="private"):
        built(Secretive, **BASE)


def test_its_post_init_runs_and_serial_placeholders_become_no_key() -> None:
    device = built(Device, **BASE, serial=" 5cg 1234\txyz ")
    assert device.serial_key == "5CG1234XYZ" == Device(**BASE, serial=" 5cg 1234\txyz ").serial_key
    assert unlike_validated(device) == []
    for placeholder in ("", "0", "To be filled by O.E.M.", "Default  String", "SYSTEM SERIAL NUMBER", " n/a ", "None", "unknown"):  # fmt: skip
        assert built(Device, **BASE, serial=placeholder).serial_key is None, placeholder
        assert built(Asset, **BASE, serial=placeholder).serial_key is None, placeholder
    assert normalize_serial(None) is None
    assert normalize_serial("to be\u00a0filled by o.e.m.") is None  # a no-break space is space
    assert built(Device, **BASE, serial="X", serial_key="KEPT").serial_key == "KEPT"


def test_a_built_model_behaves_as_a_validated_one() -> None:
    item = built(WorkItem, **WORK)
    item.name = "renamed"  # assignable, as a validated model is
    assert item.model_copy(update={"number": "E-43"}).number == "E-43"
    assert WorkItem.model_validate_json(item.model_dump_json()) == item
    assert item.model_dump(mode="json")["planned_start"] == "2026-03-04T05:06:07Z"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", WorkItemKind.EPIC),  # validation keeps an enumeration's value as plain text
        ("state", "doing"),  # not of the enumeration
        ("planned_start", datetime(2026, 1, 2, 3, 4, 5)),  # naive: validation makes it UTC
        ("planned_start", "2026-01-02T03:04:05Z"),  # text: validation parses it
        ("percent_complete", 1),  # an int: validation makes it a float
        ("priority", 7),  # out of 1-5
        ("priority", "2"),  # text: validation makes it a number
        ("source_id", ""),  # too short
        ("name", None),
        ("business_case_approved", "yes"),
    ],
)
def test_unlike_validated_names_each_value_validation_would_change_or_refuse(
    field: str, value: Any
) -> None:
    (difference,) = unlike_validated(built(WorkItem, **{**WORK, field: value}))
    assert field in difference


def test_unlike_validated_sees_an_offset_validation_keeps() -> None:
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert unlike_validated(built(WorkItem, **{**WORK, "planned_start": local})) == []
