"""The id sweep: an incremental stream that lists its ids on every sync tombstones deletions,
and refuses when its listing is shorter than the platform's own count."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.adapter import Stream
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.registry import make_registry

from .test_sync import FakeAdapter, People, Platform


class SweptPeople(People):
    id_sweep = True
    short_by = 0

    def live_ids(self) -> tuple[Iterable[str], int | None]:
        self.adapter.platform.requests += 1
        ids = [r["id"] for r in self.adapter.platform.rows]
        return ids[: len(ids) - self.short_by], len(ids)


class SweptAdapter(FakeAdapter):
    platform = "swept"

    def streams(self) -> list[Stream]:
        return [SweptPeople(self)]


class SweptPlugin:
    @hookimpl
    def register_platforms(self, register: Any) -> None:
        register("swept", SweptAdapter)


@pytest.fixture
def setup(tmp_path: Path, store_url: str) -> Any:
    pm = make_registry(builtins=(), entry_points_group=None)
    pm.register(SweptPlugin(), name="swept")
    (tmp_path / "crosswalk.toml").write_text(
        f'[store]\nurl = "{store_url}"\n\n[sources.hr]\nplatform = "swept"\npage_size = 3\n'
    )
    config = load_config(tmp_path / "crosswalk.toml")
    store = Store(config.store.url)
    platform = Platform(10)
    FakeAdapter.instances["hr"] = platform
    yield SyncEngine(config, store, pm=pm), store, platform
    store.close()
    SweptPeople.short_by = 0


def test_a_record_deleted_between_incremental_syncs_is_tombstoned(setup: Any) -> None:
    engine, store, platform = setup
    assert engine.sync("hr").streams[0].full  # the first read is full: nothing to sweep
    del platform.rows[4]
    second = engine.sync("hr").streams[0]
    assert not second.full and second.tombstoned == 1 and second.sweep_requests == 1
    assert store.count("person", source="hr") == 9
    assert store.count("person", source="hr", include_deleted=True) == 10
    # The listing is the platform's count now: no gap against the full read's 10.
    cursor = store.get_cursor("hr", "people")
    assert cursor is not None and cursor.remote_total == 9 and cursor.remote_total_at


def test_a_listing_shorter_than_the_count_tombstones_nothing(setup: Any) -> None:
    engine, store, platform = setup
    engine.sync("hr")
    SweptPeople.short_by = 3  # the platform hid rows from this listing (ACLs, a failed page)
    result = engine.sync("hr")
    second = result.streams[0]
    assert second.tombstoned == 0 and "nothing was tombstoned" in second.message
    assert store.count("person", source="hr") == 10
    # Said where status and the controls read it, and not a clean run.
    assert second.status == "incomplete" and result.exit_code == 3
    cursor = store.get_cursor("hr", "people")
    assert cursor is not None and cursor.access == "incomplete"
    assert "nothing was tombstoned" in (cursor.message or "")
    assert store.runs("hr")[0]["outcome"] == "partial"


def test_a_dry_run_sweeps_nothing(setup: Any) -> None:
    engine, store, platform = setup
    engine.sync("hr")
    del platform.rows[0]
    assert engine.sync("hr", dry_run=True).streams[0].tombstoned == 0
    assert store.count("person", source="hr") == 10
