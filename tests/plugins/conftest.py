"""Fixtures every platform's tests share: a fresh plugin manager, and stores closed after use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.store import Store
from itcrosswalk.plugins import make_manager


@pytest.fixture
def pm() -> Any:
    """The built-in plugins only: installed third-party ones stay out of the platform tests."""
    return make_manager(entry_points_group=None)


@pytest.fixture
def open_store() -> Iterator[Callable[[Config], Store]]:
    """Open the store a config names; every store opened is closed after the test."""
    stores: list[Store] = []

    def opener(config: Config) -> Store:
        store = Store(config.store.url)
        stores.append(store)
        return store

    yield opener
    for store in stores:
        store.close()
