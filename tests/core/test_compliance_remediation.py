"""Remediation against the ServiceNow emulator on loopback HTTPS: one incident per alarm,
idempotent through the correlation id (even when the local history is lost), cleared alarms
noted, and a bad target reported without stopping the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.compliance.history import remediations
from itcrosswalk.core.compliance.remediation import correlation_id, remediate
from itcrosswalk.core.config import load_config
from itcrosswalk.core.reports import compliance, render
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate
from tests.core.test_compliance_controls import NOW, city_store

SOURCE = "sandbox-servicenow"


@pytest.fixture
def snow(tmp_path: Path) -> Any:
    pm = make_registry(entry_points_group=None)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with runner.start(generate(7, "tiny"), pm=pm, platforms=["servicenow"]) as box:
        path = runner.write_config(box, tmp_path / "sandbox", store_url=store_url)
        store = city_store(store_url)
        try:
            yield box.apps["servicenow"], load_config(path), store, pm
        finally:
            store.close()


def _incidents(app: Any, cid: str) -> list[dict[str, Any]]:
    return [r for r in app.tables.get("incident", []) if r.get("correlation_id") == cid]


def test_one_incident_per_alarm_idempotent_and_cleared(snow: Any) -> None:
    app, config, store, pm = snow
    control = load_controls()["endpoint.disk_encryption"].model_copy(
        update={"open_tickets": SOURCE}
    )
    cid = correlation_id("endpoint.disk_encryption", "intune/i2")
    assert len(cid) <= 100 and "^" not in cid

    first = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert first.problems == []
    assert [(t["resource"], t["action"]) for t in first.opened] == [("intune/i2", "created")]
    [row] = _incidents(app, cid)
    assert "Managed devices have their disks encrypted: POL-LT-0002" in row["short_description"]
    assert "the disk is not encrypted" in row["description"]
    assert first.opened[0]["ticket_id"] == row["sys_id"]

    again = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert (again.opened, again.existing, again.cleared) == ([], [], [])

    # The local history is lost: the platform still finds the incident by its correlation id.
    with store.engine.begin() as conn:
        conn.execute(remediations.delete())
    lost = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert lost.opened == [] and [t["action"] for t in lost.existing] == ["exists"]
    assert len(_incidents(app, cid)) == 1

    table = store.table("device")
    with store.engine.begin() as conn:
        conn.execute(table.update().where(table.c.source_id == "i2").values(encrypted=True))
    fixed = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert [(t["resource"], t["now"], t["ticket_id"], t["action"]) for t in fixed.cleared] == [
        ("intune/i2", "ok", row["sys_id"], "resolved")
    ]
    [resolved] = _incidents(app, cid)
    assert resolved["state"] == "6" and resolved["close_code"] == "Solution provided"
    assert "no longer finds intune/i2 out of line" in resolved["close_notes"]
    patches = [p for m, p in app.requests if m == "PATCH"]
    assert patches == [f"/api/now/table/incident/{row['sys_id']}"]
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(remediations.c.resolved_at)).scalar() is not None
    # Cleared once is cleared: nothing is resolved twice.
    after = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert after.cleared == [] and len([m for m, _p in app.requests if m == "PATCH"]) == 1


def test_dry_run_sends_nothing_and_a_bad_target_is_reported(snow: Any) -> None:
    app, config, store, pm = snow
    base = load_controls()["endpoint.primary_user"]
    before = len(app.tables.get("incident", []))
    dry = remediate(
        store,
        config,
        run_controls(store, [base.model_copy(update={"open_tickets": SOURCE})], now=NOW),
        pm=pm,
        dry_run=True,
    )
    assert [t["action"] for t in dry.opened] == ["dry_run"]
    assert len(app.tables.get("incident", [])) == before
    bad = remediate(
        store,
        config,
        run_controls(store, [base.model_copy(update={"open_tickets": "nope"})], now=NOW),
        pm=pm,
    )
    assert bad.opened == [] and "no source named 'nope'" in bad.problems[0]


def test_the_report_lists_the_tickets_it_opened(snow: Any, tmp_path: Path) -> None:
    app, config, store, pm = snow
    folder = tmp_path / "controls"
    folder.mkdir()
    control = load_controls()["portfolio.business_case"].model_dump(mode="json", exclude={"origin"})
    (folder / "gate.yaml").write_text(yaml.safe_dump({**control, "open_tickets": SOURCE}))
    config = config.model_copy(
        update={"controls": config.controls.model_copy(update={"folders": [folder]})}
    )
    _run, data = compliance.run_and_build(
        store, config, pm, control_ids=["portfolio.business_case"], now=NOW
    )
    [ticket] = data["remediation"]["opened"]
    assert ticket["resource"] == "snow/w2"
    page = render.render(data, "html").decode()
    assert 'class="ticket" data-action="opened"' in page
    assert ticket["url"].startswith("https://127.0.0.1:") and ticket["url"] in page
    # A past report shows the tickets as they were.
    assert (
        compliance.report_for(store.engine, run_id=data["run_id"])["remediation"]
        == data["remediation"]
    )
    quiet, _ = compliance.run_and_build(
        store, config, pm, control_ids=["portfolio.business_case"], now=NOW, open_tickets=False
    )
    assert quiet.run_id is not None
