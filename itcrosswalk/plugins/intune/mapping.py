"""Intune and Entra ID records (Microsoft Graph v1.0 JSON) into the common model.

The crosswalk tables below are plain data: ``crosswalk plugins show intune`` prints them. The
mappers read raw JSON dicts (never the SDK's typed models, which cost ~11 ms per device) and
turn Graph's sentinel values into nulls: ``0001-01-01T00:00:00Z`` is "never",
``9999-12-31T23:59:59Z`` is "no end", and serials such as ``""``, ``"0"``, ``Default string``
or ``To be filled by O.E.M.`` are firmware placeholders, not join keys. An unknown native
value becomes ``unknown`` and the native value stays in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...core.model import (
    ComplianceState,
    Device,
    DeviceCompliance,
    InstalledApp,
    Person,
    built,
    normalize_email,
    normalize_serial,
)

PLATFORM = "intune"

# managedDevice.complianceState -> the normalized compliance state
COMPLIANCE_STATE: dict[str, ComplianceState] = {
    "compliant": ComplianceState.COMPLIANT,
    "noncompliant": ComplianceState.NONCOMPLIANT,
    "inGracePeriod": ComplianceState.IN_GRACE_PERIOD,
    "conflict": ComplianceState.CONFLICT,
    "error": ComplianceState.ERROR,
    "unknown": ComplianceState.UNKNOWN,
    # Co-managed devices whose compliance Configuration Manager evaluates: Intune has no verdict.
    "configManager": ComplianceState.UNKNOWN,
}

# deviceComplianceDeviceStatus.status (one policy on one device) -> the normalized state
POLICY_STATUS: dict[str, ComplianceState] = {
    "compliant": ComplianceState.COMPLIANT,
    # Was non-compliant and Intune fixed it: compliant now.
    "remediated": ComplianceState.COMPLIANT,
    "nonCompliant": ComplianceState.NONCOMPLIANT,
    "error": ComplianceState.ERROR,
    "conflict": ComplianceState.CONFLICT,
    "notApplicable": ComplianceState.NOT_APPLICABLE,
    "notAssigned": ComplianceState.NOT_APPLICABLE,
    "unknown": ComplianceState.UNKNOWN,
}

# managedDevice.managedDeviceOwnerType -> ownership
OWNERSHIP: dict[str, str | None] = {"company": "company", "personal": "personal", "unknown": None}

# Placeholders firmware and virtual machines report as serial numbers (compared folded).
PLACEHOLDER_SERIALS = ("", "0", "Default string", "To be filled by O.E.M.", "System Serial Number")

# Years Graph uses for "never" (0001-01-01) and "no end" (9999-12-31).
_SENTINEL_YEARS = (1, 9999)

# Fields each mapper names; the rest of the record goes to ``extra``.
DEVICE_FIELDS = (
    "id",
    "deviceName",
    "serialNumber",
    "operatingSystem",
    "osVersion",
    "userPrincipalName",
    "enrolledDateTime",
    "lastSyncDateTime",
    "complianceState",
    "isEncrypted",
    "manufacturer",
    "model",
    "managementAgent",
    "managedDeviceOwnerType",
)
USER_FIELDS = (
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "department",
    "officeLocation",
    "manager",
    "accountEnabled",
    "createdDateTime",
)
STATUS_FIELDS = ("id", "status", "lastReportedDateTime")
APP_FIELDS = ("id", "displayName", "version", "publisher", "deviceCount")

# Annotations the adapter adds to a device status: the policy it was listed under.
POLICY_ID = "@itcrosswalk.policyId"
POLICY_NAME = "@itcrosswalk.policyName"
APP_DEVICES = "@itcrosswalk.managedDevices"


def parse_datetime(value: Any) -> datetime | None:
    """A Graph ``DateTimeOffset`` as an aware UTC datetime; sentinels and junk become None.

    Graph sends up to seven fractional digits (``.9999999Z``); Python keeps six.
    """
    if not isinstance(value, str) or not value:
        return None
    text = value
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        text = text[: dot + 1] + text[dot + 1 : end][:6] + text[end:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.year in _SENTINEL_YEARS:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def clean(value: Any) -> str | None:
    """A string field with ``""`` and whitespace-only values as None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def clean_serial(value: Any) -> str | None:
    """The serial number as reported, or None when it is a placeholder."""
    text = clean(value)
    if text is None or normalize_serial(text) is None:
        return None
    if text.casefold() in _PLACEHOLDERS_FOLDED:
        return None
    return text


