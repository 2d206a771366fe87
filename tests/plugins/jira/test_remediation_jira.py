"""Compliance remediation against the Jira emulator, configured as the demo configures it: one
JSM request per alarm, found again by its correlation label, resolved when the alarm clears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.compliance.history import remediations
from itcrosswalk.core.compliance.remediation import correlation_id, remediate
from itcrosswalk.core.config import load_config
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate
from tests.core.test_compliance_controls import NOW, city_store

SOURCE = "sandbox-jira"


@pytest.fixture
def jsm(tmp_path: Path) -> Any:
    pm = make_registry(entry_points_group=None)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with runner.start(generate(7, "tiny"), pm=pm, platforms=["jira"]) as box:
        path = runner.write_config(box, tmp_path / "sandbox", store_url=store_url)
        store = city_store(store_url)
        try:
            yield box.apps["jira"], load_config(path), store, pm
        finally:
            store.close()


def _requests(app: Any, cid: str) -> list[Any]:
    return [i for i in app.issues.values() if cid in i.labels]


def test_one_request_per_alarm_found_again_by_its_label_and_resolved(jsm: Any) -> None:
    app, config, store, pm = jsm
    control = load_controls()["endpoint.disk_encryption"].model_copy(
        update={"open_tickets": SOURCE}
    )
    cid = correlation_id("endpoint.disk_encryption", "intune/i2")
    first = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert first.problems == []
    assert [(t["resource"], t["action"]) for t in first.opened] == [("intune/i2", "created")]
    [issue] = _requests(app, cid)
    assert issue.project == "CSD" and "POL-LT-0002" in issue.summary
    assert first.opened[0]["url"].endswith(f"/browse/{issue.key}")
    with store.engine.begin() as conn:
        conn.execute(remediations.delete())
    lost = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert [t["action"] for t in lost.existing] == ["exists"] and len(_requests(app, cid)) == 1
    table = store.table("device")
    with store.engine.begin() as conn:
        conn.execute(table.update().where(table.c.source_id == "i2").values(encrypted=True))
    fixed = remediate(store, config, run_controls(store, [control], now=NOW), pm=pm)
    assert [(t["resource"], t["action"]) for t in fixed.cleared] == [("intune/i2", "resolved")]
    assert issue.status == "10003" and issue.resolution == "10000"
