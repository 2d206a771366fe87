"""The compliance report in a real browser: headless Chromium (Debian's ``chromium``) opens the
one HTML file with the network off, the screenshot is not blank, and the numbers on the page
are the JSON's. Skipped without Chromium, except under CI=true, where it must run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.reports import render
from itcrosswalk.core.reports.compliance import report_for
from tests.core.test_compliance_controls import NOW, city_store


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI must render the report in Chromium: apt-get install -y chromium")
    pytest.skip("no chromium on this machine (apt-get install -y chromium)")


def _browse(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            # Self-contained means readable offline: send every request nowhere.
            "--proxy-server=127.0.0.1:9",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_the_report_renders_in_chromium_with_the_json_numbers(tmp_path: Path) -> None:
    binary = _chromium()
    store = city_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        run = run_controls(store, list(load_controls().values()), benchmark="city", now=NOW)
        data = report_for(store.engine, run_id=run.run_id)
    finally:
        store.close()
    page = render.write(data, "html", tmp_path / "compliance.html")
    url = page.resolve().as_uri()

    shot = tmp_path / "shot.png"
    result = _browse(binary, tmp_path, f"--screenshot={shot}", "--window-size=1200,1800", url)
    assert shot.exists(), result.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        gray = image.convert("L")
        histogram = gray.histogram()
        total = sum(histogram)
        dark = sum(histogram[:200])
        colours = len(image.convert("RGB").getcolors(maxcolors=1 << 24) or [])
    assert image.size == (1200, 1800)
    assert dark / total > 0.01, "the page is blank"
    assert colours > 20, "text and charts, not a flat colour"

    dom = _browse(binary, tmp_path, "--dump-dom", url).stdout
    s = data["summary"]

    def value(element_id: str) -> str:
        match = re.search(rf'id="{element_id}"[^>]*data-value="([^"]*)"', dom)
        assert match, f"#{element_id} is not in the rendered page"
        return match.group(1)

    assert value("alarms") == str(s["alarm"])
    assert value("unverified") == str(s["unverified"])
    assert value("new-alarms") == str(s["new_alarms"])
    assert value("fixed") == str(s["fixed"])
    assert float(value("pass-rate")) == s["pass_rate"]
    assert value("controls-failed") == str(s["controls_failed"])
    for severity, n in s["alarms_by_severity"].items():
        assert f'data-severity="{severity}" data-value="{n}"' in dom
    # Findings that need attention are grouped by control and reason (a thousand findings read
    # as a dozen lines), and the groups add up to the JSON's counts.
    groups = re.findall(r'class="finding-group" data-status="(\w+)" data-count="(\d+)"', dom)
    assert sum(int(n) for status, n in groups if status == "alarm") == s["alarm"]
    assert sum(int(n) for status, n in groups if status == "unverified") == s["unverified"]
    assert dom.count('class="finding"') <= len(groups) * 10
    for control in data["controls"]:
        row = re.search(rf'data-control="{re.escape(control["id"])}">(.*?)</tr>', dom, re.S)
        assert row, control["id"]
        cells = dict(re.findall(r'data-field="(\w+)">(\d+)<', row.group(1)))
        assert cells == {
            "alarm": str(control["counts"]["alarm"]),
            "unverified": str(control["counts"]["unverified"]),
            "ok": str(control["counts"]["ok"]),
            "new": str(control["new"]),
            "fixed": str(control["fixed"]),
        }
    assert dom.count("<svg") == 3


def test_the_report_prints(tmp_path: Path) -> None:
    binary = _chromium()
    store = city_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        run = run_controls(store, list(load_controls().values()), now=NOW)
        data = report_for(store.engine, run_id=run.run_id)
    finally:
        store.close()
    page = render.write(data, "html", tmp_path / "compliance.html")
    pdf = tmp_path / "compliance.pdf"
    result = _browse(
        binary, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.resolve().as_uri()
    )
    assert pdf.exists(), result.stderr[-2000:]
    content = pdf.read_bytes()
    assert content.startswith(b"%PDF-")
    pages = re.findall(rb"/Type\s*/Page[^s]", content)
    count = re.search(rb"/Count (\d+)", content)
    assert (count and int(count.group(1)) >= 2) or len(pages) >= 2, "the findings run over pages"