_PLACEHOLDERS_FOLDED = frozenset(p.casefold() for p in PLACEHOLDER_SERIALS)


def _extra(raw: Mapping[str, Any], named: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in named}


# What each mapping reads (a set, tested once per native field), and Graph's type annotation.
_DEVICE_NAMED = frozenset((*DEVICE_FIELDS, "@odata.type"))
_STATUS_NAMED = frozenset((*STATUS_FIELDS, POLICY_ID, POLICY_NAME, "@odata.type"))
_APP_NAMED = frozenset((*APP_FIELDS, APP_DEVICES, "@odata.type"))
_USER_NAMED = frozenset((*USER_FIELDS, "@odata.type"))


def _required_id(raw: Mapping[str, Any], what: str) -> str:
    value = raw.get("id")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} has no id")
    return value


def _enum(
    table: Mapping[str, ComplianceState], native: Any, key: str, extra: dict[str, Any]
) -> ComplianceState:
    state = table.get(native) if isinstance(native, str) else None
    if state is None or (state is ComplianceState.UNKNOWN and native != "unknown"):
        # Unknown to the crosswalk (or a value that only means "not Intune's call"): keep it.
        if native is not None:
            extra[key] = native
        return state or ComplianceState.UNKNOWN
    return state


def device_url(portal: str, device_id: str) -> str:
    """The device's page in the Intune admin center."""
    return f"{portal}/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/{device_id}"


def map_device(raw: Mapping[str, Any], *, source: str, portal: str) -> Device:
    """A ``managedDevice`` as a :class:`Device`."""
    device_id = _required_id(raw, "managed device")
    extra = _extra(raw, _DEVICE_NAMED)
    serial = clean_serial(raw.get("serialNumber"))
    if serial is None and raw.get("serialNumber") not in (None, ""):
        extra["serialNumber"] = raw.get("serialNumber")  # the placeholder, for the record
    compliance = _enum(COMPLIANCE_STATE, raw.get("complianceState"), "complianceState", extra)
    owner_type = raw.get("managedDeviceOwnerType")
    ownership = OWNERSHIP.get(owner_type) if isinstance(owner_type, str) else None
    if isinstance(owner_type, str) and owner_type not in OWNERSHIP:
        extra["managedDeviceOwnerType"] = owner_type
    encrypted = raw.get("isEncrypted")
    last_seen = parse_datetime(raw.get("lastSyncDateTime"))
    enrolled = parse_datetime(raw.get("enrolledDateTime"))
    # Each value is its field's type by construction (text or None from ``clean``, aware UTC
    # times or None from ``parse_datetime``, a compliance state's value, a bool, an id that
    # ``_required_id`` checked), as in every mapping here: the records are built without
    # validating them again (test_mapping_fast_intune.py holds them to the validated models).
    return built(
        Device,
        source=source,
        platform=PLATFORM,
        source_id=device_id,
        url=device_url(portal, device_id),
        updated_at=last_seen,
        created_at=enrolled,
        name=clean(raw.get("deviceName")),
        serial=serial,
        os=clean(raw.get("operatingSystem")),
        os_version=clean(raw.get("osVersion")),
        owner=normalize_email(clean(raw.get("userPrincipalName"))),
        enrolled_at=enrolled,
        last_seen_at=last_seen,
        compliance=compliance.value,
        encrypted=encrypted if isinstance(encrypted, bool) else None,
        manufacturer=clean(raw.get("manufacturer")),
        model=clean(raw.get("model")),
        management_agent=clean(raw.get("managementAgent")),
        ownership=ownership,
        extra=extra,
    )


def status_device_id(status_id: str, policy_id: str | None) -> str | None:
    """The managed device a ``deviceStatuses`` row is about.

    Graph documents the id as a GUID, but real tenants return ``{user}_{policy}_{device}``
    (microsoft-graph-docs#9230, #15197): the device id is the part after the policy id.
    """
    parts = status_id.split("_")
    if policy_id and policy_id in parts:
        at = parts.index(policy_id)
        if at + 1 < len(parts) and parts[at + 1]:
            return "_".join(parts[at + 1 :])
    if len(parts) == 3 and all(parts):
        return parts[2]
    return None


