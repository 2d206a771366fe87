"""The seeded city over loopback HTTPS: ServiceNow resource plans and Clarity team allocations
sync through the real clients, the people the world double-booked are found exactly (and only
in the sum), and the heatmap shows them in headless Chromium. SQLite and PostgreSQL give the
same plan."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.capacity import plan
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import World, generate
from tests.core.test_metrics_stores import postgres_url  # noqa: F401 - a fixture
from tests.core.test_reports_chromium import _browse, _chromium

PLATFORMS = ["servicenow", "clarity", "project_online"]


def _window(world: World) -> tuple[date, date]:
    first = date(world.now.year, world.now.month, 1)
    months = first.year * 12 + first.month - 1 + 6
    return first, date(months // 12, months % 12 + 1, 1)


def _synced(world: World, directory: Path, urls: list[str], pm: Any) -> Path:
    with runner.start(world, pm=pm, platforms=PLATFORMS) as box:
        path = runner.write_config(box, directory, store_url=urls[0])
        config = load_config(path)
        for url in urls:
            store = Store(url)
            try:
                engine = SyncEngine(config, store, pm=pm)
                for name in config.sources:
                    assert engine.sync(name).exit_code == 0, name
            finally:
                store.close()
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path, Any]:
    pm = make_registry(entry_points_group=None)
    world = generate(7, "tiny")
    directory = tmp_path_factory.mktemp("capacity-demo")
    path = _synced(world, directory, [f"sqlite:///{directory / 'store.db'}"], pm)
    return world, path, pm


def test_the_double_booked_people_are_found_exactly_and_only_in_the_sum(
    city: tuple[World, Path, Any],
) -> None:
    world, path, pm = city
    start, end = _window(world)
    result = CliRunner().invoke(
        make_cli(pm),
        ["--config", str(path), "capacity", "--from", str(start), "--to", str(end),
         "--format", "json", "-o", str(path.parent / "capacity")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    upn = {p.id: p.upn for p in world.people}
    expected = {upn[i] for i in world.double_booked}
    assert len(expected) == 3
    assert set(data["over_allocated"]) == expected
    assert {f["person"] for f in data["multi_platform_overbooked"]} == expected
    assert all(f["hidden"] for f in data["multi_platform_overbooked"])  # no platform alone sees it
    assert all(
        set(f["by_platform"]) == {"servicenow", "clarity"}
        for f in data["multi_platform_overbooked"]
    )
    # Role demand with nobody named is shown apart, not on anybody's row.
    assert set(data["generic_demand"]) == {"DBA", "Network Engineer"}
    for name in ("capacity.html", "capacity.xlsx", "capacity.json"):
        assert (path.parent / "capacity" / name).stat().st_size > 0


def test_each_platforms_hours_land_in_the_month_they_are_booked(
    city: tuple[World, Path, Any],
) -> None:
    world, path, _pm = city
    config = load_config(path)
    start, end = _window(world)
    store = Store(config.store.url)
    try:
        result = plan(store, config, start=start, end=end)
    finally:
        store.close()
    upn = {p.id: p.upn for p in world.people}
    booked: dict[tuple[str, str, date], float] = {}
    clarity_projects = {w.id for w in world.work if w.platform == "clarity"}
    for b in world.bookings:
        if b.person_id is None or b.platform not in PLATFORMS:
            continue
        if b.platform == "clarity" and b.work_id not in clarity_projects:
            continue
        for month, hours in b.months.items():
            key = (upn[b.person_id], b.platform, month)
            booked[key] = booked.get(key, 0.0) + hours
    assert booked
    for (person, platform, month), hours in booked.items():
        cell = result.person_cells[person][month]
        assert cell.by_platform[platform] == pytest.approx(hours), (person, platform, month)


def test_project_servers_part_time_calendar_is_the_capacity(
    city: tuple[World, Path, Any],
) -> None:
    world, path, _pm = city
    config = load_config(path)
    start, end = _window(world)
    store = Store(config.store.url)
    try:
        result = plan(store, config, start=start, end=end)
    finally:
        store.close()
    [(person_id, share)] = world.part_time.items()
    upn = next(p.upn for p in world.people if p.id == person_id)
    assert result.capacity_basis[upn] == "platform"
    months = sorted(m for b in world.bookings if b.person_id == person_id for m in b.months)
    for month in months:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        weekdays = sum(
            1 for n in range((following - month).days) if (month.toordinal() + n) % 7 not in (0, 6)
        )  # date.toordinal() % 7: 0 is Sunday, 6 Saturday
        # Project's calendar: 8 h x 60 % on every weekday (it keeps no City holiday).
        assert result.person_cells[upn][month].capacity == pytest.approx(8 * share * weekdays)


def test_the_heatmap_shows_them_in_chromium(city: tuple[World, Path, Any], tmp_path: Path) -> None:
    binary = _chromium()
    world, path, _pm = city
    page = path.parent / "capacity" / "capacity.html"
    if not page.exists():
        pytest.skip("the CLI test writes the heatmap first")
    dom = _browse(binary, tmp_path, "--dump-dom", page.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    upn = {p.id: p.upn for p in world.people}
    rows = re.findall(r'<tr data-row="([^"]+)" class="double">', dom.stdout)
    assert set(rows) == {upn[i] for i in world.double_booked}
    for person in rows:
        row = dom.stdout.split(f'data-row="{person}"', 1)[1].split("</tr>", 1)[0]
        hot = [float(u) for u in re.findall(r'data-utilization="([\d.]+)"', row)]
        assert sum(u > 1.1 for u in hot) >= 2, person
        assert "#ef9a9a" in row  # coloured as over 110 %
    shot = tmp_path / "shot.png"
    _browse(
        binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,1400", page.resolve().as_uri()
    )
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
        red = sum(n for n, rgb in colours if rgb == (0xEF, 0x9A, 0x9A))
    assert red > 500, "the over-allocated cells are not painted"


@pytest.mark.postgres
def test_both_stores_give_the_same_plan(tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    pm = make_registry(entry_points_group=None)
    world = generate(7, "tiny")
    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
    path = _synced(world, tmp_path, [sqlite_url, postgres_url], pm)
    config = load_config(path)
    start, end = _window(world)
    answers = []
    for url in (sqlite_url, postgres_url):
        store = Store(url)
        try:
            for by in ("person", "role", "department", "platform"):
                answers.append(
                    (url, by, plan(store, config, start=start, end=end, by=by).as_json())
                )
        finally:
            store.close()
    half = len(answers) // 2
    for (_a, by, left), (_b, _by, right) in zip(answers[:half], answers[half:], strict=True):
        assert left == right, by
