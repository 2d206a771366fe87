"""The sync engine's semantics, on an in-memory platform registered through the hooks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.adapter import Adapter, Capabilities, CheckItem, Page, Stream, Window
from itcrosswalk.core.config import load_config
from itcrosswalk.core.errors import LockHeld
from itcrosswalk.core.model import Person
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.registry import make_registry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Platform:
    """A tiny platform: rows with an id, a name and an update time; offset pages sorted by time."""

    def __init__(self, n: int) -> None:
        self.rows = [
            {"id": f"p{i:04d}", "name": f"Person {i}", "updated": T0 + timedelta(minutes=i)}
            for i in range(n)
        ]
        self.requests = 0
        self.fail_on_request: int | None = None
        self.ignore_since = False
        self.understate_from: int | None = None  # from this request on the count lies low
        self.understate_by = 0

    def page(self, since: datetime | None, offset: int, size: int) -> Page:
        self.requests += 1
        if self.fail_on_request is not None and self.requests == self.fail_on_request:
            raise KeyboardInterrupt("killed mid-sync")
        rows = sorted(self.rows, key=lambda r: (r["updated"], r["id"]))
        if since is not None and not self.ignore_since:
            rows = [r for r in rows if r["updated"] >= since]
        total = len(rows)
        if self.understate_from is not None and self.requests >= self.understate_from:
            total -= self.understate_by
        return Page(
            records=[dict(r) for r in rows[offset : offset + size]], total=total, requested=size
        )


class OffsetPaginator:
    def first(self, window: Window) -> Any:
        return 0

    def next(self, token: Any, page: Page) -> Any | None:
        nxt = token + (page.requested or 0)
        return nxt if page.total is not None and nxt < page.total else None


class People(Stream):
    name = "people"
    entity = "person"
    key = "id"
    cursor_field = "updated"

    def __init__(self, adapter: FakeAdapter) -> None:
        self.adapter = adapter
        self.paginator = OffsetPaginator()

    def fetch(self, token: Any, window: Window) -> Page:
        return self.adapter.platform.page(window.since, token, self.adapter.source.page_size or 3)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return raw["updated"]

    def map(self, raw: Mapping[str, Any]) -> Person:
        if raw["name"] == "BAD":
            raise ValueError("name is not a name")
        return Person(
            source=self.adapter.source.name,
            platform="fake",
            source_id=raw["id"],
            name=raw["name"],
            updated_at=raw["updated"],
        )


class FakeAdapter(Adapter):
    platform = "fake"
    instances: dict[str, Platform] = {}

    def __init__(self, source: Any, secrets: Any) -> None:
        super().__init__(source, secrets)
        self.platform = self.instances[source.name]

    def streams(self) -> list[Stream]:
        return [People(self)]

    def check(self) -> list[CheckItem]:
        return [CheckItem("people", True)]

    def capabilities(self) -> Capabilities:
        return Capabilities(entities={"person": ["name"]}, auth_types=["none"])

    @property
    def requests_made(self) -> int:
        return self.platform.requests


class FakePlugin:
    @hookimpl
    def register_platforms(self, register: Any) -> None:
        register("fake", FakeAdapter)


@pytest.fixture
def pm() -> Any:
    manager = make_registry(builtins=(), entry_points_group=None)
    manager.register(FakePlugin(), name="fake")
    return manager


@pytest.fixture
def setup(tmp_path: Path, store_url: str, pm: Any) -> Any:
    (tmp_path / "crosswalk.toml").write_text(
        f'[store]\nurl = "{store_url}"\n\n[sources.hr]\nplatform = "fake"\npage_size = 3\noverlap_seconds = 0\n'
    )
    config = load_config(tmp_path / "crosswalk.toml")
    store = Store(config.store.url)
    platform = Platform(10)
    FakeAdapter.instances["hr"] = platform
    yield config, store, platform
    store.close()


def names(store: Store) -> dict[str, str]:
    return {row["source_id"]: row["name"] for row in store.export("person", source="hr")}


def test_first_sync_reads_everything_and_records_the_run(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    result = SyncEngine(config, store, pm=pm).sync("hr")
    assert result.exit_code == 0
    assert [s.read for s in result.streams] == [10]
    assert len(names(store)) == 10
    runs = store.runs("hr")
    assert runs[0]["outcome"] == "ok"
    manifest = runs[0]["manifest"]
    assert manifest["config_digest"] and manifest["streams"]["people"]["after"]["watermark"]
    assert store.get_cursor("hr", "people").watermark == T0 + timedelta(minutes=9)


def test_second_sync_reads_only_the_overlap_and_doubles_nothing(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("hr")
    platform.rows.append({"id": "p0100", "name": "New", "updated": T0 + timedelta(hours=5)})
    platform.rows[0]["updated"] = T0 + timedelta(hours=6)
    platform.rows[0]["name"] = "Renamed"
    before = platform.requests
    result = engine.sync("hr")
    assert platform.requests - before == 1
    outcome = result.streams[0]
    assert (outcome.inserted, outcome.updated, outcome.unchanged) == (1, 1, 1)
    assert len(names(store)) == 11
    assert names(store)["p0000"] == "Renamed"


def test_a_record_that_fails_mapping_is_quarantined_with_its_payload(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    platform.rows[4]["name"] = "BAD"
    result = SyncEngine(config, store, pm=pm).sync("hr")
    assert result.exit_code == 3
    assert result.streams[0].quarantined == 1
    rows = store.quarantine_rows("hr")
    assert len(rows) == 1
    assert rows[0]["source_id"] == "p0004"
    assert rows[0]["payload"]["name"] == "BAD"
    assert "name is not a name" in rows[0]["error"]
    assert len(names(store)) == 9


def test_a_record_quarantined_during_a_full_sweep_keeps_its_last_good_version(
    setup: Any, pm: Any
) -> None:
    config, store, platform = setup
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("hr")
    platform.rows[4]["name"] = "BAD"  # still on the platform, one field now malformed
    result = engine.sync("hr", full=True)
    outcome = result.streams[0]
    assert (result.exit_code, outcome.quarantined, outcome.tombstoned) == (3, 1, 0)
    assert len(names(store)) == 10 and names(store)["p0004"] == "Person 4"
    assert [row["source_id"] for row in store.quarantine_rows("hr")] == ["p0004"]
    del platform.rows[4]  # gone from the platform now: the next sweep tombstones it
    assert engine.sync("hr", full=True).streams[0].tombstoned == 1
    assert "p0004" not in names(store)


def test_a_crash_resumes_from_the_last_committed_page(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    platform.fail_on_request = 3  # pages 1 and 2 committed, killed on the third
    with pytest.raises(KeyboardInterrupt):
        SyncEngine(config, store, pm=pm).sync("hr")
    assert len(names(store)) == 6
    assert store.get_cursor("hr", "people").resume_token == 6
    platform.fail_on_request = None
    before = platform.requests
    result = SyncEngine(config, store, pm=pm).sync("hr")
    assert platform.requests - before == 2  # offsets 6 and 9 only
    assert result.streams[0].read == 4
    assert len(names(store)) == 10


def test_a_filter_the_platform_ignores_is_rechecked_on_the_client(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("hr")
    platform.ignore_since = True
    result = engine.sync("hr")
    assert result.streams[0].outside_window == 9
    assert result.streams[0].read == 1


def test_the_watermark_never_passes_the_ceiling(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    ceiling = T0 + timedelta(minutes=5, seconds=30)
    result = SyncEngine(config, store, pm=pm, clock=lambda: ceiling).sync("hr")
    assert result.streams[0].read == 10  # rows past the ceiling are kept ...
    assert store.get_cursor("hr", "people").watermark == ceiling  # ... the watermark stops


def test_full_sync_tombstones_what_disappeared(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("hr")
    del platform.rows[3]
    result = engine.sync("hr", full=True)
    assert result.streams[0].tombstoned == 1
    assert "p0003" not in names(store)
    deleted = [r for r in store.export("person", source="hr", include_deleted=True) if r["deleted"]]
    assert [r["source_id"] for r in deleted] == ["p0003"]


def test_dry_run_writes_nothing(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    result = SyncEngine(config, store, pm=pm).sync("hr", dry_run=True)
    assert result.streams[0].read == 10
    assert names(store) == {}
    assert store.runs("hr") == []
    assert store.get_cursor("hr", "people") is None


def test_a_second_sync_of_the_same_source_refuses_naming_the_holder(setup: Any, pm: Any) -> None:
    config, store, platform = setup
    store.acquire_lock("hr", "ops@cron-host pid 4242", host="another-host", pid=4242)
    with pytest.raises(LockHeld, match="ops@cron-host pid 4242"):
        SyncEngine(config, store, pm=pm).sync("hr")


def test_a_stale_lock_from_a_killed_sync_on_this_host_is_taken_over(setup: Any, pm: Any) -> None:
    import socket
    import subprocess
    import sys

    config, store, platform = setup
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    store.acquire_lock("hr", "gone", host=socket.gethostname(), pid=int(dead.stdout))
    result = SyncEngine(config, store, pm=pm).sync("hr")
    assert result.exit_code == 0
    assert store.lock_holder("hr") is None


def test_a_periodic_full_sweep_is_taken_when_due(setup: Any, pm: Any, tmp_path: Path) -> None:
    config, store, platform = setup
    config.sources["hr"].full_sweep_every_days = 7
    now = [datetime(2026, 2, 1, tzinfo=UTC)]
    engine = SyncEngine(config, store, pm=pm, clock=lambda: now[0])
    assert engine.sync("hr").streams[0].full
    now[0] += timedelta(days=1)
    assert not engine.sync("hr").streams[0].full
    now[0] += timedelta(days=7)
    assert engine.sync("hr").streams[0].full


def test_a_full_sweep_refuses_to_tombstone_when_the_count_disagrees_with_the_read(
    setup: Any, pm: Any
) -> None:
    config, store, platform = setup
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("hr")
    # The count lies low from the second page on: the paginator trusts it and stops early.
    platform.understate_from = platform.requests + 2
    platform.understate_by = 5
    result = engine.sync("hr", full=True)
    outcome = result.streams[0]
    assert outcome.tombstoned == 0 and len(names(store)) == 10
    assert outcome.status == "incomplete" and result.exit_code == 3
    assert "counts 10 rows but the read returned 6 (4 missing)" in outcome.message
    cursor = store.get_cursor("hr", "people")
    assert cursor.access == "incomplete" and "nothing was tombstoned" in (cursor.message or "")
    assert store.runs("hr")[0]["outcome"] == "partial"
    platform.understate_from = None
    again = engine.sync("hr", full=True)
    assert again.exit_code == 0 and again.streams[0].tombstoned == 0 and len(names(store)) == 10


def test_the_count_of_the_last_full_read_is_kept_apart_from_the_last_window(
    setup: Any, pm: Any
) -> None:
    config, store, platform = setup
    engine = SyncEngine(config, store, pm=pm)
    engine.sync("hr")
    platform.rows[0]["updated"] = T0 + timedelta(hours=6)
    engine.sync("hr")
    cursor = store.get_cursor("hr", "people")
    assert (cursor.remote_total, cursor.window_total) == (10, 2)  # the boundary row, and p0000
    assert cursor.remote_total_at is not None
    (row,) = store.status()
    assert (row["remote_total"], row["window_total"]) == (10, 2)


def test_a_stale_lock_whose_pid_now_belongs_to_another_process_is_taken_over(
    setup: Any, pm: Any
) -> None:
    import socket
    import subprocess
    import sys

    config, store, platform = setup
    # A live process holds the PID the killed sync had; its start time differs.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run = store.start_run(source="hr", full=False, dry_run=False, holder="gone", manifest={})
        store.acquire_lock(
            "hr", "gone", host=socket.gethostname(), pid=other.pid, started="the killed one's"
        )
        result = SyncEngine(config, store, pm=pm).sync("hr")
    finally:
        other.kill()
        other.wait()
    assert result.exit_code == 0
    assert store.lock_holder("hr") is None
    killed = next(r for r in store.runs("hr") if r["id"] == run)
    assert killed["outcome"] == "interrupted" and "stale" in killed["error"]


def test_a_record_without_an_id_is_quarantined_once_however_often_it_is_read(
    setup: Any, pm: Any
) -> None:
    config, store, platform = setup
    platform.rows[2]["id"] = ""
    engine = SyncEngine(config, store, pm=pm)
    for _ in range(3):
        engine.sync("hr", full=True)
    (row,) = store.quarantine_rows("hr")
    assert row["source_id"] is None and row["payload"]["name"] == "Person 2"
    platform.rows[5]["id"] = ""  # another distinct bad payload: its own row
    engine.sync("hr", full=True)
    assert len(store.quarantine_rows("hr")) == 2


class _Rows(list[dict[str, Any]]):
    """A page's records that a weak reference can follow (to see when a page is let go)."""


def test_the_engine_lets_a_written_page_go_before_the_next_is_decoded(
    setup: Any, pm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync holds one decoded page at a time: when a stream splits its fetch into transport
    (prefetched) and decode (on the engine's thread), every page before is gone by then."""
    import gc
    import weakref

    config, store, platform = setup
    alive: list[weakref.ref[_Rows]] = []
    held: list[int] = []

    class Split(People):
        def transport(self, token: Any, window: Window) -> Any:
            return super().fetch(token, window)

        def decode(self, fetched: Any, token: Any, window: Window) -> Page:
            gc.collect()
            held.append(sum(ref() is not None for ref in alive))
            rows = _Rows(fetched.records)
            alive.append(weakref.ref(rows))
            return Page(records=rows, total=fetched.total, requested=fetched.requested)

        def fetch(self, token: Any, window: Window) -> Page:
            return self.decode(self.transport(token, window), token, window)

    monkeypatch.setattr(FakeAdapter, "streams", lambda self: [Split(self)])
    result = SyncEngine(config, store, pm=pm).sync("hr")
    assert result.exit_code == 0 and len(names(store)) == 10
    assert len(held) == 4 and held == [0, 0, 0, 0], held
