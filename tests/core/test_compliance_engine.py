"""The compliance engine: unverified is never ok, queries cannot write, a broken control is
reported without stopping the others, and controls come from YAML folders and plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from itcrosswalk.core.compliance import Control, controls_for, load_controls, run_controls, select
from itcrosswalk.core.compliance.controls import parse_controls
from itcrosswalk.core.compliance.engine import source_health
from itcrosswalk.core.config import parse_config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.store import Store, StreamCursor
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import NOW, _ok_run, city_store


def _run(store: Store, *ids: str, config: Any = None) -> dict[str, dict[str, str]]:
    controls = load_controls()
    run = run_controls(store, [controls[i] for i in ids], config=config, now=NOW, record=False)
    return {r.control.id: {f.resource: f.status for f in r.findings} for r in run.results}


@pytest.fixture
def store(store_url: str) -> Any:
    s = city_store(store_url)
    yield s
    s.close()


def test_a_failed_sync_turns_ok_into_unverified_never_ok(store: Store) -> None:
    _ok_run(store, "intune", outcome="failed", error="authentication failed for source intune")
    got = _run(store, "endpoint.disk_encryption", "endpoint.cmdb_in_intune")
    # The rows' own source failed: ok becomes unverified, the recorded alarm stays an alarm.
    assert got["endpoint.disk_encryption"] == {
        "intune/i1": "unverified",
        "intune/i2": "alarm",
        "intune/i3": "unverified",
        "intune/i4": "unverified",
        "intune/i5": "unverified",
        "intune/i6": "unverified",
    }
    # The CMDB rows are compared with Intune, which could not be read: neither ok nor alarm.
    assert got["endpoint.cmdb_in_intune"] == {
        "snow/c1": "unverified",
        "snow/c2": "unverified",
        "snow/c3": "unverified",
        "snow/c6": "unverified",
    }
    health = source_health(store.engine)
    assert health["intune"]["unread"] == ["*"]
    assert health["intune"]["last_run"]["outcome"] == "failed"


def test_a_stream_without_access_makes_its_entity_unverified(store: Store) -> None:
    store.save_cursor(
        "snow", "cmdb_ci_computer", "device", StreamCursor(access="no_access", message="ACL")
    )
    got = _run(store, "endpoint.intune_in_cmdb", "endpoint.primary_user", "data.source_sync")
    assert set(got["endpoint.intune_in_cmdb"].values()) == {"unverified"}
    # Intune's own data is complete: a control about it alone is unaffected.
    assert got["endpoint.primary_user"]["intune/i2"] == "alarm"
    assert got["endpoint.primary_user"]["intune/i1"] == "ok"
    assert got["data.source_sync"]["snow/cmdb_ci_computer"] == "alarm"


def test_a_sync_stopped_part_way_is_unverified(store: Store) -> None:
    store.save_cursor(
        "snow", "pm_project", "work_item", StreamCursor(access="ok", window_until=NOW)
    )
    got = _run(store, "portfolio.has_manager", "data.source_sync")
    assert got["portfolio.has_manager"] == {
        "snow/w1": "unverified",
        "snow/w2": "alarm",
        "ja/w3": "ok",
        "snow/w4": "unverified",
    }
    assert got["data.source_sync"]["snow/pm_project"] == "unverified"


def test_a_configured_source_never_synced_is_unread(store: Store, tmp_path: Path) -> None:
    config = parse_config(
        '[sources.snow]\nplatform = "servicenow"\nurl = "https://city.service-now.com"\n'
        '[sources.intune]\nplatform = "intune"\n'
        '[sources.ja]\nplatform = "jira_align"\n'
        '[sources.snow2]\nplatform = "servicenow"\nurl = "https://b.service-now.com"\n',
        tmp_path / "crosswalk.toml",
    )
    health = source_health(store.engine, config)
    assert health["snow2"]["problems"] == ["never synced"]
    got = _run(store, "endpoint.intune_in_cmdb", config=config)
    # A second CMDB that never synced may hold the devices the first one lacks.
    assert set(got["endpoint.intune_in_cmdb"].values()) == {"unverified"}


def _sync_findings(store: Store, config: Any = None) -> dict[str, Any]:
    controls = load_controls()
    run = run_controls(store, [controls["data.source_sync"]], config=config, now=NOW, record=False)
    return {f.resource: f for f in run.results[0].findings}


def test_a_refused_full_sweep_is_not_synced_completely(store: Store) -> None:
    # What the sync records when the platform counts more rows than the full read returned.
    message = "full read not trusted: the platform counts 6 rows but the read returned 4"
    store.save_cursor(
        "snow", "cmdb_ci_computer", "device", StreamCursor(access="incomplete", message=message)
    )
    _ok_run(store, "snow", outcome="partial", error=f"cmdb_ci_computer: {message}")
    got = _sync_findings(store)
    assert got["snow/cmdb_ci_computer"].status == "alarm"
    assert message in got["snow/cmdb_ci_computer"].reason
    # The streams that did sync completely in that run say so.
    assert got["snow/task_sla"].status == "ok"
    assert got["snow/task_sla"].reason == "synced completely"
    # Deletions were not applied: the CMDB's devices are not known to be the platform's.
    compared = _run(store, "endpoint.intune_in_cmdb")["endpoint.intune_in_cmdb"]
    assert set(compared.values()) == {"unverified"}
    assert source_health(store.engine)["snow"]["unread"] == ["device"]


def test_a_partial_run_no_stream_explains_is_not_ok(store: Store) -> None:
    _ok_run(store, "ja", outcome="partial", error="epics: the read stopped")
    got = _sync_findings(store)
    reason = got["ja/epics"].reason
    assert got["ja/epics"].status == "unverified"
    assert "partial" in reason and "epics: the read stopped" in reason


def test_a_configured_source_never_synced_is_an_alarm_naming_it(
    store: Store, tmp_path: Path
) -> None:
    config = parse_config(
        '[sources.snow]\nplatform = "servicenow"\nurl = "https://city.service-now.com"\n'
        '[sources.intune]\nplatform = "intune"\n'
        '[sources.ja]\nplatform = "jira_align"\n'
        '[sources.snow2]\nplatform = "servicenow"\nurl = "https://b.service-now.com"\n'
        '[sources.old]\nplatform = "servicenow"\nurl = "https://c.service-now.com"\n'
        "enabled = false\n",
        tmp_path / "crosswalk.toml",
    )
    got = _sync_findings(store, config)
    assert got["snow2"].status == "alarm"
    assert got["snow2"].reason == "never synced: run crosswalk sync snow2"
    assert got["snow2"].source == "snow2"
    assert "old" not in got, "a disabled source is not expected to sync"
    assert got["snow/task_sla"].status == "ok"
    # Without the config the store alone cannot know of snow2.
    assert "snow2" not in _sync_findings(store)


def test_a_source_whose_only_sync_failed_before_any_stream_is_an_alarm(store: Store) -> None:
    _ok_run(store, "pwa", outcome="failed", error="authentication failed for source pwa")
    got = _sync_findings(store)
    assert got["pwa"].status == "alarm"
    assert got["pwa"].reason == "last sync failed: run crosswalk sync pwa"


def test_a_comparison_with_absent_data_is_skipped(store_url: str) -> None:
    from tests.core.test_compliance_controls import _page, devices

    s = Store(store_url)
    try:
        intune, _cmdb = devices()
        _page(s, "intune", "managedDevices", "device", intune)
        _ok_run(s, "intune")
        got = _run(s, "endpoint.intune_in_cmdb")
        assert set(got["endpoint.intune_in_cmdb"].values()) == {"skip", "unverified"}
        assert got["endpoint.intune_in_cmdb"]["intune/i3"] == "skip"
    finally:
        s.close()


WRITER = """
id: test.sneaky
title: A control that tries to write
severity: low
domain: data
rationale: none
remediation: none
query: |
  WITH gone AS (DELETE FROM devices RETURNING source_id)
  SELECT 'ok' AS status, source_id AS resource, 'x' AS reason FROM gone
