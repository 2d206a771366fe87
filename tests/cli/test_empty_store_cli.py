"""Before any sync, the planning commands say there was nothing to judge and exit 3, rather
than printing an empty table (or a frontier of zeros) with exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.migrate import verify
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["capacity"], "no synced source keeps assignments"),
        (["capacity", "--format", "json"], "no synced source keeps assignments"),
        (["portfolio", "economics"], "no funding candidates in the store"),
        (["portfolio", "rank"], "no funding candidates in the store"),
        (["portfolio", "select", "--budget", "1000000"], "no funding candidates in the store"),
    ],
)
def test_a_planning_command_on_an_empty_store_exits_3_and_says_why(
    tmp_path: Path, args: list[str], said: str
) -> None:
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')
    cli = make_cli(make_registry(entry_points_group=None))
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 3, result.output
    assert said in result.stderr


def test_migrate_verify_of_a_source_with_no_projects_is_not_a_clean_move(store_url: str) -> None:
    store = Store(store_url)
    try:
        report = verify(store, "pwa", "planner")
    finally:
        store.close()
    assert report.exit_code == 3 and not report.missing
    assert any("pwa holds no projects" in line for line in report.unverified)
