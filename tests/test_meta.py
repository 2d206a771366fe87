"""Meta-tests: hooks documented and tested, plugins found through entry points, --help stays light."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk import hookspecs
from itcrosswalk.cli import make_cli
from itcrosswalk.core.model import Ticket
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry
from tests.example_plugin import HELPDESK, install, install_project, on_path
from tests.example_plugin import HERE as EXAMPLES

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


MISFITS = {
    "misspelt": "MISSPELT",
    "badargs": "BAD_ARGUMENTS",
    "raises": "RAISES",
    "wrongtype": "WRONG_TYPE",
    "halfcontrol": "HALF_A_CONTROL",
}
"""Entry point name -> object in ``crosswalk_misfits``: one plugin per way to be broken."""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the example plugins: the guide's Helpdesk plugin, and one that does not import."""
    site = tmp_path / "site"
    site.mkdir()
    install_project(site, HELPDESK)
    install(site, EXAMPLES / "crosswalk_broken", {"broken": "crosswalk_broken"})
    with on_path(site, monkeypatch):
        yield site


def test_an_installed_plugin_is_found_and_a_broken_one_reported(installed: Path) -> None:
    pm = make_registry()
    rows = {row["name"]: row for row in pm.describe()}
    assert rows["helpdesk"]["error"] is None
    assert rows["helpdesk"]["origin"] == "crosswalk-helpdesk"
    assert "register_commands" in rows["helpdesk"]["hooks"]
    assert "ImportError" in rows["broken"]["error"]
    assert "servicenow" in pm.platforms(), "the built-ins still load"
    assert "helpdesk.open_requests" in {m.id for m in pm.metrics()}
    assert "helpdesk.assigned" in {c.id for c in pm.controls()}
    assert "helpdesk.intake" in {t["id"] for t in pm.templates() if isinstance(t, dict)}
    result = CliRunner().invoke(make_cli(pm), ["helpdesk-statuses"])
    assert result.exit_code == 0, result.output
    assert "pending -> on_hold" in result.output
    listing = CliRunner().invoke(make_cli(pm), ["plugins", "--format", "json"])
    assert listing.exit_code == 3  # a plugin failed to load: attention, not a crash
    assert "crosswalk_broken needs a vendor SDK" in listing.output