"""


def test_control_queries_run_without_jit_on_postgresql(store: Store) -> None:
    """A control's plan is never compiled: its cost grows with the store, and PostgreSQL's
    JIT thresholds are crossed long before compiling pays."""
    import yaml

    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL compiles plans; SQLite does not")
    (control,) = parse_controls(
        {
            **yaml.safe_load(WRITER),
            "query": "SELECT CASE WHEN current_setting('jit') = 'off' THEN 'ok' ELSE 'alarm' "
            "END AS status, 'x' AS resource, current_setting('jit') AS reason",
        },
        "test",
    )
    run = run_controls(store, [control], now=NOW, record=False)
    assert run.results[0].error is None
    assert [f.status for f in run.results[0].findings] == ["ok"]


def test_control_queries_run_read_only(store: Store) -> None:
    import yaml

    controls = parse_controls(yaml.safe_load(WRITER), "test")
    with pytest.raises(ConfigError, match="must be a SELECT"):
        parse_controls({**yaml.safe_load(WRITER), "query": "DELETE FROM devices"}, "t")
    if store.dialect == "sqlite":
        # SQLite takes a WITH clause before a DELETE: it passes the SELECT/WITH check, and
        # only the read-only connection stands between it and the store.
        sneaky = controls[0].model_copy(
            update={"query": "WITH gone AS (SELECT 1) DELETE FROM devices"}
        )
        refusal = "readonly"
    else:
        sneaky = controls[0]
        refusal = "read-only transaction"
    run = run_controls(store, [sneaky], now=NOW, record=False)
    assert refusal in (run.results[0].error or "")
    assert run.exit_code == 3
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM devices")).scalar() == 12
    # The pooled connection is writable again for the store itself.
    _ok_run(store, "snow")


def test_a_broken_control_is_reported_and_the_others_still_run(store: Store) -> None:
    base = load_controls()["endpoint.primary_user"]
    broken = [
        base.model_copy(update={"id": "t.syntax", "query": "SELECT FROM WHERE"}),
        base.model_copy(update={"id": "t.columns", "query": "SELECT 'ok' AS status FROM devices"}),
        base.model_copy(
            update={
                "id": "t.status",
                "query": "SELECT 'maybe' AS status, 'r' AS resource, '' AS reason",
            }
        ),
        base.model_copy(
            update={
                "id": "t.param",
                "query": "SELECT 'ok' AS status, 'r' AS resource, :nope AS reason",
            }
        ),
        base,
    ]
    run = run_controls(store, broken, now=NOW)
    errors = {r.control.id: r.error for r in run.results}
    assert errors["t.syntax"]
    assert "no column resource, reason" in errors["t.columns"]
    assert "status 'maybe'" in errors["t.status"]
    assert ":nope" in errors["t.param"] and ":now" in errors["t.param"]
    assert errors["endpoint.primary_user"] is None
    assert run.results[-1].count("alarm") == 1
    assert run.exit_code == 3


def test_yaml_problems_name_the_file_and_the_key(tmp_path: Path) -> None:
    folder = tmp_path / "controls"
    folder.mkdir()
    (folder / "bad.yaml").write_text(
        "id: city.x\ntitle: X\nseverity: urgent\ndomain: endpoints\nrationale: r\n"
        "remediation: r\nquery: SELECT 1\nqurey: typo\n"
    )
    with pytest.raises(ConfigError) as err:
        load_controls([folder])
    message = str(err.value)
    assert "bad.yaml" in message
    assert "severity" in message and "qurey: unknown key" in message
    (folder / "bad.yaml").write_text("id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line"):
        load_controls([folder])


CITY_CONTROL = """
controls:
  - id: city.laptops_named
    title: Laptops follow the naming standard
    severity: low
    domain: endpoints
    rationale: Names tell the service desk whose laptop it is.
    remediation: Rename it.
    benchmarks: [city, naming]
    references: {city: [ITD-NAME-1]}
    entity: device
    query: |
      SELECT source || '/' || source_id AS resource, source, department,
             CASE WHEN name LIKE '%-LT-%' OR name LIKE '%-PH-%' THEN 'ok' ELSE 'alarm' END AS status,
             'name ' || name AS reason
      FROM devices WHERE platform = 'intune' AND deleted = FALSE
  - id: endpoint.primary_user
    title: Overridden by the City
    severity: info
    domain: endpoints
    rationale: r
    remediation: r
    benchmarks: [naming]
    query: SELECT 'ok' AS status, 'x' AS resource, 'y' AS reason
