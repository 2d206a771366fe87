"""A request's Ticket (an SLA cycle's record, an epic's work item) is built without pydantic's
validation (``core.model.built``): what the mapping builds must be what validation would have
built, and a bad issue must still be quarantined with its payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.jira import mapping

from ..built import mapped_as_validated
from .conftest import Site


def test_every_mapped_request_sla_and_epic_is_the_model_validation_would_build(
    site: Site, make_config: Callable[..., Config], pm: Any
) -> None:
    seen = mapped_as_validated(
        build_adapter(make_config(site), "jsm", pm), ("requests", "slas", "epics")
    )
    assert seen["requests"] == sum(1 for t in site.world.tickets if t.platform == "jira")
    assert seen["slas"] > 0 and seen["epics"] > 0


def test_bad_values_are_still_caught_and_each_bad_issue_quarantined_with_its_payload(
    site: Site, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    keys = sorted(site.app.keys)[:3]
    bad = dict(zip(keys, (1234, {"text": "a summary"}, ["a", "summary"]), strict=True))
    for key, summary in bad.items():
        site.app.touch(key, summary=summary)
    config = make_config(site, extra='streams = ["requests"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("jsm")
    assert result.exit_code == 3
    quarantined = {r["source_id"]: r for r in store.quarantine_rows("jsm")}
    ids = {str(site.app.keys[key]): summary for key, summary in bad.items()}
    assert set(quarantined) == set(ids)
    for ident, summary in ids.items():
        assert quarantined[ident]["payload"]["fields"]["summary"] == summary
        assert quarantined[ident]["error"].startswith("ValueError: not text")
    total = sum(1 for t in site.world.tickets if t.platform == "jira")
    assert store.count("ticket", source="jsm") == total - len(bad)
    assert result.streams[0].quarantined == len(bad)


def test_the_rules_a_ticket_is_built_from_hold_only_the_model_s_values() -> None:
    rules = mapping.TicketRules(
        kinds={"Bug": "incident"}, priorities={"P1": 1}, states={"Parked": "on_hold"}
    )
    assert type(rules.kinds["Bug"]) is str and type(rules.states["Parked"]) is str
    with pytest.raises(ValueError, match="outage"):
        mapping.TicketRules(kinds={"Bug": "outage"}, priorities={}, states={})
    with pytest.raises(ValueError, match="parked"):
        mapping.TicketRules(kinds={}, priorities={}, states={"Parked": "parked"})
    for wrong in (0, 6, "2", 2.0):
        with pytest.raises(ValueError, match="from 1 to 5"):
            mapping.TicketRules(kinds={}, priorities={"P": wrong}, states={})  # type: ignore[dict-item]


def _reference_datetime(value: Any) -> Any:
    """What ``parse_datetime`` made before its fast path."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"a date-time without an offset: {value!r}")
    return parsed.astimezone(UTC)


@pytest.mark.parametrize(
    "value",
    ["2022-12-08T02:22:18.889-0800", "2026-07-07T10:01:40.376+0900", "2026-01-01T00:00:00Z",
     "2026-01-01T00:00:00.000+0000", "2026-01-01", "2026-01-01T00:00:00", "Z", "2026-01-01TZ",
     "yesterday", None, "", 0, 1700000000, ["2026-01-01T00:00:00Z"], {"iso8601": "x"}],
    ids=repr,
)  # fmt: skip
def test_date_times_parse_as_before_the_fast_path_and_refuse_what_it_refused(value: Any) -> None:
    try:
        expected = _reference_datetime(value)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            mapping.parse_datetime(value)
    else:
        assert mapping.parse_datetime(value) == expected
        if expected is not None:
            assert mapping.parse_datetime(value).tzinfo is UTC


def test_objects_that_are_mappings_but_not_dicts_are_read_as_the_dicts_are() -> None:
    user = {"emailAddress": "A@X.example", "accountId": "1"}
    assert mapping.person_ref(MappingProxyType(user)) == mapping.person_ref(user) == "a@x.example"
    assert mapping.option_value(MappingProxyType({"value": "Fire"})) == "Fire"
    assert mapping.epoch_millis(MappingProxyType({"epochMillis": 0})) == datetime(1970, 1, 1, tzinfo=UTC)  # fmt: skip
    assert mapping.millis(MappingProxyType({"millis": 1500})) == 1.5
    assert mapping.person_ref("a@x.example") is None and mapping.option_value(["Fire"]) == "Fire"
