"""Contract tests: Table API rows shaped exactly like the platform's (documented and recorded
payloads: stored values, ``display_value=all`` pairs, reference links, currency triples, ``null``
and ``"UNKNOWN"`` display values, ``""`` for anything unset) through the mapping.

The values are this project's own; the shapes follow the real responses field for field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from itcrosswalk.plugins.servicenow import mapping

BASE = "https://city.service-now.com"


def pair(value: str, shown: str | None = None) -> dict[str, Any]:
    return {"display_value": value if shown is None else shown, "value": value}


def ref(sys_id: str, table: str = "sys_user") -> dict[str, str]:
    return {"link": f"{BASE}/api/now/table/{table}/{sys_id}", "value": sys_id}


# A problem row as `GET /api/now/table/problem` returns it with display_value=false: every
# value a string, references as {link, value}, unset dates and counts as "".
PROBLEM_STORED = {
    "parent": "",
    "made_sla": "true",
    "sys_updated_on": "2026-02-03 04:52:04",
    "number": "PRB0040050",
    "opened_by": ref("7d1e2c3b4a5f60718293a4b5c6d7e8f9"),
    "sys_created_on": "2026-02-03 04:51:19",
    "sys_domain": ref("global", "sys_user_group"),
    "state": "4",
    "closed_at": "2026-02-03 04:52:04",
    "cmdb_ci": ref("9a8b7c6d5e4f30211203a4b5c6d7e8f9", "cmdb_ci"),
    "impact": "3",
    "active": "false",
    "priority": "4",
    "opened_at": "2026-02-03 04:49:47",
    "business_duration": "1970-01-01 00:00:00",
    "work_end": "",
    "short_description": "Pump station switch drops connections",
    "assignment_group": "",
    "sys_class_name": "problem",
    "sys_id": "04ce72c9c0a8016600b5b7f75ac60001",
    "urgency": "3",
    "reassignment_count": "",
    "assigned_to": "",
    "due_date": "",
    "sys_mod_count": "1",
    "sys_tags": "",
}

# An incident with sysparm_display_value=all&sysparm_exclude_reference_link=true: every field a
# {display_value, value} pair, display dates in the caller's zone (seven hours behind UTC here),
# display values that are null or "UNKNOWN" for unset fields.
INCIDENT_ALL = {
    "parent": pair(""),
    "made_sla": pair("true"),
    "sys_updated_on": pair("2026-06-18 11:09:45", "2026-06-18 04:09:45"),
    "number": pair("INC0109002"),
    "resolved_by": pair("6816f79cc0a8016401c5a33be04b0001", "Ada Park"),
    "opened_by": pair("6816f79cc0a8016401c5a33be04b0001", "Ada Park"),
    "sys_created_on": pair("2026-06-16 12:50:05", "2026-06-16 05:50:05"),
    "state": pair("7", "Closed"),
    "priority": pair("3", "3 - Moderate"),
    "impact": pair("2", "2 - Medium"),
    "opened_at": pair("2026-06-16 12:49:23", "2026-06-16 05:49:23"),
    "resolved_at": pair("2026-06-16 12:51:17", "2026-06-16 05:51:17"),
    "closed_at": pair("2026-06-17 03:29:08", "2026-06-16 20:29:08"),
    "caller_id": pair("77ad8176731313005754660c4cf60001", "Luis Ortega"),
    "assignment_group": pair(""),
    "assigned_to": pair(""),
    "category": pair("hardware", "Hardware"),
    "subcategory": {"display_value": None, "value": ""},
    "contact_type": {"display_value": None, "value": ""},
    "activity_due": {"display_value": "UNKNOWN", "value": ""},
    "sla_due": {"display_value": "UNKNOWN", "value": ""},
    "cmdb_ci": pair(""),
    "reassignment_count": pair("0"),
    "reopen_count": pair("1"),
    "sys_id": pair("1c832706732023002728660c4cf60001"),
}

# An alm_hardware asset with display_value=all: currency fields carry a third key.
ASSET_ALL = {
    "ci": pair("3f966cc93790200044e0bfc8bcbe0001", "DX Series"),
    "serial_number": pair("56WHL71"),
    "purchase_date": pair(""),
    "warranty_expiration": pair("2028-04-30"),
    "cost": {"display_value": "$699.99", "currency_display_value": "USD;699.99", "value": "699.99"},
    "residual": {"display_value": "$0.00", "currency_display_value": "USD;0.00", "value": "0"},
    "install_status": pair("1", "In use"),
    "due_in": {"display_value": None, "value": ""},
    "sys_id": pair("0196612a37c4200044e0bfc8bcbe0001"),
    "sys_updated_on": pair("2026-09-10 08:15:50", "2026-09-10 01:15:50"),
}

# A cmdb_ci_computer row with stored values: references are bare sys_ids, and older CMDBs keep
# purchase and warranty dates on the CI itself.
COMPUTER_STORED = {
    "sys_id": "2dfd7c8437201000deeabfc8bcbe0001",
    "sys_updated_on": "2026-07-27 22:28:37",
    "sys_created_on": "2019-03-13 20:55:20",
    "warranty_expiration": "2027-10-07",
    "purchase_date": "2024-10-07",
    "last_discovered": "2026-04-12 23:17:45",
    "manufacturer": "aa0a6df8c611227601cd2ed45989e0ac",
    "assigned_to": "47de9c73c61122930033f6521d1b0001",
    "os_version": "10.0.22631",
    "serial_number": "L3BB911",
    "asset": "8bc1ba8837f3100044e0bfc8bcbe0001",
    "asset_tag": "P1000227",
    "install_status": "1",
    "name": "*ASSET-WTR-0042",
    "cost": "3665",
    "os": "Windows 11 Enterprise",
    "model_id": "a9a2d0c3c6112276010db16c5ddd0001",
    "cost_cc": "USD",
    "department": "221f79b7c6112284005d646b76ab0001",
}


def test_a_stored_value_problem_row() -> None:
    ticket = mapping.map_ticket(PROBLEM_STORED, source="snow", table="problem", base=BASE)
    assert ticket.kind == "problem"
    assert ticket.number == "PRB0040050"
    assert ticket.priority == 4
    assert ticket.state == "unknown", "a pre-Madrid problem state with no label is not guessed"
    assert ticket.extra["native_state"] == {"value": "4", "display_value": "4"}
    assert ticket.opened_at == datetime(2026, 2, 3, 4, 49, 47, tzinfo=UTC)
    assert ticket.closed_at == datetime(2026, 2, 3, 4, 52, 4, tzinfo=UTC)
    assert ticket.resolved_at is None
    assert ticket.reassignment_count is None, '"" is unset, not zero'
    assert ticket.assignment_group is None and ticket.assignee is None
    assert ticket.requester == "7d1e2c3b4a5f60718293a4b5c6d7e8f9"
    assert ticket.updated_at == datetime(2026, 2, 3, 4, 52, 4, tzinfo=UTC)
    assert ticket.url.endswith("problem.do%3Fsys_id%3D04ce72c9c0a8016600b5b7f75ac60001")
    assert "due_date" not in ticket.extra and "work_end" not in ticket.extra
    assert ticket.extra["made_sla"] == "true"


def test_the_same_problem_state_with_its_old_label_is_understood() -> None:
    row = {**PROBLEM_STORED, "state": pair("4", "Closed/Resolved")}
    ticket = mapping.map_ticket(row, source="snow", table="problem", base=BASE)
    assert ticket.state == "closed"
    assert "native_state" not in ticket.extra


def test_a_display_value_all_incident_uses_stored_utc_values() -> None:
    ticket = mapping.map_ticket(INCIDENT_ALL, source="snow", table="incident", base=BASE)
    assert ticket.source_id == "1c832706732023002728660c4cf60001"
    assert ticket.state == "closed"
    assert ticket.priority == 3
    # The stored value is UTC; the display value is the caller's zone and must not be used.
    assert ticket.opened_at == datetime(2026, 6, 16, 12, 49, 23, tzinfo=UTC)
    assert ticket.closed_at == datetime(2026, 6, 17, 3, 29, 8, tzinfo=UTC)
    assert ticket.updated_at == datetime(2026, 6, 18, 11, 9, 45, tzinfo=UTC)
    assert ticket.requester == "Luis Ortega"
    assert ticket.category == "Hardware"
    assert ticket.assignment_group is None and ticket.device_name is None
    assert ticket.reassignment_count == 0 and ticket.reopen_count == 1
    # null and "UNKNOWN" display values over an empty value carry nothing into extra.
    for unset in ("subcategory", "contact_type", "activity_due", "sla_due"):
        assert unset not in ticket.extra
    assert ticket.extra["resolved_by"] == {
        "value": "6816f79cc0a8016401c5a33be04b0001",
        "display_value": "Ada Park",
    }


def test_a_computer_keeps_its_own_dates_where_the_asset_has_none() -> None:
    device = mapping.map_device(COMPUTER_STORED, source="snow", table="cmdb_ci_computer", base=BASE)
    assert device.serial == "L3BB911" and device.serial_key == "L3BB911"
    assert device.purchase_date == date(2024, 10, 7)
    assert device.warranty_expiration == date(2027, 10, 7)
    assert device.last_seen_at == datetime(2026, 4, 12, 23, 17, 45, tzinfo=UTC)
    assert device.os == "Windows 11 Enterprise"
    assert device.extra["cost_cc"] == "USD"
    mapping.apply_asset(device, ASSET_ALL)
    assert device.purchase_date == date(2024, 10, 7), "an empty asset date keeps the CI's"
    assert device.warranty_expiration == date(2028, 4, 30), "the asset's own date wins"
    assert device.extra["asset_cost"] == 699.99
    assert device.extra["asset_sys_id"] == "0196612a37c4200044e0bfc8bcbe0001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("USD;699.99", 699.99), ("699.99", 699.99), ("1,250.00", 1250.0), ("0", 0.0), ("", None)],
)
def test_currency_values_in_every_shape(text: str, expected: float | None) -> None:
    assert mapping.parse_number(text) == expected


def test_a_date_in_the_display_format_is_not_taken_for_a_stored_one() -> None:
    row = {**PROBLEM_STORED, "opened_at": "19-01-2026 04:49:47 PM"}
    with pytest.raises(ValueError):
        mapping.map_ticket(row, source="snow", table="problem", base=BASE)
