"""Meta-tests: hooks documented and tested, plugins found through entry points, --help stays light."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from itcrosswalk import hookspecs, plugins
from itcrosswalk.cli import make_cli

HERE = Path(__file__).parent
HOOKS = [
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("register_")
]


def test_every_hook_is_documented() -> None:
    assert HOOKS, "hookspecs declares hooks"
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 20, f"hook {name} has no docstring"


def test_every_hook_is_exercised_by_a_test() -> None:
    sources = "\n".join(p.read_text() for p in HERE.rglob("*.py") if p.name != "test_meta.py")
    for name in HOOKS:
        assert name in sources, f"no test mentions hook {name}"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the example plugins the way pip would: packages plus .dist-info entry points."""
    site = tmp_path / "site"
    site.mkdir()
    for name in ("crosswalk_example", "crosswalk_broken"):
        shutil.copytree(HERE / "example_plugin" / name, site / name)
        info = site / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(
            f"[itcrosswalk]\n{name.removeprefix('crosswalk_')} = {name}\n"
        )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_plugin_is_found_and_a_broken_one_reported(installed: Path) -> None:
    pm = plugins.make_manager()
    rows = {row["name"]: row for row in plugins.describe_plugins(pm)}
    assert rows["example"]["error"] is None
    assert "register_commands" in rows["example"]["hooks"]
    assert "ImportError" in rows["broken"]["error"]
    assert "servicenow" in plugins.get_platforms(pm), "the built-ins still load"
    assert {"id": "example.count", "title": "An example metric"} in plugins.get_metrics(pm)
    assert plugins.get_controls(pm)[0]["id"] == "example.control"
    assert plugins.get_templates(pm)[0]["id"] == "example.template"
    result = CliRunner().invoke(make_cli(pm), ["hello-example"])
    assert result.exit_code == 0, result.output
    assert "hello from crosswalk_example" in result.output
    listing = CliRunner().invoke(make_cli(pm), ["plugins", "--format", "json"])
    assert listing.exit_code == 3  # a plugin failed to load: attention, not a crash
    assert "crosswalk_broken needs a vendor SDK" in listing.output


def test_load_plugins_escape_hatch(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITCROSSWALK_LOAD_PLUGINS", "")
    pm = plugins.make_manager()
    assert plugins.get_platforms(pm) == {}
    monkeypatch.setenv("ITCROSSWALK_LOAD_PLUGINS", "servicenow,example")
    pm = plugins.make_manager()
    names = {row["name"] for row in plugins.describe_plugins(pm)}
    assert names == {"servicenow", "example"}


def test_a_plugin_whose_hook_raises_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Faulty:
        @hookspecs.hookimpl
        def register_platforms(self, register: object) -> None:
            raise RuntimeError("boom in register_platforms")

    pm = plugins.make_manager(entry_points_group=None)
    pm.register(Faulty(), name="faulty")
    platforms = plugins.get_platforms(pm)
    assert "servicenow" in platforms
    assert "boom in register_platforms" in plugins.load_state(pm).errors["faulty"]


def test_help_imports_no_vendor_sdk() -> None:
    code = (
        "import sys\n"
        "from itcrosswalk.cli import main\n"
        "sys.argv = ['crosswalk', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pysnc', 'msgraph', 'azure.identity', 'sqlalchemy', 'keyring') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage: crosswalk" in out
    assert out.strip().endswith("HEAVY="), out
