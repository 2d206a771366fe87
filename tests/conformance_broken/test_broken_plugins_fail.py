"""The conformance suite has teeth: plugins broken in one way each fail the check for that way,
with a message naming the fault; the same plugin unbroken passes every check."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.registry import PluginRegistry, make_registry
from itcrosswalk.testing import (
    EmulatedSource,
    check_deletion_before_full_sync,
    check_every_page_read_once,
    check_faults_are_ridden_out,
    check_malformed_body_is_a_clear_error,
    check_records_changed_between_pages,
    check_second_sync_bounded,
    check_secret_never_kept,
    check_wrong_secret_is_an_auth_status,
    emulated_source,
)
from tests.example_plugin import HELPDESK, install_project, on_path

CHECKS: list[Callable[[EmulatedSource], Any]] = [
    check_every_page_read_once,
    check_faults_are_ridden_out,
    check_malformed_body_is_a_clear_error,
    check_wrong_secret_is_an_auth_status,
    check_second_sync_bounded,
    check_secret_never_kept,
    check_records_changed_between_pages,
    check_deletion_before_full_sync,
]


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The broken plugins' module, importable with the Helpdesk plugin installed beside it."""
    site = tmp_path / "site"
    site.mkdir()
    install_project(site, HELPDESK)
    with on_path(site, monkeypatch):
        module = importlib.import_module("tests.conformance_broken.broken")
        try:
            yield importlib.reload(module)  # bound to this test's copy of the plugin
        finally:
            sys.modules.pop("tests.conformance_broken.broken", None)


def registry_for(plugin: object) -> PluginRegistry:
    registry = make_registry(builtins=(), entry_points_group=None)
    registry.register(plugin, "broken-helpdesk")
    assert not registry.errors, registry.errors
    return registry


@pytest.mark.parametrize(
    ("adapter", "check", "message"),
    [
        ("IgnoresTheWatermark", check_second_sync_bounded, "the watermark was ignored"),
        ("StopsOnAShortPage", check_every_page_read_once, "paging stopped early"),
        ("SkipsRetryAfter", check_faults_are_ridden_out, "Retry-After was skipped"),
        ("WritesTheSecretIntoExtra", check_secret_never_kept, "secret is stored in the tickets"),
        ("ReadsNewestFirst", check_records_changed_between_pages, "were lost by a read during"),
        ("KeepsItsOwnWatermark", check_deletion_before_full_sync, "tombstoned .* records the"),
    ],
)
def test_a_broken_plugin_fails_the_check_for_its_fault(
    broken: Any, tmp_path: Path, adapter: str, check: Callable[..., Any], message: str
) -> None:
    registry = registry_for(broken.plugin(getattr(broken, adapter)))
    with emulated_source(registry, "helpdesk", tmp_path / "emulated") as emulated:
        with pytest.raises(AssertionError, match=message):
            check(emulated)


def test_the_watermark_check_counts_at_the_emulator_not_through_the_adapter(
    broken: Any, tmp_path: Path
) -> None:
    # The adapter that ignores the watermark reports no requests of its own: the engine's
    # counts say 0, which the old check took for a pass.
    registry = registry_for(broken.plugin(broken.IgnoresTheWatermark))
    with emulated_source(registry, "helpdesk", tmp_path / "emulated") as emulated:
        from itcrosswalk.core.store import Store
        from itcrosswalk.core.sync import SyncEngine

        config = emulated.config()
        store = Store(config.store.url)
        try:
            engine = SyncEngine(config, store, pm=registry)
            engine.sync(emulated.source)
            before = emulated.served()
            [second] = engine.sync(emulated.source).streams
        finally:
            store.close()
        assert second.requests == 0
        assert emulated.served() - before > 2


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_unbroken_plugin_passes_every_check(
    broken: Any, tmp_path: Path, check: Callable[..., Any]
) -> None:
    from crosswalk_helpdesk.adapter import HelpdeskAdapter

    registry = registry_for(broken.plugin(HelpdeskAdapter))
    with emulated_source(registry, "helpdesk", tmp_path / "emulated") as emulated:
        check(emulated)
