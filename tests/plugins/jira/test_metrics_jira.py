"""Service metrics on a JSM desk match values worked out by hand, the City's SLA attainment
beside the platform's own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.metrics import compute_metrics
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.sandbox.world import Department, Person, Sla, Ticket, World

from .conftest import Site

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _person(n: int) -> Person:
    at = NOW - timedelta(days=400)
    return Person(
        id=f"{n:032x}", upn=f"p{n}@city.example.gov", name=f"Person {n}", first_name="P",
        last_name=str(n), department="fire", title="Clerk", manager_id=None, active=True,
        office="HQ", created=at, updated=at,
    )  # fmt: skip


def _ticket(n: int, kind: str, priority: int, state: str, opened: datetime, **kw: Any) -> Ticket:
    resolved = kw.pop("resolved", None)
    return Ticket(
        id=f"t{n}", kind=kind, number=f"X{n}", title=f"ticket {n}", priority=priority, impact=1,
        urgency=1, state=state, opened=opened, responded=kw.pop("responded"), resolved=resolved,
        closed=kw.pop("closed", None), assignment_group="Service Desk", assignee_id=f"{1:032x}",
        caller_id=f"{2:032x}", department="fire", category="Hardware", device_id=None,
        reassignment_count=kw.pop("reassigned", 0), reopen_count=kw.pop("reopened", 0),
        created=opened, updated=resolved or opened + H, platform="jira",
    )  # fmt: skip


def _sla(ticket: Ticket, hours: float, breached: bool) -> Sla:
    end = ticket.resolved
    return Sla(
        id=f"s{ticket.id}", ticket_id=ticket.id, name="resolution", stage="completed" if end else "in_progress",
        has_breached=breached, start=ticket.opened, end=end, planned_end=ticket.opened + hours * H,
        elapsed_seconds=0, business_elapsed_seconds=((end or NOW) - ticket.opened).total_seconds(),
        percent=0, business_percent=0, created=ticket.opened, updated=ticket.updated,
    )  # fmt: skip


@pytest.fixture
def desk() -> World:
    day = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday
    t1 = _ticket(1, "incident", 1, "closed", day, responded=day + 0.5 * H, resolved=day + 2 * H,
                 closed=day + 50 * H, reassigned=1)  # fmt: skip
    t2 = _ticket(2, "incident", 2, "resolved", day + 24 * H, responded=day + 24.2 * H,
                 resolved=day + 36 * H, reopened=1)  # fmt: skip
    t3 = _ticket(3, "incident", 1, "in_progress", day + 48 * H, responded=day + 48.1 * H)
    t4 = _ticket(4, "request", 3, "resolved", day + 72 * H, responded=day + 72.05 * H,
                 resolved=day + 73 * H)  # fmt: skip
    return World(
        seed=0,
        now=NOW,
        departments=[Department("fire", "Fire")],
        groups=["Service Desk", "Desktop Support"],
        people=[_person(1), _person(2)],
        tickets=[t1, t2, t3, t4],
        slas=[_sla(t1, 4, False), _sla(t2, 8, True), _sla(t3, 4, True), _sla(t4, 24, False)],
    )


def test_service_metrics_on_jsm_match_the_hand_worked_values(
    site_factory: Callable[..., Site],
    desk: World,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    site = site_factory(world=desk)
    config = make_config(site, extra='streams = ["requests", "slas"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("jsm")
    assert result.exit_code == 0, [(s.stream, s.message) for s in result.streams]
    wanted = [
        "itsm.volume", "itsm.mttr_hours", "itsm.reopen_rate", "itsm.reassignment_rate",
        "itsm.sla_attainment", "itsm.platform_sla_attainment",
    ]  # fmt: skip
    got = {m.id: m for m in compute_metrics(store, config, wanted, now=NOW, pm=pm)}
    assert got["itsm.volume"].value == 4
    # Incidents resolved: 2 h and 12 h (Jira's stamps carry milliseconds the world lacks).
    assert got["itsm.mttr_hours"].value == pytest.approx(7.0, abs=1e-3)
    # Of the three resolved or closed, one was reopened (its changelog left Resolved once).
    assert got["itsm.reopen_rate"].value == pytest.approx(100 / 3)
    # One of the four (not cancelled) changed assignment group.
    assert got["itsm.reassignment_rate"].value == pytest.approx(25.0)
    # City policy (P1 4 h, P2 8 h): 2 h met, 12 h missed, the open P1 long past 4 h missed.
    assert got["itsm.sla_attainment"].value == pytest.approx(100 / 3)
    # The platform's own completed cycles: resolution met, missed, met; first response met
    # four times (goals 1 h, 2 h, 1 h, 4 h; answered in 30, 12, 6 and 3 minutes).
    assert got["itsm.platform_sla_attainment"].value == pytest.approx(600 / 7)
    assert got["itsm.platform_sla_attainment"].n == 7
