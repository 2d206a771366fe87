"""The sandbox as `crosswalk demo` runs it: the config its `source=` callable writes, Intune and
ServiceNow synced from one world, and the devices each side lacks found by serial number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import load_config
from itcrosswalk.core.model import normalize_serial
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import World

# Devices one source holds and the other lacks, joined on the normalized serial number.
GAP_SQL = """
SELECT a.serial_key FROM devices a
WHERE a.source = :a AND NOT a.deleted AND a.serial_key IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM devices b
    WHERE b.source = :b AND NOT b.deleted AND b.serial_key = a.serial_key
  )
"""


def test_demo_config_syncs_intune_and_the_cmdb_gaps_match_the_world(
    world: World, pm: Any, tmp_path: Path
) -> None:
    with runner.start(world, pm=pm, platforms=["servicenow", "intune"]) as box:
        path = runner.write_config(box, tmp_path, store_url=f"sqlite:///{tmp_path / 'demo.db'}")
        text = path.read_text()
        assert 'type = "oauth_client_credentials"' in text and "tenant_id" in text
        assert box.secret not in text
        config = load_config(path)
        store = Store(config.store.url)
        try:
            engine = SyncEngine(config, store, pm=pm)
            for name in config.sources:
                result = engine.sync(name)
                assert result.exit_code == 0, (
                    name,
                    [(s.stream, s.message) for s in result.streams],
                )
            intune = {
                d["serial_key"]
                for d in store.export("device", source="sandbox-intune")
                if d["serial_key"]
            }
            cmdb = {
                d["serial_key"]
                for d in store.export("device", source="sandbox-servicenow")
                if d["serial_key"]
            }
            # The same question as SQL over the store, the way a report asks it.
            with store.engine.connect() as conn:
                missing_from_cmdb = set(
                    conn.execute(
                        sa.text(GAP_SQL), {"a": "sandbox-intune", "b": "sandbox-servicenow"}
                    ).scalars()
                )
                missing_from_intune = set(
                    conn.execute(
                        sa.text(GAP_SQL), {"a": "sandbox-servicenow", "b": "sandbox-intune"}
                    ).scalars()
                )
        finally:
            store.close()
        assert missing_from_cmdb == intune - cmdb and missing_from_intune == cmdb - intune

    def keys(devices: list[Any]) -> set[str]:
        return {k for k in (normalize_serial(d.serial) for d in devices) if k}

    only_intune = keys([d for d in world.devices if d.in_intune and not d.in_cmdb])
    only_cmdb = keys([d for d in world.devices if d.in_cmdb and not d.in_intune])
    assert only_intune and only_cmdb
    assert intune - cmdb == only_intune
    assert cmdb - intune == only_cmdb

    result = CliRunner().invoke(
        make_cli(pm),
        [
            "--config",
            str(path),
            "export",
            "devices",
            "--format",
            "json",
            "--source",
            "sandbox-intune",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == sum(1 for d in world.devices if d.in_intune)
    assert {r["platform"] for r in rows} == {"intune"}
    assert {r["compliance"] for r in rows} <= {
        "compliant",
        "noncompliant",
        "in_grace_period",
        "conflict",
        "error",
        "unknown",
    }
    assert all(r["serial_key"] is None or r["serial_key"] == r["serial_key"].upper() for r in rows)


def test_crosswalk_check_names_each_missing_permission(
    tenant_factory: Any, make_config: Any, pm: Any
) -> None:
    from .conftest import CLIENT_ID

    tenant = tenant_factory(permissions={CLIENT_ID: {"User.Read.All"}})
    config = make_config(tenant)
    result = CliRunner().invoke(
        make_cli(pm), ["--config", str(config.path), "check", "--format", "json"]
    )
    assert result.exit_code == 3, result.output
    rows = {row["stream"]: row for row in json.loads(result.output)}
    assert rows["users"]["ok"] and rows["users"]["status"] == "ok"
    for name in ("managedDevices", "detectedApps"):
        assert rows[name]["status"] == "no_access"
        assert "DeviceManagementManagedDevices.Read.All" in rows[name]["detail"]
    assert "DeviceManagementConfiguration.Read.All" in rows["deviceStatuses"]["detail"]
