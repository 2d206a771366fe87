"""Knowledge, root-cause and asset controls on hand-worked stores, on SQLite and PostgreSQL:
each row's verdict, and unverified (never a pass) where the data they judge is absent."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.model import Asset, Device, KnowledgeFeedback, Ticket
from itcrosswalk.core.store import Store, StreamCursor
from tests.core.test_metrics_knowledge import (
    NOW,
    TODAY,
    knowledge_store,
    page,
    problem_store,
)

IDS = (
    "knowledge.valid_to",
    "knowledge.open_flags",
    "service.problem_rca",
    "service.p1_problem",
    "endpoint.asset_seen",
    "endpoint.device_asset",
    "endpoint.asset_retirement",
)


def verdicts(store: Store, control_id: str) -> dict[str, str]:
    controls = load_controls()
    run = run_controls(store, [controls[control_id]], now=NOW, record=False)
    (result,) = run.results
    assert result.error is None, result.error
    return {f.resource: f.status for f in result.findings}


def test_an_empty_store_leaves_every_control_unverified(store_url: str) -> None:
    store = Store(store_url)
    try:
        for control_id in IDS:
            found = verdicts(store, control_id)
            assert found and set(found.values()) == {"unverified"}, (control_id, found)
    finally:
        store.close()


def test_articles_past_valid_to_and_open_flags(store_url: str) -> None:
    store = knowledge_store(store_url)
    try:
        # Published latest versions: KB1 valid to 2100, KB2 past valid-to, KB3 without one.
        assert verdicts(store, "knowledge.valid_to") == {
            "snow/a1v2": "ok",
            "snow/a2": "alarm",
            "snow/a3": "alarm",
        }
        # KB1's old version has a flag open 40 days; KB2's flag is resolved; KB4 is retired.
        assert verdicts(store, "knowledge.open_flags") == {
            "snow/a1v2": "alarm",
            "snow/a2": "ok",
            "snow/a3": "ok",
            "snow/a5": "ok",
        }
    finally:
        store.close()


def test_an_article_with_several_old_flags_is_one_finding(store_url: str) -> None:
    """Flags on any version of an article alarm its latest version once, however many."""
    store = knowledge_store(store_url)
    try:
        page(
            store,
            "kb_feedback",
            "knowledge_feedback",
            [
                KnowledgeFeedback(
                    source="snow",
                    platform="servicenow",
                    source_id=f"g{n}",
                    article_id=version,
                    flagged=True,
                    resolved=False,
                    created_at=NOW - timedelta(days=31 + n),
                )
                for n, version in enumerate(["a1v1", "a1v2", "a1v2", "a3"])
            ],
        )
        run = run_controls(store, [load_controls()["knowledge.open_flags"]], now=NOW, record=False)
        (result,) = run.results
        assert result.error is None, result.error
        found = sorted((f.resource, f.status) for f in result.findings)
        assert found == [
            ("snow/a1v2", "alarm"),
            ("snow/a2", "ok"),
            ("snow/a3", "alarm"),
            ("snow/a5", "ok"),
        ]
    finally:
        store.close()


def test_problems_closed_without_root_cause_or_fix(store_url: str) -> None:
    store = problem_store(store_url)
    try:
        assert verdicts(store, "service.problem_rca") == {
            "snow/p1": "ok",
            "snow/p2": "alarm",  # empty cause
            "snow/p3": "ok",  # risk accepted: a cause, no fix needed
            "snow/p4": "skip",  # duplicate
            "snow/p6": "skip",  # cancelled
        }
    finally:
        store.close()


def test_a_legacy_instance_s_problems_are_unverified_not_passed(store_url: str) -> None:
    store = problem_store(store_url, legacy=True)
    try:
        found = verdicts(store, "service.problem_rca")
        assert found["snow/p1"] == "unverified" and found["snow/p2"] == "unverified"
    finally:
        store.close()


def p1(sid: str, days: int, problem_id: str | None) -> Ticket:
    return Ticket(
        source="snow",
        platform="servicenow",
        source_id=sid,
        kind="incident",
        state="closed",
        priority=1,
        opened_at=NOW - timedelta(days=days),
        problem_id=problem_id,
    )


def test_p1_incidents_need_a_problem_after_five_days(store_url: str) -> None:
    store = Store(store_url)
    try:
        page(
            store,
            "incident",
            "ticket",
            [
                p1("i1", 10, "prb1"),  # linked
                p1("i2", 10, ""),  # none after 10 days
                p1("i3", 2, ""),  # only 2 days old: not yet due
                p1("i4", 10, None),  # the platform does not say
            ],
        )
        assert verdicts(store, "service.p1_problem") == {
            "snow/i1": "ok",
            "snow/i2": "alarm",
            "snow/i4": "unverified",
        }
    finally:
        store.close()


def asset(sid: str, serial: str | None, **kw: Any) -> Asset:
    return Asset(source="snow", platform="servicenow", source_id=sid, serial=serial, **kw)


def managed(sid: str, serial: str | None, seen_days: int) -> Device:
    return Device(
        source="intune",
        platform="intune",
        source_id=sid,
        serial=serial,
        enrolled_at=NOW - timedelta(days=400),
        last_seen_at=NOW - timedelta(days=seen_days),
    )


def test_assets_against_intune(store_url: str) -> None:
    store = Store(store_url)
    try:
        page(
            store,
            "alm_hardware",
            "asset",
            [
                asset("h1", "AAA1", state="in_use", planned_retirement=TODAY + timedelta(days=30)),
                asset("h2", "bbb 2", state="in_use", planned_retirement=TODAY - timedelta(days=1)),
                asset("h3", "CCC3", state="in_use"),  # Intune never saw it; no retirement planned
                asset("h4", None, state="in_use", planned_retirement=date(2030, 1, 1)),
                asset("h5", "EEE5", state="in_stock"),  # not in use: neither control judges it
            ],
        )
        store.write_page(
            source="intune",
            stream="managedDevices",
            entity="device",
            records=[
                managed("d1", "AAA1", 3),
                managed("d2", "BBB2", 75),  # seen 75 days ago
                managed("d3", "ZZZ9", 1),  # no asset
                managed("d4", "EEE5", 1),
            ],
            cursor=StreamCursor(watermark=NOW, access="ok"),
        )
        assert verdicts(store, "endpoint.asset_seen") == {
            "snow/h1": "ok",
            "snow/h2": "alarm",
            "snow/h3": "alarm",
            "snow/h4": "unverified",
        }
        assert verdicts(store, "endpoint.device_asset") == {
            "intune/d1": "ok",
            "intune/d2": "ok",
            "intune/d3": "alarm",
            "intune/d4": "ok",
        }
        assert verdicts(store, "endpoint.asset_retirement") == {
            "snow/h1": "ok",
            "snow/h2": "alarm",
            "snow/h3": "info",
            "snow/h4": "ok",
        }
    finally:
        store.close()


def test_assets_without_a_device_manager_are_unverified(store_url: str) -> None:
    store = Store(store_url)
    try:
        page(store, "alm_hardware", "asset", [asset("h1", "AAA1", state="in_use")])
        assert set(verdicts(store, "endpoint.asset_seen").values()) == {"unverified"}
    finally:
        store.close()