"""


class TinyPlugin:
    """A third-party plugin adding one control through the hook."""

    @hookimpl
    def register_controls(self, register: Any) -> None:
        register(
            {
                "id": "vendor.parks_devices",
                "title": "Parks has no unmanaged devices",
                "severity": "medium",
                "domain": "endpoints",
                "rationale": "r",
                "remediation": "r",
                "benchmarks": ["naming"],
                "query": "SELECT 'alarm' AS status, name AS resource, 'in the CMDB only' AS reason "
                "FROM devices WHERE department = 'Parks' AND deleted = FALSE",
            }
        )


def test_controls_from_config_folders_and_plugins(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "city-controls"
    folder.mkdir()
    (folder / "naming.yaml").write_text(CITY_CONTROL)
    config = parse_config('[controls]\nfolders = ["city-controls"]\n', tmp_path / "crosswalk.toml")
    pm = make_registry(builtins=(), entry_points_group=None)
    pm.register(TinyPlugin(), name="tiny")
    controls = controls_for(config, pm)
    assert controls["endpoint.primary_user"].title == "Overridden by the City"
    assert controls["vendor.parks_devices"].origin == "plugin tiny"
    assert controls["city.laptops_named"].origin.endswith("naming.yaml")
    chosen = select(controls, benchmark="naming")
    assert [c.id for c in chosen] == [
        "city.laptops_named",
        "endpoint.primary_user",
        "vendor.parks_devices",
    ]
    run = run_controls(store, chosen, now=NOW, record=False)
    got = {r.control.id: {f.resource: f.status for f in r.findings} for r in run.results}
    assert got["vendor.parks_devices"] == {
        "PRK-LT-0001": "alarm",
        "PRK-LT-0002": "alarm",
        "PRK-LT-0003": "alarm",
    }
    assert set(got["city.laptops_named"].values()) == {"ok"}
    with pytest.raises(
        ConfigError, match="no benchmark 'nist'; known: cis-v8, city, naming, nist-800-53"
    ):
        select(controls, benchmark="nist")
    # Framework benchmarks: every control that maps to the framework, wherever it came from.
    cis = {c.id for c in select(controls, benchmark="cis-v8")}
    assert "endpoint.disk_encryption" in cis and "portfolio.business_case" not in cis
    assert all(c.references.cis for c in select(controls, benchmark="cis-v8"))
    nist = {c.id for c in select(controls, benchmark="nist-800-53")}
    assert "portfolio.business_case" in nist and "city.laptops_named" not in nist
    with pytest.raises(ConfigError, match="no control nope"):
        select(controls, ids=["nope"])


def test_a_plugin_may_register_a_control_object_or_a_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(CITY_CONTROL)
    made = Control(
        id="vendor.made",
        title="t",
        severity="low",
        domain="data",
        rationale="r",
        remediation="r",
        query="SELECT 'ok' AS status, 'r' AS resource, '' AS reason",
    )
    controls = load_controls((), [made, path])
    assert controls["vendor.made"].origin == "plugin"
    assert "city.laptops_named" in controls
    with pytest.raises(ConfigError, match="register a Control"):
        load_controls((), [42])