def map_device_status(raw: Mapping[str, Any], *, source: str, portal: str) -> DeviceCompliance:
    """One policy's verdict on one device (``deviceCompliancePolicies/{id}/deviceStatuses``)."""
    status_id = _required_id(raw, "device status")
    policy_id = clean(raw.get(POLICY_ID))
    device_id = status_device_id(status_id, policy_id)
    if device_id is None:
        raise ValueError(
            f"device status {status_id!r} does not name its device (expected user_policy_device)"
        )
    extra = _extra(raw, _STATUS_NAMED)
    state = _enum(POLICY_STATUS, raw.get("status"), "status", extra)
    reported = parse_datetime(raw.get("lastReportedDateTime"))
    return built(
        DeviceCompliance,
        source=source,
        platform=PLATFORM,
        source_id=status_id,
        url=device_url(portal, device_id),
        updated_at=reported,
        device_id=device_id,
        policy_id=policy_id,
        policy_name=clean(raw.get(POLICY_NAME)),
        state=state.value,
        last_reported_at=reported,
        extra=extra,
    )


def map_detected_app(raw: Mapping[str, Any], *, source: str, portal: str) -> InstalledApp:
    """A ``detectedApp`` with the devices it was found on (when they were listed)."""
    app_id = _required_id(raw, "detected app")
    name = clean(raw.get("displayName"))
    if name is None:
        raise ValueError(f"detected app {app_id} has no displayName")
    count = raw.get("deviceCount")
    devices = raw.get(APP_DEVICES)
    extra = _extra(raw, _APP_NAMED)
    return built(
        InstalledApp,
        source=source,
        platform=PLATFORM,
        source_id=app_id,
        url=f"{portal}/#view/Microsoft_Intune_Devices/DiscoveredAppDevicesBlade/appId/{app_id}",
        name=name,
        version=clean(raw.get("version")),
        publisher=clean(raw.get("publisher")),
        device_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        device_ids=_texts(devices) if isinstance(devices, list) else [],
        extra=extra,
    )


def _texts(values: list[Any]) -> list[str]:
    """The text items of ``values``, in order: a copy of the list when all are text, as an
    app's hundreds of device ids are (``str.join`` checks every item in C, refusing anything
    but text, where a comprehension pays a test per item)."""
    try:
        "".join(values)
    except TypeError:
        return [v for v in values if isinstance(v, str)]
    return list(values)


def map_user(raw: Mapping[str, Any], *, source: str, portal: str) -> Person:
    """An Entra ID ``user`` (with ``$expand=manager``) as a :class:`Person`."""
    user_id = _required_id(raw, "user")
    manager = raw.get("manager")
    manager_upn = None
    if isinstance(manager, Mapping):
        manager_upn = normalize_email(
            clean(manager.get("userPrincipalName")) or clean(manager.get("mail"))
        )
    enabled = raw.get("accountEnabled")
    return built(
        Person,
        source=source,
        platform=PLATFORM,
        source_id=user_id,
        url=f"{portal.replace('intune.', 'entra.')}/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/{user_id}",
        created_at=parse_datetime(raw.get("createdDateTime")),
        upn=normalize_email(clean(raw.get("userPrincipalName"))),
        email=normalize_email(clean(raw.get("mail"))),
        name=clean(raw.get("displayName")),
        department=clean(raw.get("department")),
        office=clean(raw.get("officeLocation")),
        manager=manager_upn,
        active=enabled if isinstance(enabled, bool) else None,
        extra=_extra(raw, _USER_NAMED),
    )


def describe() -> dict[str, Any]:
    """The crosswalk tables, for ``crosswalk plugins show intune``."""
    return {
        "managedDevices.complianceState -> compliance": {
            k: v.value for k, v in COMPLIANCE_STATE.items()
        },
        "deviceStatuses.status -> device_compliance.state": {
            k: v.value for k, v in POLICY_STATUS.items()
        },
        "managedDeviceOwnerType -> ownership": dict(OWNERSHIP),
        "serial placeholders (become null)": list(PLACEHOLDER_SERIALS),
        "date sentinels (become null)": ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
        "streams": {
            "managedDevices": "device (full read every sync; vanished devices tombstoned)",
            "deviceStatuses": "device_compliance (per policy, one list per policy)",
            "detectedApps": "installed_app (devices via $batch of 20 apps)",
            "users": "person (department, office, manager through $expand)",
        },
    }
