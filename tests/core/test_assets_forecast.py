"""The refresh forecast: a hand-worked fleet, bad input, the page in Chromium, and the demo's
forecast against one worked out from the seeded city by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.assets.forecast import forecast, render_html, write
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.metrics.knowledge import fiscal_year
from itcrosswalk.core.model import Asset, Device, normalize_serial
from itcrosswalk.core.store import Store, StreamCursor
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox.knowledge import REFRESH_YEARS, UNIT_PRICES
from itcrosswalk.sandbox.world import generate
from tests.core.test_reports_chromium import _browse, _chromium

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def asset(sid: str, category: str | None, state: str = "in_use", **kw: Any) -> Asset:
    return Asset(
        source="snow",
        platform="servicenow",
        source_id=sid,
        serial=f"SER{sid}",
        model_category=category,
        state=state,
        department=kw.pop("department", "Police"),
        **kw,
    )


def fleet(url: str) -> Store:
    store = Store(url)
    store.write_page(
        source="snow",
        stream="alm_hardware",
        entity="asset",
        records=[
            # due 2026-08-01, already past: overdue, this fiscal year (FY2027), 1450
            asset("h1", "Laptop", purchase_date=date(2022, 8, 1)),
            # due 2028-01-15: FY2028, 650 x 1.03 = 669.50; Intune last saw it 75 days ago
            asset("h2", "Phone", purchase_date=date(2025, 1, 15), department="Fire"),
            # due 2029-07-01: FY2030, 1100 x 1.03^3 = 1202.00; Intune does not know it
            asset("h3", "Desktop", purchase_date=date(2024, 7, 1)),
            # no purchase date: due at its warranty end 2027-03-01, FY2027, 520
            asset("h4", "Tablet", warranty_expiration=date(2027, 3, 1)),
            # no date at all: undated
            asset("h5", "Laptop"),
            # retired: not in the forecast
            asset("h6", "Laptop", state="retired", purchase_date=date(2015, 1, 1)),
            # a category without a price, due 2027-01-01 (default 4 years): FY2027, no cost
            asset("h7", "Plotter", purchase_date=date(2023, 1, 1)),
            # due 2030-01-01: FY2030, 1450 x 1.03^3 = 1584.45
            asset("h8", "Laptop", purchase_date=date(2026, 1, 1)),
            # due 2031-07-01: FY2032, after the five years forecast
            asset("h9", "Laptop", purchase_date=date(2027, 7, 1)),
        ],
        cursor=StreamCursor(watermark=NOW, access="ok"),
    )
    store.write_page(
        source="intune",
        stream="managedDevices",
        entity="device",
        records=[
            Device(source="intune", platform="intune", source_id="d1", serial="serh1",
                   enrolled_at=NOW - timedelta(days=900), last_seen_at=NOW - timedelta(days=3)),
            Device(source="intune", platform="intune", source_id="d2", serial="SER h2",
                   enrolled_at=NOW - timedelta(days=600), last_seen_at=NOW - timedelta(days=75)),
        ],
        cursor=StreamCursor(watermark=NOW, access="ok"),
    )  # fmt: skip
    return store


def test_the_forecast_of_a_hand_worked_fleet(store_url: str) -> None:
    store = fleet(store_url)
    try:
        result = forecast(store, Config(), now=NOW)
    finally:
        store.close()
    rows = {r["fiscal_year"]: r for r in result.rows}
    assert list(rows) == ["FY2027", "FY2028", "FY2029", "FY2030", "FY2031"]
    assert rows["FY2027"] == {
        "fiscal_year": "FY2027", "devices": 3, "cost": 1970.0, "overdue": 1,
        "idle_in_intune": 0, "missing_in_intune": 2, "warranties_ending": 1,
    }  # fmt: skip
    assert rows["FY2028"]["devices"] == 1 and rows["FY2028"]["cost"] == 669.5
    assert rows["FY2028"]["idle_in_intune"] == 1
    assert rows["FY2029"]["devices"] == 0
    assert rows["FY2030"]["devices"] == 2 and rows["FY2030"]["cost"] == 2786.45
    assert result.total_devices == 6 and result.total_cost == 5425.95
    assert result.undated == 1 and result.unpriced == ["Plotter"]
    assert result.groups["Fire"] == dict.fromkeys(range(2027, 2032), 0.0) | {2028: 669.5}


def test_bad_options_and_an_empty_store_say_what_to_do(store_url: str) -> None:
    store = Store(store_url)
    try:
        with pytest.raises(ConfigError, match="alm_hardware"):
            forecast(store, Config(), now=NOW)
        with pytest.raises(ConfigError, match="--by"):
            forecast(store, Config(), now=NOW, by="colour")
    finally:
        store.close()


def test_the_forecast_page_renders_in_chromium_with_its_numbers(tmp_path: Path) -> None:
    binary = _chromium()
    store = fleet(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        result = forecast(store, Config(), now=NOW, by="department")
    finally:
        store.close()
    paths = write(result, tmp_path / "out")
    page = paths[0]
    assert "<svg" in render_html(result)
    shot = tmp_path / "shot.png"
    _browse(binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri())
    from PIL import Image

    with Image.open(shot) as image:
        colours = len(image.convert("RGB").getcolors(maxcolors=1 << 24) or [])
    assert colours > 20, "text and a chart, not a blank page"
    dom = _browse(binary, tmp_path, "--dump-dom", page.as_uri()).stdout
    assert 'id="total-devices" data-value="6"' in dom
    assert 'id="total-cost" data-value="5425.95"' in dom
    assert dom.count('class="year"') == 5
    assert dom.count("<svg") == 1
    from openpyxl import load_workbook

    book = load_workbook(paths[1])
    assert book.sheetnames == ["Fiscal years", "By department", "Devices"]
    assert [c.value for c in book["Fiscal years"]["C"]][1:] == [1970.0, 669.5, 0.0, 2786.45, 0.0]


def hand_forecast(moment: datetime, seed: int, size: str) -> dict[str, Any]:
    """The seeded city's refresh forecast worked from the world itself: the devices the CMDB
    holds in use, their category's refresh age and price, 3% a year."""
    world = generate(seed, size, now=moment)
    today = moment.date()
    current = fiscal_year(today, 7)
    years: dict[int, list[float]] = {y: [] for y in range(current, current + 5)}
    for device in world.devices:
        life = world.knowledge.assets.get(device.id)
        if life is None or life.state != "In use":
            continue
        if device.purchase_date:
            refresh = REFRESH_YEARS[life.model_category]
            try:
                due = device.purchase_date.replace(year=device.purchase_date.year + refresh)
            except ValueError:
                due = date(device.purchase_date.year + refresh, 2, 28)
        elif device.warranty_expiration:
            due = device.warranty_expiration
        else:
            continue
        year = max(current, fiscal_year(due, 7))
        if year in years:
            years[year].append(
                round(UNIT_PRICES[life.model_category] * 1.03 ** (year - current), 2)
            )
    return {
        f"FY{y}": {"devices": len(costs), "cost": round(sum(costs), 2)}
        for y, costs in years.items()
    }


