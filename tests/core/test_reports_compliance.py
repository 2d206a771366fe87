"""The compliance report: new, fixed and trend from the history; ``--as-of`` exactly as it
stood; every format; everything from a platform escaped or neutralized."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.model import Device
from itcrosswalk.core.reports import compliance, render
from itcrosswalk.core.reports.compliance import NoHistory, pick_run, report_for
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import NOW, _page, city_store

WEEK = timedelta(days=7)
IDS = ["endpoint.disk_encryption", "endpoint.primary_user", "portfolio.business_case"]


def _controls() -> list[Any]:
    controls = load_controls()
    return [controls[i] for i in IDS]


def _set_device(store: Store, source_id: str, **values: Any) -> None:
    table = store.table("device")
    with store.engine.begin() as conn:
        conn.execute(table.update().where(table.c.source_id == source_id).values(**values))


@pytest.fixture
def two_runs(store_url: str) -> Any:
    """Run 1 a week before NOW; then i2 gets encrypted and i1 loses it; run 2 at NOW."""
    store = city_store(store_url)
    first = run_controls(store, _controls(), benchmark="city", now=NOW - WEEK)
    first_report = report_for(store.engine, run_id=first.run_id)
    _set_device(store, "i2", encrypted=True)
    _set_device(store, "i1", encrypted=False)
    second = run_controls(store, _controls(), benchmark="city", now=NOW)
    yield store, first_report, second
    store.close()


def test_new_fixed_and_trend_since_the_last_run(two_runs: Any) -> None:
    store, first_report, second = two_runs
    data = report_for(store.engine)
    assert data["run_id"] == second.run_id
    s = data["summary"]
    assert first_report["summary"]["compared_with_earlier_run"] is False
    assert s["compared_with_earlier_run"] is True
    new = [(f["control_id"], f["resource"]) for f in data["findings"] if f["new"]]
    assert new == [("endpoint.disk_encryption", "intune/i1")]
    assert s["new_alarms"] == 1
    assert [(x["control_id"], x["resource"], x["now"]) for x in data["fixed"]] == [
        ("endpoint.disk_encryption", "intune/i2", "ok or gone")
    ]
    # Run 1 (a week before NOW): i3, seen 45 days before NOW, was seen 38 days before then.
    assert [p["run_id"] for p in data["trend"]] == [first_report["run_id"], second.run_id]
    assert [p["alarm"] for p in data["trend"]] == [3, 3]
    encryption = next(c for c in data["controls"] if c["id"] == "endpoint.disk_encryption")
    assert encryption["counts"] == {"alarm": 1, "unverified": 2, "info": 0, "skip": 0, "ok": 3}
    assert (encryption["new"], encryption["fixed"], encryption["verdict"]) == (1, 1, "fail")
    assert s["alarms_by_severity"] == {"critical": 0, "high": 2, "medium": 0, "low": 1, "info": 0}
    # ok 3 + 5 (primary user) + 1 (business case) over 9 ok + 3 alarms + 3 unverified
    assert s["pass_rate"] == round(9 / 15, 4)
    assert compliance.exit_code(data) == 3
    # Police: i1 (Police through its owner) lost encryption, i2 has no primary user; i1's
    # primary user and i2's encryption are ok. The ok ones are kept as counts, not rows.
    police = next(d for d in data["by_department"] if d["department"] == "Police")
    assert (police["alarm"], police["unverified"], police["ok"]) == (2, 0, 2)
    with store.engine.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT status, COUNT(*) FROM findings WHERE run_id = :r GROUP BY status"),
            {"r": second.run_id},
        ).all()
    assert dict(kept) == {"alarm": 3, "unverified": 3}


def test_as_of_renders_the_past_run_exactly_as_it_stood(two_runs: Any) -> None:
    store, first_report, _second = two_runs
    day = (NOW - WEEK).date()
    assert pick_run(store.engine, day) == first_report["run_id"]
    again = report_for(store.engine, as_of=day)
    assert again == first_report
    assert render.render(again, "html") == render.render(first_report, "html")
    # Even after the controls' descriptions change, the past report keeps the old ones.
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE devices SET department = 'Moved'"))
    assert report_for(store.engine, as_of=day) == first_report
    with pytest.raises(NoHistory, match="on or before 2026-01-01"):
        pick_run(store.engine, (NOW - 400 * WEEK / 7).date().replace(year=2026, month=1, day=1))


def _hostile(store: Store) -> None:
    _page(
        store,
        "intune",
        "managedDevices",
        "device",
        [
            Device(
                source="intune",
                platform="intune",
                source_id="evil",
                name='=HYPERLINK("https://evil.example","<script>alert(\'x\')</script>|*bold*")',
                serial="=1+2",
                url="javascript:alert(1)",
                department="<img src=x onerror=alert(2)>",
                encrypted=False,
                last_seen_at=NOW,
                owner="=cmd|' /C calc'!A0",
            )
        ],
    )


def test_everything_from_a_platform_is_escaped_or_neutralized(store_url: str) -> None:
    store = city_store(store_url)
    try:
        _hostile(store)
        run = run_controls(store, _controls(), now=NOW)
        data = report_for(store.engine, run_id=run.run_id)
    finally:
        store.close()
    page = render.render(data, "html").decode()
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "javascript:" not in page
    assert 'href="https://intune.microsoft.com/#view/devices/i2"' in page
    assert 'href="https://evil.example' not in page
    assert 'src="http' not in page and "<link" not in page  # nothing is fetched
    markdown = render.render(data, "md").decode()
    assert "&lt;script&gt;" in markdown and "\\|\\*bold\\*" in markdown
    assert "&lt;img src=x onerror=alert(2)&gt;" in markdown
    rows = list(csv.DictReader(io.StringIO(render.render(data, "csv").decode())))
    evil = [r for r in rows if r["resource"] == "intune/evil"]
    assert len(evil) == 1 and all(r["label"].startswith("'=HYPERLINK(") for r in evil)
    assert (
        json.loads(
            next(r for r in evil if r["control_id"] == "endpoint.disk_encryption")["dimensions"]
        )["serial"]
        == "=1+2"
    )
    assert all(r["department"] == "<img src=x onerror=alert(2)>" for r in evil)
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render.render(data, "xlsx")))
    assert book.sheetnames == [
        "Summary",
        "Controls",
        "Findings",
        "New",
        "Fixed",
        "Departments",
        "Trend",
        "Sources",
    ]
    cells = [c for row in book["Findings"].iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells), "no cell is a formula"
    labels = [c.value for c in cells if str(c.value).lstrip("'").startswith("=HYPERLINK")]
    assert labels and all(str(v).startswith("'=") for v in labels)
    departments = [c.value for c in book["Departments"]["A"]]
    assert "'<img src=x onerror=alert(2)>" not in departments  # it does not start with =+-@
    assert "<img src=x onerror=alert(2)>" in departments


def test_every_format_renders_the_same_numbers(two_runs: Any, tmp_path: Path) -> None:
    store, _first, _second = two_runs
    data = report_for(store.engine)
    as_json = json.loads(render.render(data, "json"))
    assert as_json["summary"] == data["summary"]
    page = render.render(data, "html").decode()
    assert 'id="alarms" data-value="3"' in page
    assert f'data-value="{data["summary"]["pass_rate"]}"' in page
    assert page.count("<svg") == 3, "three inline charts: controls, departments, trend"
    assert "<script" not in page and 'src="http' not in page
    markdown = render.render(data, "md").decode()
    assert "**Pass rate:** 60.0% (9 ok, 3 alarms, 3 unverified)" in markdown
    assert (
        "| endpoint.disk\\_encryption: Managed devices have their disks encrypted | high | fail | 1 | 2 | 3 | 1 | 1 |"
        in markdown
    )
    rows = list(csv.DictReader(io.StringIO(render.render(data, "csv").decode())))
    # ok findings are kept and shown as counts; every other finding is a row
    assert len(rows) == data["summary"]["findings"] - data["summary"]["ok"] == 6
    assert sum(r["status"] == "alarm" for r in rows) == 3
    from openpyxl import load_workbook

    path = render.write(data, "xlsx", tmp_path / "out" / "c.xlsx")
    book = load_workbook(path)
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows(min_row=2)}
    assert summary["alarm"] == 3 and summary["pass rate"] == data["summary"]["pass_rate"]
    assert book["Findings"].max_row == len(rows) + 1
    with pytest.raises(ValueError, match="unknown report format"):
        render.render(data, "pdf")


def test_safe_url_links_only_http() -> None:
    assert render.safe_url("https://x.service-now.com/a?b=c") == "https://x.service-now.com/a?b=c"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil", None, 3, "https://a b"):
        assert render.safe_url(bad) is None


def test_write_compliance_for_the_demo(store_url: str, tmp_path: Path) -> None:
    store = city_store(store_url)
    try:
        paths = compliance.write_compliance(
            store,
            None,
            make_registry(builtins=(), entry_points_group=None),
            tmp_path / "demo",
            now=NOW,
        )
    finally:
        store.close()
    assert [p.name for p in paths] == ["compliance.html", "compliance.json"]
    data = json.loads(paths[1].read_text())
    assert data["summary"]["controls"] == len(load_controls())
    assert "<svg" in paths[0].read_text()


def test_a_history_made_before_a_column_was_added_still_reads(store_url: str) -> None:
    store = city_store(store_url)
    try:
        run = run_controls(store, _controls(), now=NOW)
        with store.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE compliance_runs DROP COLUMN remediation"))
        again = run_controls(store, _controls(), now=NOW)
        data = report_for(store.engine)
        assert data["run_id"] == again.run_id and data["remediation"] == {}
        assert report_for(store.engine, run_id=run.run_id)["summary"]["alarm"] == 3
    finally:
        store.close()
