"""Fixtures every platform's tests share: a fresh plugin manager, stores closed after use, and
emulators served on loopback HTTPS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.server import SandboxServer
from itcrosswalk.sandbox.world import World


@pytest.fixture
def pm() -> Any:
    """The built-in plugins only: installed third-party ones stay out of the platform tests."""
    return make_registry(entry_points_group=None)


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


@dataclass
class Served:
    """One emulator on loopback HTTPS: the app, its URL, the CA to trust, its fault switches,
    and the world it serves."""

    app: Any
    url: str
    ca: Path
    faults: Faults
    world: World


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start emulators: ``serve(platform, create_app, world, users=..., **options)``; every
    server started is stopped after the test."""
    servers: list[SandboxServer] = []

    def start(platform: str, create_app: Callable[..., Any], world: World, **kwargs: Any) -> Served:
        faults = Faults()
        app = create_app(world, faults, **kwargs)
        server = SandboxServer({platform: app})
        servers.append(server)
        urls = server.start()
        ca = server.write_ca(tmp_path / f"ca-{len(servers)}.pem")
        return Served(app=app, url=urls[platform], ca=ca, faults=faults, world=world)

    yield start
    for server in servers:
        server.stop()