def test_load_plugins_escape_hatch(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITCROSSWALK_LOAD_PLUGINS", "")
    pm = make_registry()
    assert pm.platforms() == {}
    monkeypatch.setenv("ITCROSSWALK_LOAD_PLUGINS", "servicenow,helpdesk")
    pm = make_registry()
    names = {row["name"] for row in pm.describe()}
    assert names == {"standard", "servicenow", "helpdesk"}  # the standard pack always loads


def test_a_plugin_whose_hook_raises_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    class Faulty:
        @hookspecs.hookimpl
        def register_platforms(self, register: object) -> None:
            raise RuntimeError("boom in register_platforms")

    pm = make_registry(entry_points_group=None)
    pm.register(Faulty(), name="faulty")
    platforms = pm.platforms()
    assert "servicenow" in platforms
    assert "boom in register_platforms" in pm.errors["faulty"]


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


def test_each_way_to_be_broken_is_one_plugin_s_error_and_the_others_work(
    installed: Path, tmp_path: Path
) -> None:
    misfits = {n: f"crosswalk_misfits:{o}" for n, o in MISFITS.items()}
    install(installed, EXAMPLES / "crosswalk_misfits", misfits)
    pm = make_registry()
    runner = CliRunner()
    listing = runner.invoke(make_cli(pm), ["plugins", "--format", "json"])
    assert listing.exit_code == 3, listing.output
    rows = {row["name"]: row for row in json.loads(listing.output)}
    expected = {
        "broken": "ImportError: crosswalk_broken needs a vendor SDK",
        "misspelt": "unknown hook 'register_metric'",
        "badargs": "plugin badargs: register_platforms: missing a required argument: "
        "'adapter'; call register(name, adapter, *, mapping=None, config_model=None)",
        "raises": "plugin raises: register_sandboxes raised RuntimeError: the emulator needs "
        "a vendor file that is missing",
        "halfcontrol": "plugin halfcontrol: register_controls: ",
    }
    for name, message in expected.items():
        assert message in (rows[name]["error"] or ""), (name, rows[name]["error"])
    assert "query" in rows["halfcontrol"]["error"]
    wrong = rows["wrongtype"]["error"]
    assert (
        "plugin wrongtype: register_metrics: a metric must be an instance of a subclass of "
        "itcrosswalk.core.metrics.Metric, got dict"
    ) in wrong
    assert (
        "plugin wrongtype: register_platforms: platform 'wrongtype': the adapter must be a "
        "subclass of itcrosswalk.core.adapter.Adapter"
    ) in wrong
    for good in ("standard", "servicenow", "intune", "jira_align", "project_online", "helpdesk"):
        assert rows[good]["error"] is None, rows[good]
    assert rows["servicenow"]["platforms"] == ["servicenow"]
    assert "badargs" not in pm.platforms() and "wrongtype" not in pm.platforms()
    assert "servicenow" in pm.sandboxes() and "raises" not in {
        s.plugin for s in pm.sandboxes().values()
    }

    # The commands that crashed on a plain-dict metric or a half control now work.
    metrics = runner.invoke(make_cli(pm), ["metrics", "list", "--format", "json"])
    assert metrics.exit_code == 0, metrics.output
    ids = {m["id"] for m in json.loads(metrics.output)}
    assert "helpdesk.open_requests" in ids and "itsm.mttr_hours" in ids
    assert "wrongtype.count" not in ids
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n')
    controls = runner.invoke(
        make_cli(pm), ["--config", str(config), "report", "controls", "--format", "json"]
    )
    assert controls.exit_code == 0, controls.output
    ids = {c["id"] for c in json.loads(controls.output)}
    assert "helpdesk.assigned" in ids and "endpoint.disk_encryption" in ids
    assert "halfcontrol.x" not in ids
    compliance = [
        "--config",
        str(config),
        "report",
        "compliance",
        "--benchmark",
        "helpdesk",
        "--format",
        "json",
    ]
    empty = runner.invoke(make_cli(pm), compliance)
    assert empty.exit_code == 3 and "holds no synced data" in empty.output, empty.output
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    ticket = Ticket(
        source="desk", platform="helpdesk", source_id="1", number="HD-1", kind="request"
    )
    store.write_page(source="desk", stream="requests", entity="ticket", records=[ticket])
    store.close()
    report = runner.invoke(
        make_cli(pm),
        [
            "--config",
            str(config),
            "report",
            "compliance",
            "--benchmark",
            "helpdesk",
            "--format",
            "json",
            "--output",
            str(tmp_path / "c.json"),
        ],
    )
    assert report.exit_code in (0, 3), report.output
    assert json.loads((tmp_path / "c.json").read_text())["summary"]["controls"] == 1


class KeywordPlatform:
    """Registers with keywords, as the hook's documented signature allows."""

    @hookspecs.hookimpl
    def register_platforms(self, register: Any) -> None:
        from tests.core.test_sync import FakeAdapter

        register(name="keywords", adapter=FakeAdapter, mapping={"state": {"1": "new"}})


def test_register_takes_its_arguments_by_position_or_by_keyword() -> None:
    from tests.core.test_sync import FakeAdapter

    pm = make_registry(entry_points_group=None)
    pm.register(KeywordPlatform(), name="kw")
    platforms = pm.platforms()
    assert platforms["keywords"].adapter is FakeAdapter
    assert platforms["keywords"].plugin == "kw"
    assert platforms["keywords"].mapping == {"state": {"1": "new"}}
    assert "servicenow" in platforms and pm.errors == {}


def test_a_misspelt_hook_registered_in_code_is_refused_alone() -> None:
    from tests.example_plugin.crosswalk_misfits import MISSPELT

    pm = make_registry(entry_points_group=None)
    assert pm.register(MISSPELT, name="misspelt") is False
    assert "unknown hook 'register_metric'" in pm.errors["misspelt"]
    assert pm.pm.get_plugin("misspelt") is None, "the broken plugin is not left half-registered"
    assert "servicenow" in pm.platforms() and pm.metrics(), "the others load"


def test_a_plugin_s_registrations_count_only_when_all_of_them_are_valid() -> None:
    class OneGoodOneBad:
        @hookspecs.hookimpl
        def register_metrics(self, register: Any) -> None:
            from tests.core.test_metrics import WaterTickets

            register(WaterTickets())
            register("not a metric")

    pm = make_registry(builtins=(), entry_points_group=None)
    pm.register(OneGoodOneBad(), name="half")
    ids = {m.id for m in pm.metrics()}
    assert "city.water_tickets" not in ids and "itsm.mttr_hours" in ids
    assert "got str 'not a metric'" in pm.errors["half"]


def test_each_cli_reads_its_own_registry_and_plugin_commands_stay_with_it() -> None:
    class Greeter:
        @hookspecs.hookimpl
        def register_commands(self, cli: Any) -> None:
            @cli.command("greet")
            def greet() -> None:
                """Say hello."""
                print("hello")

    with_plugin = make_registry(builtins=(), entry_points_group=None)
    with_plugin.register(Greeter(), name="greeter")
    plain = make_registry(builtins=(), entry_points_group=None)
    runner = CliRunner()
    assert runner.invoke(make_cli(with_plugin), ["greet"]).output == "hello\n"
    # The core's commands are shared module-level objects; a plugin's attach to one CLI only.
    assert runner.invoke(make_cli(plain), ["greet"]).exit_code == 2
    listed = json.loads(runner.invoke(make_cli(plain), ["plugins", "--format", "json"]).output)
    assert [row["name"] for row in listed] == ["standard"]