def test_the_demo_writes_the_forecast_the_seeded_city_gives_by_hand(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    result = CliRunner().invoke(
        make_cli(make_registry(entry_points_group=None)),
        ["demo", "--dir", str(directory), "--size", "tiny"],
    )
    assert result.exit_code in (0, 3), result.output
    assert "knowledge and problems" in result.output
    for metric in ("kb.live_share", "kb.unused_articles", "problem.rca_completion"):
        assert metric in result.output
    data = json.loads((directory / "forecast" / "forecast.json").read_text())
    assert (directory / "forecast" / "forecast.xlsx").exists()
    expected = hand_forecast(datetime.fromisoformat(data["moment"]), 7, "tiny")
    got = {r["fiscal_year"]: {"devices": r["devices"], "cost": r["cost"]} for r in data["rows"]}
    assert got == expected
    assert data["total_cost"] == round(sum(v["cost"] for v in expected.values()), 2)
    assert data["total_devices"] > 0
    # Idle and missing are Intune's view of the same serials.
    world = generate(7, "tiny", now=datetime.fromisoformat(data["moment"]))
    managed = {normalize_serial(d.serial) for d in world.devices if d.in_intune}
    missing = sum(
        1
        for d in data["devices"]
        if d["fiscal_year"] and normalize_serial(d["serial"]) not in managed
    )
    assert sum(r["missing_in_intune"] for r in data["rows"]) == missing
