"""What the engine keeps of a page while it writes it: the mapped records, not the raw ones (a
sync's memory is about one page of records, whatever the number of pages), and what it lets go
changes nothing that is written: every record once, the bad one quarantined with its payload."""

from __future__ import annotations

import weakref
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.adapter import Page
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine

from .test_sync import FakeAdapter, Platform, names, pm  # noqa: F401 - pm is a fixture


class Raw(dict):  # type: ignore[type-arg]
    """A raw record that can be watched (plain dicts take no weak reference)."""


class WatchedPlatform(Platform):
    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.pages: list[list[weakref.ref[Raw]]] = []

    def page(self, since: datetime | None, offset: int, size: int) -> Page:
        page = super().page(since, offset, size)
        page.records = [Raw(r) for r in page.records]
        self.pages.append([weakref.ref(r) for r in page.records])
        return page


@pytest.fixture
def watched(tmp_path: Path, store_url: str) -> Any:
    (tmp_path / "crosswalk.toml").write_text(
        f'[store]\nurl = "{store_url}"\n\n[sources.hr]\nplatform = "fake"\npage_size = 4\n'
    )
    config = load_config(tmp_path / "crosswalk.toml")
    store = Store(config.store.url)
    platform = WatchedPlatform(11)
    platform.rows[5]["name"] = "BAD"
    FakeAdapter.instances["hr"] = platform
    yield config, store, platform
    store.close()


def test_a_page_is_written_after_its_raw_records_are_let_go(
    watched: Any,
    pm: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, store, platform = watched
    alive_at_write: list[int] = []
    write_page = store.write_page

    def watching(**kwargs: Any) -> Any:
        # The page being written is the last one fetched but for the one prefetched after it.
        written = len(alive_at_write)
        alive_at_write.append(sum(ref() is not None for ref in platform.pages[written]))
        return write_page(**kwargs)

    monkeypatch.setattr(store, "write_page", watching)
    result = SyncEngine(config, store, pm=pm).sync("hr")
    assert alive_at_write == [0, 0, 0]  # three pages of 4, 4 and 3
    outcome = result.streams[0]
    assert (outcome.read, outcome.inserted, outcome.quarantined) == (11, 10, 1)
    assert len(names(store)) == 10
    (bad,) = store.quarantine_rows("hr")
    assert bad["source_id"] == "p0005" and bad["payload"]["name"] == "BAD"
