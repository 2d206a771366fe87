"""Contract tests: payloads shaped exactly like Graph's (docs examples and a recorded device,
odd values included) through the mapping."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from itcrosswalk.core.model import ComplianceState
from itcrosswalk.plugins.intune import mapping

PORTAL = "https://intune.microsoft.com"

# Shaped like the docs example of GET /deviceManagement/managedDevices (placeholder strings,
# offsets other than UTC, seven fractional digits, nested objects).
DOCS_DEVICE: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.managedDevice",
    "id": "8e1a3c20-1f2b-4c3d-8e9f-a0b1c2d3e4f5",
    "userId": "User Id value",
    "deviceName": "Device Name value",
    "managedDeviceOwnerType": "company",
    "deviceActionResults": [
        {
            "@odata.type": "microsoft.graph.deviceActionResult",
            "actionName": "Action Name value",
            "actionState": "pending",
            "startDateTime": "2016-12-31T23:58:46.7156189-08:00",
            "lastUpdatedDateTime": "2017-01-01T00:00:56.8321556-08:00",
        }
    ],
    "enrolledDateTime": "2016-12-31T23:59:43.797191-08:00",
    "lastSyncDateTime": "2017-01-01T00:02:49.3205976-08:00",
    "operatingSystem": "Operating System value",
    "complianceState": "compliant",
    "jailBroken": "Jail Broken value",
    "managementAgent": "mdm",
    "osVersion": "Os Version value",
    "isEncrypted": True,
    "userPrincipalName": "User Principal Name value",
    "model": "Model value",
    "manufacturer": "Manufacturer value",
    "complianceGracePeriodExpirationDateTime": "2016-12-31T23:56:44.951111-08:00",
    "serialNumber": "Serial Number value",
    "configurationManagerClientEnabledFeatures": {
        "@odata.type": "microsoft.graph.configurationManagerClientEnabledFeatures",
        "inventory": True,
    },
    "totalStorageSpaceInBytes": 8,
}

# Shaped like a recorded Windows VM: serial "0", sentinel dates, "" strings, nulls.
RECORDED_VM: dict[str, Any] = {
    "complianceGracePeriodExpirationDateTime": "9999-12-31T23:59:59Z",
    "deviceEnrollmentType": "windowsAzureADJoin",
    "id": "2b7c4e91-05aa-4f3e-9d1c-6e8f7a9b0c1d",
    "manufacturer": "innotek GmbH",
    "lastSyncDateTime": "2026-06-13T20:00:23Z",
    "remoteAssistanceSessionUrl": None,
    "meid": "",
    "userId": "0d6f1b2c-3e4a-5b6c-7d8e-9f0a1b2c3d4e",
    "easActivationDateTime": "0001-01-01T00:00:00Z",
    "enrolledDateTime": "2026-06-12T13:52:38Z",
    "operatingSystem": "Windows",
    "serialNumber": "0",
    "deviceName": "DESKTOP-8SGGSQ9",
    "emailAddress": "Maria.Lopez@City.Example.gov",
    "managementAgent": "mdm",
    "jailBroken": "Unknown",
    "complianceState": "compliant",
    "model": "VirtualBox",
    "osVersion": "10.0.18363.836",
    "userPrincipalName": "Maria.Lopez@City.Example.gov",
    "isEncrypted": False,
    "exchangeLastSuccessfulSyncDateTime": "0001-01-01T00:00:00Z",
    "userDisplayName": "Maria Lopez",
    "managedDeviceOwnerType": "company",
    "subscriberCarrier": "",
}


def test_a_recorded_vm_maps_with_sentinels_and_placeholders_as_nulls() -> None:
    device = mapping.map_device(RECORDED_VM, source="intune", portal=PORTAL)
    assert device.serial is None and device.serial_key is None  # "0" is no join key
    assert device.extra["serialNumber"] == "0"
    assert device.owner == "maria.lopez@city.example.gov"
    assert device.compliance == "compliant" and device.encrypted is False
    assert device.last_seen_at == datetime(2026, 6, 13, 20, 0, 23, tzinfo=UTC)
    assert device.os == "Windows" and device.os_version == "10.0.18363.836"
    assert device.ownership == "company" and device.management_agent == "mdm"
    # Native fields the model does not name are kept, sentinels included, untouched.
    assert device.extra["easActivationDateTime"] == "0001-01-01T00:00:00Z"
    assert device.extra["subscriberCarrier"] == ""
    assert device.url and device.source_id in device.url


def test_the_docs_example_maps_offsets_and_seven_digit_fractions_to_utc() -> None:
    device = mapping.map_device(DOCS_DEVICE, source="intune", portal=PORTAL)
    assert device.enrolled_at == datetime(2017, 1, 1, 7, 59, 43, 797191, tzinfo=UTC)
    assert device.last_seen_at == datetime(2017, 1, 1, 8, 2, 49, 320597, tzinfo=UTC)
    assert device.serial == "Serial Number value"
    assert device.extra["deviceActionResults"][0]["actionState"] == "pending"
    assert "@odata.type" not in device.extra


@pytest.mark.parametrize(
    "serial", ["", "0", "Default string", "To be filled by O.E.M.", "System Serial Number", "  "]
)
def test_placeholder_serials_are_never_join_keys(serial: str) -> None:
    device = mapping.map_device({**RECORDED_VM, "serialNumber": serial}, source="s", portal=PORTAL)
    assert device.serial is None and device.serial_key is None


def test_a_real_serial_is_folded_into_the_join_key() -> None:
    device = mapping.map_device(
        {**RECORDED_VM, "serialNumber": "pf3a 9k2x"}, source="s", portal=PORTAL
    )
    assert device.serial == "pf3a 9k2x" and device.serial_key == "PF3A9K2X"


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("compliant", "compliant"),
        ("noncompliant", "noncompliant"),
        ("inGracePeriod", "in_grace_period"),
        ("conflict", "conflict"),
        ("error", "error"),
        ("unknown", "unknown"),
    ],
)
def test_compliance_states(native: str, expected: str) -> None:
    device = mapping.map_device(
        {**RECORDED_VM, "complianceState": native}, source="s", portal=PORTAL
    )
    assert device.compliance == expected
    assert "complianceState" not in device.extra


@pytest.mark.parametrize("native", ["configManager", "quarantined", 3])
def test_an_unknown_compliance_value_is_unknown_and_kept(native: Any) -> None:
    device = mapping.map_device(
        {**RECORDED_VM, "complianceState": native}, source="s", portal=PORTAL
    )
    assert device.compliance == ComplianceState.UNKNOWN
    assert device.extra["complianceState"] == native


def test_a_device_with_every_optional_field_missing_maps() -> None:
    device = mapping.map_device({"id": "only-an-id"}, source="s", portal=PORTAL)
    assert device.source_id == "only-an-id"
    assert device.name is None and device.serial is None and device.owner is None
    assert device.compliance == "unknown" and device.encrypted is None
    assert device.enrolled_at is None and device.last_seen_at is None


def test_a_device_with_nulls_and_empty_strings_everywhere_maps() -> None:
    nulls = {k: None for k in RECORDED_VM} | {"id": "x1"}
    empties = {k: "" for k in RECORDED_VM} | {"id": "x2"}
    for raw in (nulls, empties):
        device = mapping.map_device(raw, source="s", portal=PORTAL)
        assert device.owner is None and device.last_seen_at is None and device.encrypted is None


def test_a_device_without_an_id_raises_so_the_core_quarantines_it() -> None:
    with pytest.raises(ValueError, match="no id"):
        mapping.map_device({**RECORDED_VM, "id": ""}, source="s", portal=PORTAL)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59.9999999Z",
        "",
        None,
        "n/a",
        5,
    ],
)
def test_sentinel_and_junk_dates_become_none(value: Any) -> None:
    assert mapping.parse_datetime(value) is None


# Shaped like the docs example of GET .../deviceCompliancePolicies/{id}/deviceStatuses, and
# like what real tenants return (the id is user_policy_device, microsoft-graph-docs#9230).
POLICY = "0385114b-b48f-4800-a046-f249eaba24b1"
STATUS: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.deviceComplianceDeviceStatus",
    "id": f"020286da-41c6-4700-8e2b-822e444187c3_{POLICY}_26e90184-1029-4901-91f0-05454c445d59",
    "deviceDisplayName": "4969L2B-1909EG2",
    "userName": "System account",
    "deviceModel": None,
    "platform": 0,
    "complianceGracePeriodExpirationDateTime": "9999-12-31T23:59:59.9999999Z",
    "status": "notApplicable",
    "lastReportedDateTime": "2017-01-01T00:00:17.7769392-08:00",
    "userPrincipalName": "System account",
    mapping.POLICY_ID: POLICY,
    mapping.POLICY_NAME: "Windows - BitLocker required",
}


def test_a_device_status_names_its_device_policy_and_state() -> None:
    row = mapping.map_device_status(STATUS, source="s", portal=PORTAL)
    assert row.device_id == "26e90184-1029-4901-91f0-05454c445d59"
    assert row.policy_id == POLICY and row.policy_name == "Windows - BitLocker required"
    assert row.state == "not_applicable"
    assert row.last_reported_at == datetime(2017, 1, 1, 8, 0, 17, 776939, tzinfo=UTC)
    assert row.extra["userPrincipalName"] == "System account"


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("compliant", "compliant"),
        ("remediated", "compliant"),
        ("nonCompliant", "noncompliant"),
        ("error", "error"),
        ("conflict", "conflict"),
        ("notAssigned", "not_applicable"),
        ("unknown", "unknown"),
    ],
)
def test_policy_statuses(native: str, expected: str) -> None:
    assert (
        mapping.map_device_status({**STATUS, "status": native}, source="s", portal=PORTAL).state
        == expected
    )


def test_an_unknown_policy_status_is_unknown_and_kept() -> None:
    row = mapping.map_device_status({**STATUS, "status": "pending"}, source="s", portal=PORTAL)
    assert row.state == "unknown" and row.extra["status"] == "pending"


def test_a_docs_shaped_status_id_without_a_device_is_quarantined() -> None:
    with pytest.raises(ValueError, match="does not name its device"):
        mapping.map_device_status(
            {**STATUS, "id": "c6c78124-8124-c6c7-2481-c7c62481c7c6"}, source="s", portal=PORTAL
        )


DOCS_APP = {
    "@odata.type": "#microsoft.graph.detectedApp",
    "id": "caf60db6-0db6-caf6-b60d-f6cab60df6ca",
    "displayName": "Display Name value",
    "version": "Version value",
    "sizeInByte": 10,
    "deviceCount": 11,
}


def test_a_detected_app_maps_without_publisher_or_devices() -> None:
    app = mapping.map_detected_app(DOCS_APP, source="s", portal=PORTAL)
    assert app.name == "Display Name value" and app.version == "Version value"
    assert app.device_count == 11 and app.publisher is None and app.device_ids == []
    assert app.extra == {"sizeInByte": 10}


def test_a_detected_app_without_a_name_is_quarantined() -> None:
    with pytest.raises(ValueError, match="no displayName"):
        mapping.map_detected_app({**DOCS_APP, "displayName": ""}, source="s", portal=PORTAL)


def test_a_user_maps_department_office_and_manager() -> None:
    person = mapping.map_user(
        {
            "id": "ac785ffe-530a-45a1-bbf4-e275457e464b",
            "userPrincipalName": "Linda.Smith@city.example.gov",
            "mail": None,
            "displayName": "Linda Smith",
            "department": "Water",
            "officeLocation": "Water Plant",
            "accountEnabled": False,
            "jobTitle": "Analyst",
            "manager": {
                "@odata.type": "#microsoft.graph.user",
                "id": "0d6f1b2c-3e4a-5b6c-7d8e-9f0a1b2c3d4e",
                "userPrincipalName": "James.Brown@city.example.gov",
                "mail": None,
            },
        },
        source="s",
        portal=PORTAL,
    )
    assert person.upn == "linda.smith@city.example.gov" and person.email is None
    assert person.department == "Water" and person.office == "Water Plant"
    assert person.manager == "james.brown@city.example.gov" and person.active is False
    assert person.extra == {"jobTitle": "Analyst"}


def test_mapping_a_device_costs_well_under_a_tenth_of_a_millisecond() -> None:
    raws = [{**RECORDED_VM, "id": f"d{i}", "serialNumber": f"SN{i:06d}"} for i in range(2000)]
    started = time.perf_counter()
    for raw in raws:
        mapping.map_device(raw, source="s", portal=PORTAL)
    per_device = (time.perf_counter() - started) / len(raws)
    # The SDK's typed models cost ~11 ms; generous for a loaded shared machine.
    assert per_device < 0.5e-3, f"{per_device * 1e3:.3f} ms per device"


def test_describe_lists_the_crosswalk_tables() -> None:
    tables = mapping.describe()
    assert (
        tables["managedDevices.complianceState -> compliance"]["inGracePeriod"] == "in_grace_period"
    )
    assert "To be filled by O.E.M." in tables["serial placeholders (become null)"]
