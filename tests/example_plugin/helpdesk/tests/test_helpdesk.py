"""The Helpdesk plugin's tests: the shared conformance suite against its emulator on loopback
HTTPS, and what is particular to it. The plugin is loaded through its entry point, with the
built-ins, exactly as ``crosswalk`` loads it once installed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.config import Config, load_config
from itcrosswalk.core.metrics import compute_metrics
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from itcrosswalk.registry import PluginRegistry, make_registry
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.server import SandboxServer
from itcrosswalk.sandbox.world import generate
from itcrosswalk.testing import AdapterConformance, ConformanceSetup
from tests.example_plugin import HELPDESK, install_project, on_path

TOKEN = "hd-7c1e0f2a9b"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginRegistry]:
    """The plugin installed as pip installs it, and loaded through its entry point. (In the
    plugin's own repository, ``pip install -e .`` does this and ``make_registry()`` is all.)"""
    site = tmp_path / "site"
    site.mkdir()
    install_project(site, HELPDESK)
    with on_path(site, monkeypatch):
        yield make_registry()


@dataclass
class Desk:
    app: Any
    url: str
    ca: Path
    faults: Faults


@pytest.fixture
def desk(registry: PluginRegistry, tmp_path: Path) -> Iterator[Desk]:
    """The plugin's registered emulator, serving the tiny city on loopback HTTPS."""
    faults = Faults()
    factory = registry.sandboxes()["helpdesk"].factory
    app = factory(generate(7, "tiny"), faults, users={"crosswalk": TOKEN})
    server = SandboxServer({"helpdesk": app})
    url = server.start()["helpdesk"]
    try:
        yield Desk(app, url, server.write_ca(tmp_path / "ca.pem"), faults)
    finally:
        server.stop()


@pytest.fixture
def config(desk: Desk, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("HELPDESK_TOKEN", TOKEN)
    path = tmp_path / "crosswalk.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        f'[sources.desk]\nplatform = "helpdesk"\nurl = "{desk.url}"\nca_bundle = "{desk.ca}"\n'
        'page_size = 4\nauth = { type = "bearer", token = "env:HELPDESK_TOKEN" }\n'
    )
    return load_config(path)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = Store(config.store.url)
    yield opened
    opened.close()


class TestHelpdeskConformance(AdapterConformance):
    @pytest.fixture
    def conformance(
        self, config: Config, store: Store, registry: PluginRegistry
    ) -> ConformanceSetup:
        return ConformanceSetup(
            config=config, source="desk", store=store, pm=registry, expected_streams={"tickets"}
        )


def test_a_sync_reads_every_page_and_maps_the_crosswalk_tables(
    config: Config, store: Store, registry: PluginRegistry, desk: Desk
) -> None:
    result = SyncEngine(config, store, pm=registry).sync("desk")
    [tickets] = result.streams
    assert tickets.status == "ok" and tickets.read == len(desk.app.tickets) == 15
    assert tickets.requests == 4, "15 tickets, 4 a page"
    rows = {r["number"]: r for r in store.export("ticket", source="desk")}
    native = {t["ref"]: t for t in desk.app.tickets}
    assert set(rows) == set(native)
    states = {"new": "new", "open": "in_progress", "pending": "on_hold", "solved": "resolved"}
    states |= {"closed": "closed", "deleted": "cancelled"}
    for ref, row in rows.items():
        assert row["state"] == states[native[ref]["status"]]
        assert row["platform"] == "helpdesk" and row["kind"] == "request"
    [open_requests] = compute_metrics(
        store, config, ["helpdesk.open_requests"], pm=registry, source="desk"
    )
    expected = sum(t["status"] in ("new", "open", "pending") for t in desk.app.tickets)
    assert open_requests.value == expected


def test_throttling_a_failing_server_and_a_torn_page_are_ridden_out(
    config: Config, store: Store, registry: PluginRegistry, desk: Desk
) -> None:
    desk.faults.retry_after = 0
    desk.faults.throttle_next = 1
    desk.faults.server_errors_next = 1
    result = SyncEngine(config, store, pm=registry).sync("desk")
    desk.faults.malformed_next = 1
    again = SyncEngine(config, store, pm=registry).sync("desk", full=True)
    assert result.exit_code == 0 and again.exit_code == 0
    assert store.count("ticket", source="desk") == 15
    torn = [q for m, q in desk.app.requests if m == "GET" and "/tickets" in q]
    assert len(torn) > 8, "the torn page was asked for again"


def test_check_says_auth_for_a_wrong_token_and_never_shows_it(
    config: Config, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = build_adapter(config, "desk", registry)
    try:
        [item] = adapter.check()
    finally:
        adapter.close()
    assert item.ok and item.estimate_requests == 4 and item.detail == "15 tickets"
    monkeypatch.setenv("HELPDESK_TOKEN", "hd-wrong-0000")
    adapter = build_adapter(config, "desk", registry)
    try:
        [item] = adapter.check()
    finally:
        adapter.close()
    assert not item.ok and item.status == "auth"
    assert "authentication failed for source desk (HTTP 401)" in item.detail
    assert "hd-wrong-0000" not in item.detail


def test_the_cli_lists_the_plugin_its_tables_and_its_command(
    registry: PluginRegistry, config: Config
) -> None:
    cli = make_cli(registry)
    runner = CliRunner()
    listing = runner.invoke(cli, ["plugins", "--format", "json"])
    assert listing.exit_code == 0, listing.output
    rows = {row["name"]: row for row in json.loads(listing.output)}
    assert rows["helpdesk"]["platforms"] == ["helpdesk"] and rows["helpdesk"]["error"] is None
    tables = runner.invoke(cli, ["plugins", "show", "helpdesk"])
    assert '"pending": "on_hold"' in tables.output
    assert runner.invoke(cli, ["helpdesk-statuses"]).output.startswith("new -> new\n")
    checked = runner.invoke(cli, ["--config", str(config.path), "check", "--format", "json"])
    assert checked.exit_code == 0, checked.output
    assert '"status": "ok"' in checked.output
