"""Departments the platform leaves empty, filled from the store's people and marked derived."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from itcrosswalk.core.derive import DERIVED_KEY, derive_departments
from itcrosswalk.core.model import Device, Person, Ticket
from itcrosswalk.core.store import Store

T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _base(source: str, platform: str, source_id: str) -> dict[str, object]:
    return {"source": source, "platform": platform, "source_id": source_id, "updated_at": T0}


def person(source: str, n: str, name: str, department: str) -> Person:
    upn = f"{name.lower().replace(' ', '.')}{n}@city.example.gov"
    return Person.model_validate(
        {
            **_base(source, "servicenow", f"p{n}"),
            "upn": upn,
            "email": upn,
            "name": name,
            "department": department,
        }
    )


def ticket(n: int, requester: str | None, department: str | None = None) -> Ticket:
    return Ticket.model_validate(
        {
            **_base("snow", "servicenow", f"t{n}"),
            "kind": "incident",
            "requester": requester,
            "department": department,
            "extra": {"u_field": n},
        }
    )


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


def test_tickets_and_devices_get_their_peoples_department_marked_derived(store: Store) -> None:
    people = [
        person("snow", "1", "Ana Moore", "Police"),
        person("snow", "2", "Paul Lopez", "Fire"),
        person("snow", "3", "Paul Lopez", "Water"),  # one name, two departments
    ]
    store.write_page(source="snow", stream="sys_user", entity="person", records=people)
    tickets = [
        ticket(1, "Ana Moore"),
        ticket(2, "paul lopez"),
        ticket(3, "Nobody Known"),
        ticket(4, "Ana Moore", department="Parks"),  # the platform's own value wins
        ticket(5, "p1"),  # the platform's id of the requester
    ]
    store.write_page(source="snow", stream="incident", entity="ticket", records=tickets)
    device = Device.model_validate(
        {**_base("intune", "intune", "d1"), "owner": "ANA.MOORE1@city.example.gov"}
    )
    store.write_page(source="intune", stream="managedDevices", entity="device", records=[device])
    assert derive_departments(store, "snow") == {"ticket": 2, "device": 0}
    # An Intune owner is found among another source's people by UPN.
    assert derive_departments(store, "intune") == {"ticket": 0, "device": 1}
    rows = {r["source_id"]: r for r in store.export("ticket")}
    assert (rows["t1"]["department"], rows["t1"]["extra"]) == (
        "Police",
        {"u_field": 1, DERIVED_KEY: "requester"},
    )
    assert rows["t2"]["department"] is None and rows["t3"]["department"] is None
    assert rows["t4"]["department"] == "Parks" and DERIVED_KEY not in rows["t4"]["extra"]
    assert rows["t5"]["department"] == "Police"
    [stored] = store.export("device")
    assert stored["department"] == "Police" and stored["extra"][DERIVED_KEY] == "primary_user"
    # The platform sends the ticket again, still without a department: derived anew.
    store.write_page(
        source="snow", stream="incident", entity="ticket", records=[ticket(1, "Ana Moore")]
    )
    assert derive_departments(store, "snow")["ticket"] == 1
