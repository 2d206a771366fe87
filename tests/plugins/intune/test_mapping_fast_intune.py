"""Intune's devices, device statuses, detected apps and users are built without pydantic's
validation (``core.model.built``): what the mapping builds must be what validation would have
built (a device's serial key included), a value of the wrong type must still become None as
the mapping cleans it, and a record without a usable id must still be quarantined with its
payload, the read going on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from itcrosswalk.core.config import Config
from itcrosswalk.core.model import unlike_validated
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.plugins.intune import mapping

from ..built import mapped_as_validated
from .conftest import Tenant

PORTAL = "https://intune.example"


def test_every_mapped_record_is_the_model_validation_would_build(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    seen = mapped_as_validated(build_adapter(make_config(tenant), "intune", pm))
    assert {"managedDevices", "deviceStatuses", "detectedApps", "users"} <= set(seen)


def test_values_of_the_wrong_type_are_cleaned_to_none_as_validation_would_never_see_them() -> None:
    odd = {
        "id": "d-1",
        "deviceName": 42,
        "serialNumber": ["5CG1"],
        "operatingSystem": {"name": "Windows"},
        "enrolledDateTime": 20260101,
        "lastSyncDateTime": "yesterday",
        "complianceState": 3,
        "isEncrypted": "yes",
        "managedDeviceOwnerType": None,
    }
    device = mapping.map_device(odd, source="intune", portal=PORTAL)
    assert unlike_validated(device) == []
    assert (device.name, device.serial, device.serial_key, device.os) == (None, None, None, None)
    assert device.enrolled_at is None and device.last_seen_at is None and device.encrypted is None
    assert device.compliance == "unknown" and type(device.compliance) is str
    app = mapping.map_detected_app(
        {"id": "a-1", "displayName": "Zoom", "deviceCount": True, mapping.APP_DEVICES: ["d-1", 7]},
        source="intune",
        portal=PORTAL,
    )
    assert unlike_validated(app) == [] and app.device_count is None and app.device_ids == ["d-1"]
    placeholder = mapping.map_device({"id": "d-2", "serialNumber": "To be filled by O.E.M."}, source="intune", portal=PORTAL)  # fmt: skip
    assert placeholder.serial is None and placeholder.serial_key is None
    serial = mapping.map_device({"id": "d-3", "serialNumber": " 5cg 12 "}, source="intune", portal=PORTAL)  # fmt: skip
    assert serial.serial_key == "5CG12" and unlike_validated(serial) == []


def test_devices_without_a_usable_id_are_still_quarantined_with_their_payload(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    for name, ident in (("NUMBER-ID", 1234), ("BLANK-ID", "   "), ("LIST-ID", ["x"])):
        tenant.app.add_device(id=ident, deviceName=name)
    config = make_config(tenant, extra='streams = ["managedDevices"]')
    store = open_store(config)
    result = SyncEngine(config, store, pm=pm).sync("intune")
    (outcome,) = result.streams
    assert outcome.quarantined == 3 and result.exit_code == 3
    rows = store.quarantine_rows("intune", "managedDevices")
    assert sorted(r["payload"]["deviceName"] for r in rows) == ["BLANK-ID", "LIST-ID", "NUMBER-ID"]
    assert all(r["error"] == "ValueError: managed device has no id" for r in rows)
    assert store.count("device", source="intune") == outcome.read - 3 > 0


class _Id(str):
    """Text of a subclass: what ``isinstance(value, str)`` keeps."""


def test_an_apps_device_ids_are_its_text_items_in_order_whichever_path_takes_them() -> None:
    def ids(devices: list[Any]) -> list[str]:
        app = mapping.map_detected_app(
            {"id": "a-1", "displayName": "Zoom", mapping.APP_DEVICES: devices},
            source="intune",
            portal=PORTAL,
        )
        assert unlike_validated(app) == []
        return app.device_ids

    plain = [f"d-{n}" for n in range(300)]
    copied = ids(plain)
    assert copied == plain and copied is not plain  # the record holds its own list
    copied.append("d-x")
    assert len(plain) == 300
    subclass = ["d-1", _Id("d-2")]
    assert ids(subclass) == subclass and type(ids(subclass)[1]) is _Id
    # Anything but text is dropped where it stands, whatever its type (the join refuses each).
    for odd in (7, None, b"d-3", ["d-4"], {"id": "d-5"}, 1.5, True):
        assert ids(["d-1", odd, "d-2"]) == ["d-1", "d-2"], odd
        assert ids([odd]) == [], odd
    assert ids([]) == []
