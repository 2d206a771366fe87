"""``crosswalk assets forecast`` through the CLI: the table, the files, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.registry import make_registry
from tests.core.test_assets_forecast import NOW, fleet


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "crosswalk.toml"
    path.write_text(f'[store]\nurl = "{url}"\n\n[assets]\ninflation = 0.0\n')
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(make_cli(make_registry(entry_points_group=None)), list(args))


def test_forecast_prints_the_years_and_writes_html_xlsx_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fleet(url).close()
    config = _config(tmp_path, url)
    out = tmp_path / "out"
    result = _run(
        "--config", str(config), "assets", "forecast", "--by", "model", "--years", "3",
        "--format", "json", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["fiscal_year"] for r in rows][0].startswith("FY")
    assert len(rows) == 3
    data = json.loads((out / "forecast.json").read_text())
    assert data["by"] == "model"
    assert (out / "forecast.html").read_text().count("<svg") == 1
    assert (out / "forecast.xlsx").stat().st_size > 0
    # inflation 0 in this config: every year is priced at today's list
    assert all(d["cost"] in (None, 1450.0, 650.0, 1100.0, 520.0) for d in data["devices"])
    assert NOW.year == 2026


def test_bad_grouping_is_a_usage_error_and_an_empty_store_says_what_to_sync(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    config = _config(tmp_path, url)
    bad = _run("--config", str(config), "assets", "forecast", "--by", "colour")
    assert bad.exit_code == 2 and "colour" in bad.output
    empty = _run("--config", str(config), "assets", "forecast")
    assert empty.exit_code == 1
    assert "alm_hardware" in empty.output and "Traceback" not in empty.output
